package doctor

import (
	"reflect"
	"testing"
)

func TestTracker(t *testing.T) {
	res := func(item string, s Status, detail string) Result {
		return Result{Item: item, Status: s, Detail: detail}
	}
	items := func(rs []Result) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.Item+"="+string(r.Status))
		}
		return out
	}
	type step struct {
		run                    []Result
		wantNew, wantRecovered []string
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"first run reports failures only", []step{
			{[]Result{res("a", OK, ""), res("b", Fail, "x"), res("c", Warn, "")}, []string{"b=fail"}, nil},
		}},
		{"a persisting failure is reported once, even when its detail changes", []step{
			{[]Result{res("a", Fail, "refused")}, []string{"a=fail"}, nil},
			{[]Result{res("a", Fail, "refused")}, nil, nil},
			{[]Result{res("a", Fail, "timeout")}, nil, nil},
		}},
		{"recovery is reported once", []step{
			{[]Result{res("a", Fail, "")}, []string{"a=fail"}, nil},
			{[]Result{res("a", OK, "")}, nil, []string{"a=ok"}},
			{[]Result{res("a", OK, "")}, nil, nil},
		}},
		{"fail to warn or skip is a recovery", []step{
			{[]Result{res("a", Fail, ""), res("b", Fail, "")}, []string{"a=fail", "b=fail"}, nil},
			{[]Result{res("a", Warn, ""), res("b", Skip, "")}, nil, []string{"a=warn", "b=skip"}},
		}},
		{"relapse after recovery is new again", []step{
			{[]Result{res("a", Fail, "")}, []string{"a=fail"}, nil},
			{[]Result{res("a", Skip, "")}, nil, []string{"a=skip"}},
			{[]Result{res("a", Fail, "")}, []string{"a=fail"}, nil},
		}},
		{"warn and skip changes are not events", []step{
			{[]Result{res("a", OK, "")}, nil, nil},
			{[]Result{res("a", Warn, "")}, nil, nil},
			{[]Result{res("a", Skip, "")}, nil, nil},
		}},
		{"an item missing from a run keeps its state", []step{
			{[]Result{res("a", Fail, "")}, []string{"a=fail"}, nil},
			{[]Result{res("b", OK, "")}, nil, nil},
			{[]Result{res("a", Fail, "")}, nil, nil},
			{[]Result{res("a", OK, "")}, nil, []string{"a=ok"}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var tr Tracker
			for i, s := range tc.steps {
				gotNew, gotRec := tr.Observe(s.run)
				if !reflect.DeepEqual(items(gotNew), s.wantNew) || !reflect.DeepEqual(items(gotRec), s.wantRecovered) {
					t.Fatalf("step %d: new=%v recovered=%v, want new=%v recovered=%v", i, items(gotNew), items(gotRec), s.wantNew, s.wantRecovered)
				}
			}
		})
	}
}

func TestFailed(t *testing.T) {
	if Failed([]Result{{Status: OK}, {Status: Warn}, {Status: Skip}}) {
		t.Fatal("Failed without a fail")
	}
	if !Failed([]Result{{Status: OK}, {Status: Fail}}) {
		t.Fatal("not Failed with a fail")
	}
}
