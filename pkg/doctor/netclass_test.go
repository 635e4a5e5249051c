package doctor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"
)

func TestClassify(t *testing.T) {
	dialErr := func(errno error) error {
		return &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", errno)}
	}
	for _, tc := range []struct {
		name string
		err  error
		want netFailure
	}{
		{"refused", dialErr(syscall.ECONNREFUSED), netRefused},
		{"wrapped refused", fmt.Errorf("get: %w", dialErr(syscall.ECONNREFUSED)), netRefused},
		{"no route", dialErr(syscall.ENETUNREACH), netUnreachable},
		{"host unreachable", dialErr(syscall.EHOSTUNREACH), netUnreachable},
		{"deadline", fmt.Errorf("get: %w", context.DeadlineExceeded), netTimeout},
		{"connect timed out", dialErr(syscall.ETIMEDOUT), netTimeout},
		{"other", errors.New("boom"), netOther},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := classify(tc.err); got != tc.want {
				t.Fatalf("classify(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}
