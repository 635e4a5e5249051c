package watch

import (
	"context"
	"sync"
	"time"
)

// Poll looks every interval at what sends no change events (the legacy
// iptables backend) until ctx ends. It returns at once; a goroutine does
// the looking.
//
// With a probe, it sends an Event (SourcePoll) only when the probe's answer
// differs from the baseline, so that an idle host costs one cheap probe
// per interval instead of a reconcile; a probe that fails sends an Event
// every time (it cannot tell, so the caller must look). The baseline is the
// state the caller left things in: call the returned rebase right after
// every reconcile. (A baseline taken at the tick would miss a drift back to
// the state that triggered the last repair.) A nil probe sends an Event
// every interval. An interval <= 0 sends nothing.
func Poll(ctx context.Context, every time.Duration, probe func() (string, error), out chan<- Event) (rebase func()) {
	var (
		mu   sync.Mutex
		last string
		ok   bool
	)
	rebase = func() {
		if probe == nil {
			return
		}
		v, err := probe()
		mu.Lock()
		last, ok = v, err == nil
		mu.Unlock()
	}
	if every <= 0 {
		return rebase
	}
	rebase()
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
					now, err := probe()
					mu.Lock()
					same := err == nil && ok && now == last
					mu.Unlock()
					if same {
						continue
					}
					name = "changed (polled every " + every.String() + ")"
				}
				send(out, Event{Source: SourcePoll, Name: name})
			}
		}
	}()
	return rebase
}
