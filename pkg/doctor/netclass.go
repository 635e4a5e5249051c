package doctor

import (
	"context"
	"errors"
	"net"
	"syscall"
)

// netFailure is why a request got no HTTP answer.
type netFailure int

const (
	netOther       netFailure = iota
	netRefused                // RST: the address is reachable, nothing listens
	netTimeout                // no answer before the deadline: dropped or not routed
	netUnreachable            // the kernel has no route / host unreachable
)

func (f netFailure) String() string {
	switch f {
	case netRefused:
		return "connection refused"
	case netTimeout:
		return "no answer before the deadline"
	case netUnreachable:
		return "network unreachable"
	}
	return "request failed"
}

// classify tells why a request failed. Refusal is checked first: a refused
// connect is definite even when the context also ran out meanwhile.
func classify(err error) netFailure {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return netRefused
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH):
		return netUnreachable
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, syscall.ETIMEDOUT):
		return netTimeout
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return netTimeout
	}
	return netOther
}
