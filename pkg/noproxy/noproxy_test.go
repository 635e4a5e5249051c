package noproxy

import (
	"reflect"
	"testing"
)

func TestMerge(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		missing  []string
	}{
		{"", "169.254.169.254,169.254.170.2,/var/run/docker.sock", Required},
		{"169.254.169.254,169.254.170.2,/var/run/docker.sock", "169.254.169.254,169.254.170.2,/var/run/docker.sock", nil},
		{"localhost,.internal", "localhost,.internal,169.254.169.254,169.254.170.2,/var/run/docker.sock", Required},
		{" localhost , 169.254.170.2,,", "localhost,169.254.170.2,169.254.169.254,/var/run/docker.sock", []string{"169.254.169.254", "/var/run/docker.sock"}},
		{"/var/run/docker.sock, 169.254.170.2 ,169.254.169.254", "/var/run/docker.sock, 169.254.170.2 ,169.254.169.254", nil},
	} {
		got, missing := Merge(tc.in)
		if got != tc.want || !reflect.DeepEqual(missing, tc.missing) {
			t.Errorf("Merge(%q) = %q, %q; want %q, %q", tc.in, got, missing, tc.want, tc.missing)
		}
	}
}
