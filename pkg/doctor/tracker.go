package doctor

// Tracker turns periodic doctor runs into events for the daemon: a failure
// is reported when it is new (first seen, or the item was ok, warn or skip
// before) and its recovery is reported once. A failure that persists is
// not reported again, whatever its Detail says now. The zero value is
// ready; a Tracker is not safe for concurrent use.
type Tracker struct {
	last map[string]Status
}

// Observe records one run. Items absent from rs keep their last state.
func (t *Tracker) Observe(rs []Result) (newFailures, recovered []Result) {
	if t.last == nil {
		t.last = make(map[string]Status, len(rs))
	}
	for _, r := range rs {
		prev, seen := t.last[r.Item]
		switch {
		case r.Status == Fail && (!seen || prev != Fail):
			newFailures = append(newFailures, r)
		case r.Status != Fail && seen && prev == Fail:
			recovered = append(recovered, r)
		}
		t.last[r.Item] = r.Status
	}
	return newFailures, recovered
}

// Failing returns every item seen so far and whether it fails now (for
// the doctor gauge in metrics).
func (t *Tracker) Failing() map[string]bool {
	m := make(map[string]bool, len(t.last))
	for item, st := range t.last {
		m[item] = st == Fail
	}
	return m
}
