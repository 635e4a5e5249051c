package watch

import (
	"context"
	"fmt"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// SourceRoute: an IPv4 route was added or deleted.
const SourceRoute = "route"

// Routes sends an Event (SourceRoute, Name "newroute" or "delroute")
// for every IPv4 route change the kernel announces (rtnetlink group
// RTNLGRP_IPV4_ROUTE), in the network namespace of the calling thread:
// ecs-init's post-stop deletes the credentials route on IPv6-only hosts
// without touching a rule or a file. It returns once subscribed; a
// goroutine reads until ctx ends. On a read error it sends one
// SourceResync event and stops.
func Routes(ctx context.Context, out chan<- Event) error {
	c, err := netlink.Dial(unix.NETLINK_ROUTE, &netlink.Config{Groups: 1 << (unix.RTNLGRP_IPV4_ROUTE - 1)})
	if err != nil {
		return fmt.Errorf("subscribe to IPv4 route changes (rtnetlink): %w", err)
	}
	go func() {
		<-ctx.Done()
		c.Close()
	}()
	go func() {
		for {
			msgs, err := c.Receive()
			if err != nil {
				if ctx.Err() == nil {
					send(out, Event{Source: SourceResync, Name: "route events stopped: " + err.Error()})
				}
				return
			}
			for _, m := range msgs {
				switch m.Header.Type {
				case unix.RTM_NEWROUTE:
					send(out, Event{Source: SourceRoute, Name: "newroute", Settled: true})
				case unix.RTM_DELROUTE:
					send(out, Event{Source: SourceRoute, Name: "delroute", Settled: true})
				}
			}
		}
	}()
	return nil
}
