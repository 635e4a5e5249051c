package doctor

import (
	"context"
	"net"
	"net/http"
	"time"
)

// Dialling from a network namespace.
//
// nstest.Run puts only its own (locked) thread into the test namespace.
// http.Transport dials from other goroutines, which run on other threads,
// in the host namespace — a test that simply called the check would probe
// the host. So the test gives the check an http.Client (Config.HTTPClient)
// whose DialContext hands every dial to the namespace thread over a
// channel; serveDials, running on that thread, creates the socket there
// and hands the connected net.Conn back. A socket stays in the namespace it
// was created in, whichever thread later reads or writes it, so the whole
// request really travels through the namespace's routes and iptables
// rules.

type nsDialRequest struct {
	ctx           context.Context
	network, addr string
	reply         chan nsDialReply
}

type nsDialReply struct {
	conn net.Conn
	err  error
}

// nsHTTPClient returns a client whose connections are dialled by
// serveDials.
func nsHTTPClient(dials chan<- nsDialRequest) *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:             nil,
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			req := nsDialRequest{ctx: ctx, network: network, addr: addr, reply: make(chan nsDialReply, 1)}
			select {
			case dials <- req:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			rep := <-req.reply
			return rep.conn, rep.err
		},
	}}
}

// serveDials must be called on the namespace thread (from the nstest.Run
// function). It dials for nsHTTPClient until done yields, and returns
// that value. Each connect is bounded by connectTimeout, as in doctor's own
// client: http.Transport does not cancel a dial when the request's context
// ends, so an unanswered SYN would otherwise hold the thread for minutes.
func serveDials[T any](dials <-chan nsDialRequest, done <-chan T, connectTimeout time.Duration) T {
	for {
		select {
		case req := <-dials:
			conn, err := (&net.Dialer{Timeout: connectTimeout}).DialContext(req.ctx, req.network, req.addr)
			req.reply <- nsDialReply{conn, err}
		case v := <-done:
			return v
		}
	}
}
