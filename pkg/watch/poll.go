package watch

import (
	"context"
	"time"
)

// Poll looks every interval at what sends no change events (the legacy
// iptables backend) until ctx ends. It returns at once; a goroutine does
// the looking. With a probe, it sends an Event (SourcePoll) only when the
// probe's answer differs from the last one, so that an idle host costs one
// cheap probe per interval instead of a reconcile; a probe that fails
// sends an Event every time (it cannot tell, so the caller must look).
// A nil probe sends an Event every interval. An interval <= 0 sends
// nothing.
func Poll(ctx context.Context, every time.Duration, probe func() (string, error), out chan<- Event) {
	if every <= 0 {
		return
	}
	var last string
	if probe != nil {
		last, _ = probe()
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
					now, err := probe()
					if err == nil && now == last {
						continue
					}
					last = now
					name = "changed (polled every " + every.String() + ")"
				}
				send(out, Event{Source: SourcePoll, Name: name})
			}
		}
	}()
}
