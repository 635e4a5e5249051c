package kernel

import (
	"context"
	"errors"

	"github.com/ecs-remediator/ecs-remediator/pkg/netfilter/rule"
)

// Reader reads one family's live rules: the chains of an Interest, with
// the rules that may be ours keyed (rule.Interest.Needles).
type Reader interface {
	Read(ctx context.Context, in rule.Interest) (*rule.Ruleset, error)
}

// Reasons a direct reader falls back to the iptables binaries.
const (
	// FallbackKernelError: the netlink or getsockopt read failed (a
	// sandbox, an old kernel, a changed ABI).
	FallbackKernelError = "kernel-error"
	// FallbackUnprintable: a rule that matters uses an expression or match
	// the decoder does not print (an iptables release that changed its
	// expression layout shows up here).
	FallbackUnprintable = "unprintable-rule"
)

// FallbackFunc is told, on the reading goroutine, of every read that falls
// back from the netlink (backend "nft") or getsockopt ("legacy") reader to
// the binaries, with a Fallback reason and the error (nil for an
// unprintable rule).
type FallbackFunc func(backend, reason string, err error)

// ErrUnprintable is returned by a direct reader when a rule that matters
// is one it cannot print: the read is done again as text.
var ErrUnprintable = errors.New("a rule that matters needs the iptables binaries to print it")

// fallback reads with a direct reader and, when that fails, with the
// binaries: an unknown expression or a refused socket costs time, never
// correctness. Every fall-back is told to fellBack, so that it shows up
// as a number.
type fallback struct {
	direct, text Reader
	backend      string // "nft" or "legacy", for fellBack
	fellBack     FallbackFunc
}

func (f *fallback) Read(ctx context.Context, in rule.Interest) (*rule.Ruleset, error) {
	rs, err := f.direct.Read(ctx, in)
	if err == nil || ctx.Err() != nil {
		return rs, err
	}
	if f.fellBack != nil {
		if errors.Is(err, ErrUnprintable) {
			f.fellBack(f.backend, FallbackUnprintable, nil)
		} else {
			f.fellBack(f.backend, FallbackKernelError, err)
		}
	}
	return f.text.Read(ctx, in)
}

// WithFallback reads with direct and, when it fails, with text, telling
// fellBack (nil: nobody) with backend ("nft", "legacy").
func WithFallback(direct, text Reader, backend string, fellBack FallbackFunc) Reader {
	return &fallback{direct: direct, text: text, backend: backend, fellBack: fellBack}
}
