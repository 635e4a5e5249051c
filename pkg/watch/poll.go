package watch

import (
	"context"
	"time"
)

// Poll sends an Event (SourcePoll) every interval until ctx ends, for what
// sends no change events (the legacy iptables backend). It returns at once;
// a goroutine does the sending. An interval <= 0 sends nothing.
func Poll(ctx context.Context, every time.Duration, out chan<- Event) {
	if every <= 0 {
		return
	}
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				send(out, Event{Source: SourcePoll, Name: "every " + every.String()})
			}
		}
	}()
}
