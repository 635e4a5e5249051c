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

// Binaries are one family's iptables binaries, of one backend.
type Binaries struct {
	Cmd    string // iptables, ip6tables-legacy, /usr/sbin/iptables-nft, ...
	Save   string // its -save sibling
	V6     bool
	Legacy bool // the legacy backend (else nf_tables)
}

// New picks the reader for b's backend: on nf_tables the netlink reader
// (returned as nft too: it also writes the repairs), for the legacy IPv4
// tables the getsockopt one, each falling back to the binaries, told to
// fellBack; for the legacy IPv6 tables the binaries, their -save kept
// while the tables hash the same (LegacyTablesHash).
func New(b Binaries, run Runner, fellBack FallbackFunc) (r Reader, nft *NFT) {
	text := NewText(b, run)
	switch {
	case !b.Legacy:
		nft = &NFT{V6: b.V6, Text: text, FellBack: fellBack, Cache: true}
		return withFallback(nft, text, "nft", fellBack), nft
	case !b.V6:
		return withFallback(Legacy{}, text, "legacy", fellBack), nil
	}
	text.Unchanged = func() string { return LegacyTablesHash(true) }
	return text, nil
}

// NewText is the text reader of b: one -save on legacy, where every
// command copies the whole tables anyway, else -S per chain.
func NewText(b Binaries, run Runner) *Text {
	return &Text{Run: run, Cmd: b.Cmd, Save: b.Save, V6: b.V6, Whole: b.Legacy}
}

// withFallback reads with direct and, when it fails, with text, telling
// fellBack (nil: nobody) with backend ("nft", "legacy").
func withFallback(direct, text Reader, backend string, fellBack FallbackFunc) Reader {
	return &fallback{direct: direct, text: text, backend: backend, fellBack: fellBack}
}
