package watch

import (
	"context"
	"sync"
	"time"
)

// Baseline is what a poller compares its probe against: the state as the
// daemon's last quiet reconcile left it. The daemon calls Before and After
// around every reconcile, on its own goroutine.
type Baseline struct {
	probe func() (string, error)

	mu   sync.Mutex
	last string
	ok   bool // last is a state nothing needed repairing in

	pre   string // probe when the running reconcile started
	preOK bool
}

// Before probes the state a reconcile starts from.
func (b *Baseline) Before() {
	if b == nil || b.probe == nil {
		return
	}
	v, err := b.probe()
	b.pre, b.preOK = v, err == nil
}

// After takes the new baseline when the reconcile changed nothing and the
// state did not move while it ran: then it is a state nothing needed
// repairing in. Otherwise the baseline is unknown and the next poll sends
// an event, so that the following (normally quiet) reconcile sets it. A
// baseline taken after a repair could already hold the next drift (made
// while the repair finished), and would hide it until the resync.
func (b *Baseline) After(changed bool) {
	if b == nil || b.probe == nil {
		return
	}
	v, err := b.probe()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.last, b.ok = v, !changed && err == nil && b.preOK && v == b.pre
}

func (b *Baseline) same(now string, err error) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return err == nil && b.ok && now == b.last
}

// Poll looks every interval at what sends no change events (the legacy
// iptables backend) until ctx ends. It returns at once; a goroutine does
// the looking.
//
// With a probe, it sends an Event (SourcePoll) only when the probe's answer
// differs from the Baseline, so that an idle host costs one cheap probe per
// interval instead of a reconcile; while the baseline is unknown (at
// start, after a repair) or the probe fails, it sends an Event every time.
// A nil probe sends an Event every interval. An interval <= 0 sends
// nothing.
func Poll(ctx context.Context, every time.Duration, probe func() (string, error), out chan<- Event) *Baseline {
	b := &Baseline{probe: probe}
	if every <= 0 {
		return b
	}
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				name := "every " + every.String()
				if probe != nil {
					if b.same(probe()) {
						continue
					}
					name = "changed, or not known yet (polled every " + every.String() + ")"
				}
				send(out, Event{Source: SourcePoll, Name: name})
			}
		}
	}()
	return b
}
