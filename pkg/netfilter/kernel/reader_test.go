package kernel

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/ecs-remediator/ecs-remediator/pkg/netfilter/rule"
)

type failReader struct{ err error }

func (f failReader) Read(context.Context, rule.Interest) (*rule.Ruleset, error) { return nil, f.err }

// A direct reader that fails sends the read to the binaries and says why.
func TestFallbackIsCounted(t *testing.T) {
	refused := errors.New("netlink: operation not permitted")
	for _, tc := range []struct {
		err  error
		want string
	}{
		{refused, "nft kernel-error " + refused.Error()},
		{fmt.Errorf("read: %w", ErrUnprintable), "nft unprintable-rule <nil>"},
	} {
		f := &fakeRunner{out: map[string]string{"iptables -t nat -S PREROUTING": "-P PREROUTING ACCEPT\n", "iptables -t filter -S FORWARD": "-P FORWARD ACCEPT\n"}}
		var got []string
		r := withFallback(failReader{tc.err}, &Text{Run: f, Cmd: "iptables"}, "nft", func(backend, reason string, err error) {
			got = append(got, fmt.Sprintf("%s %s %v", backend, reason, err))
		})
		if _, err := r.Read(context.Background(), textInterest); err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0] != tc.want || len(f.runs) != 3 {
			t.Errorf("fall-backs %q (want %q), runs %q", got, tc.want, f.runs)
		}
	}
	// A cancelled read is not a fall-back.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := withFallback(failReader{context.Canceled}, &Text{Run: &fakeRunner{}}, "nft", func(string, string, error) { t.Error("fell back on a cancelled read") })
	if _, err := r.Read(ctx, textInterest); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled read: %v", err)
	}
}
