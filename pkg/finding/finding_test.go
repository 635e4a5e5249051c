package finding

import (
	"encoding/json"
	"testing"
)

func TestWarnKeepsDriftAndError(t *testing.T) {
	for _, tc := range []struct{ in, want Status }{{OK, Warn}, {Warn, Warn}, {Drift, Drift}, {Error, Error}} {
		f := Finding{Status: tc.in}
		f.Warn()
		if f.Status != tc.want {
			t.Errorf("Warn() on %s = %s, want %s", tc.in, f.Status, tc.want)
		}
	}
}

func TestCompliant(t *testing.T) {
	for _, tc := range []struct {
		fs   []Finding
		want bool
	}{
		{nil, true},
		{[]Finding{{Status: OK}, {Status: Warn}}, true},
		{[]Finding{{Status: Warn}, {Status: Drift}}, false},
		{[]Finding{{Status: Error}}, false},
	} {
		if got := Compliant(tc.fs); got != tc.want {
			t.Errorf("Compliant(%v) = %v, want %v", tc.fs, got, tc.want)
		}
	}
}

// The JSON of a warning is {"status": "warn"}, the same word as doctor's.
func TestWarningJSON(t *testing.T) {
	f := Finding{Item: "network.localhost_guard", Status: OK}
	f.Warn()
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"item":"network.localhost_guard","status":"warn","detail":"","fix":""}`; string(b) != want {
		t.Errorf("got %s, want %s", b, want)
	}
}

func TestFailed(t *testing.T) {
	if Failed([]Result{{Status: Warn}, {Status: Skip}, {Status: OK}}) {
		t.Error("warn and skip are not failures")
	}
	if !Failed([]Result{{Status: OK}, {Status: Fail}}) {
		t.Error("fail is a failure")
	}
}
