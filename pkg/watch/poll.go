package watch

import (
	"context"
	"sync"
	"time"
)

// A Probe reads the state a poller watches, in two parts: the shape, cheap
// enough to read on every poll, and the content, which may cost more and
// is read only when deep is true ("" otherwise). On the legacy iptables
// backend the shape is each table's size and entry count (getsockopt
// IPT_SO_GET_INFO), the content a hash of its rules (IPT_SO_GET_ENTRIES,
// which makes the kernel allocate and map a copy of every counter).
type Probe func(deep bool) (shape, content string, err error)

// sample is one deep probe.
type sample struct{ shape, content string }

// Baseline is what a poller compares its probe against: the state as the
// daemon's last quiet reconcile left it. The daemon calls Before and After
// around every reconcile, on its own goroutine; both probe deep once Poll
// polls with the Baseline, and do nothing before (nor on a nil Baseline).
type Baseline struct {
	probe Probe

	mu      sync.Mutex
	polling bool // Poll uses it
	last    sample
	ok      bool // last is a state nothing needed repairing in

	pre   sample // probe when the running reconcile started
	preOK bool
}

// NewBaseline returns the Baseline of probe, for Poll.
func NewBaseline(probe Probe) *Baseline { return &Baseline{probe: probe} }

// active reports whether Before and After have something to probe.
func (b *Baseline) active() bool {
	if b == nil || b.probe == nil {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.polling
}

func (b *Baseline) deep() (sample, error) {
	shape, content, err := b.probe(true)
	return sample{shape, content}, err
}

// Before probes the state a reconcile starts from.
func (b *Baseline) Before() {
	if !b.active() {
		return
	}
	v, err := b.deep()
	b.pre, b.preOK = v, err == nil
}

// After takes the new baseline when the reconcile changed nothing and the
// state did not move while it ran: then it is a state nothing needed
// repairing in. Otherwise the baseline is unknown and the next poll sends
// an event, so that the following (normally quiet) reconcile sets it. A
// baseline taken after a repair could already hold the next drift (made
// while the repair finished), and would hide it until the resync.
func (b *Baseline) After(changed bool) {
	if !b.active() {
		return
	}
	v, err := b.deep()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.last, b.ok = v, !changed && err == nil && b.preOK && v == b.pre
}

// Quiet reports whether the last reconcile left a known baseline: it
// changed nothing and the state did not move while it ran (true without a
// probe, or before Poll polls with it).
func (b *Baseline) Quiet() bool {
	if !b.active() {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ok
}

// same tells whether a poll's probe matches the baseline; a shallow probe
// (content "") compares the shape only.
func (b *Baseline) same(shape, content string, err error) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return err == nil && b.ok && shape == b.last.shape && (content == "" || content == b.last.content)
}

// Poll looks every interval at what sends no change events (the legacy
// iptables backend) until ctx ends. It returns at once; a goroutine does
// the looking.
//
// With a Baseline whose probe is set, it sends an Event (SourcePoll) only
// when the probe's answer differs from the Baseline, so that an idle host
// costs one cheap probe per interval instead of a reconcile; while the
// baseline is unknown (at start, after a repair) or the probe fails, it
// sends an Event every time. From this call on, the Baseline's Before and
// After probe. Every deepEvery-th poll (and every poll when deepEvery <= 1)
// also reads the content: a change that keeps the shape (a rule replaced
// in place by one of the same size) is seen within deepEvery intervals,
// any other within one. A nil Baseline (or probe) sends an Event every
// interval. An interval <= 0 sends nothing.
func Poll(ctx context.Context, every time.Duration, deepEvery int, b *Baseline, out chan<- Event) {
	var probe Probe
	if b != nil && b.probe != nil {
		probe = b.probe
		b.mu.Lock()
		b.polling = true
		b.mu.Unlock()
	}
	if every <= 0 {
		return
	}
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for n := 1; ; n++ {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				name := "every " + every.String()
				if probe != nil {
					if b.same(probe(deepEvery <= 1 || n%deepEvery == 0)) {
						continue
					}
					name = "changed, or not known yet (polled every " + every.String() + ")"
				}
				send(out, Event{Source: SourcePoll, Name: name})
			}
		}
	}()
}
