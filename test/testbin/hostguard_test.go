package testbin

import (
	"strings"
	"testing"
)

func TestHostChanges(t *testing.T) {
	before := map[string]string{"/etc/a": "absent", "/etc/b": "-rw 1 bytes", "/etc/c": "-rw 2 bytes"}
	after := map[string]string{"/etc/a": "-rw 3 bytes", "/etc/b": "-rw 1 bytes", "/etc/d": "-rw 4 bytes"}
	got := strings.Join(hostChanges(before, after), "\n")
	want := "/etc/a: absent -> -rw 3 bytes\n/etc/c: -rw 2 bytes -> absent\n/etc/d: absent -> -rw 4 bytes"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if c := hostChanges(before, before); len(c) != 0 {
		t.Errorf("no change reported %v", c)
	}
}
