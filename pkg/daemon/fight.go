package daemon

import (
	"sort"
	"time"
)

// fights notices another tool undoing a repair again and again. An item
// repaired threshold times within window is in a fight: the daemon keeps
// holding the good state but waits longer and longer between repairs, and
// says so once. A fight ends when the item needed no repair for quiet.
// Pure logic: time comes from the caller.
type fights struct {
	window    time.Duration
	threshold int
	quiet     time.Duration
	maxDelay  time.Duration

	repairs map[string][]time.Time // recent repairs per item (within window)
	active  map[string]*fight
}

type fight struct {
	started time.Time
	last    time.Time
	count   int // repairs since the fight started
}

func newFights() *fights {
	return &fights{
		window:    time.Minute,
		threshold: 5,
		quiet:     2 * time.Minute,
		maxDelay:  5 * time.Minute,
		repairs:   map[string][]time.Time{},
		active:    map[string]*fight{},
	}
}

// record notes a repair of item. started is true when this repair turns
// the item's history into a fight (the caller logs it once); flips is how
// often it was repaired within the window.
func (f *fights) record(item string, now time.Time) (started bool, flips int) {
	if a, ok := f.active[item]; ok {
		a.count++
		a.last = now
		return false, a.count
	}
	h := f.repairs[item]
	kept := h[:0]
	for _, t := range h {
		if now.Sub(t) < f.window {
			kept = append(kept, t)
		}
	}
	kept = append(kept, now)
	f.repairs[item] = kept
	if len(kept) >= f.threshold {
		f.active[item] = &fight{started: now, last: now, count: len(kept)}
		delete(f.repairs, item)
		return true, len(kept)
	}
	return false, len(kept)
}

// delay is how long the daemon waits before the next repair: zero without
// a fight, then doubling with every repair in the longest fight, from one
// second up to maxDelay.
func (f *fights) delay() time.Duration {
	worst := 0
	for _, a := range f.active {
		if n := a.count - f.threshold; n > worst {
			worst = n
		}
	}
	if len(f.active) == 0 {
		return 0
	}
	d := time.Second
	for i := 0; i < worst && d < f.maxDelay; i++ {
		d *= 2
	}
	if d > f.maxDelay {
		d = f.maxDelay
	}
	return d
}

// ended returns the items whose fight is over: no repair for quiet (or for
// twice the current delay, whichever is longer).
func (f *fights) ended(now time.Time) []string {
	q := f.quiet
	if d := 2 * f.delay(); d > q {
		q = d
	}
	var out []string
	for item, a := range f.active {
		if now.Sub(a.last) >= q {
			out = append(out, item)
			delete(f.active, item)
		}
	}
	sort.Strings(out)
	return out
}

// inFight reports whether any item is in a fight.
func (f *fights) inFight() bool { return len(f.active) > 0 }
