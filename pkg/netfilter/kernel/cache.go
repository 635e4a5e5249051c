package kernel

import (
	"context"
	"strings"
)

// Output is one command's output and the state of the kernel it was read
// at. A steady reconcile would otherwise start processes (a -save of the
// IPv6 legacy tables, of the other backend, the evaluator's texts) for a
// few kilobytes that rarely change; each costs a process (see
// docs/performance.md, "Where a reconcile's time goes"). An Output is
// reused while a key computed from the kernel shows that what the command
// printed cannot have changed: the nf_tables generation (NFTGeneration)
// or a hash of the legacy tables (LegacyTablesHash). It is bound to the
// network namespace it was read in, so a cached text never crosses into
// another namespace.
type Output struct {
	id    string // the command line
	netns uint64
	key   string
	out   []byte
}

// RunCached runs name args with r unless *slot holds its output for the
// same command, network namespace and key. The key is computed before the
// command runs, so a change while it runs makes the next key differ; ""
// (not known) or an unknown namespace never match. The slot is replaced by
// each run and cleared by a failed one.
func RunCached(ctx context.Context, r Runner, slot **Output, key func() string, name string, args ...string) ([]byte, error) {
	id := name + " " + strings.Join(args, " ")
	netns, k := netNS(), key()
	if c := *slot; c != nil && netns != 0 && k != "" && c.id == id && c.netns == netns && c.key == k {
		return c.out, nil
	}
	out, err := r.Run(ctx, nil, name, args...)
	if err != nil {
		*slot = nil
		return nil, err
	}
	*slot = &Output{id: id, netns: netns, key: k, out: out}
	return out, nil
}
