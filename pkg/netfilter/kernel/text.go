package kernel

import (
	"context"
	"errors"
	"fmt"

	"github.com/ecs-remediator/ecs-remediator/pkg/netfilter/rule"
)

// Text reads one family's rules through the iptables binaries: one
// `<backend>-save` of every table (Whole), or `<Cmd> -t T -S CHAIN` per
// chain. It is the reader of last resort (it understands every rule
// iptables can print) and the slowest: iptables-nft fetches and checks
// every rule of the table for any command, iptables-legacy copies whole
// tables and libiptc parses and prints them all (figures in
// docs/performance.md). Only rules that may be ours are tokenised.
type Text struct {
	Run  Runner
	Cmd  string // iptables, ip6tables-legacy, /usr/sbin/iptables-nft, ...
	Save string // its -save sibling
	V6   bool
	// Whole reads with one -save (legacy, where every command copies the
	// whole tables anyway) instead of -S per chain.
	Whole bool
	// Unchanged, when set, keys a cache of the -save output (Whole only):
	// equal keys mean the tables cannot have changed (LegacyTablesHash
	// for the IPv6 legacy tables, which have no direct reader).
	Unchanged func() string
	saved     *Output
}

// Read reads the chains of in.
func (t *Text) Read(ctx context.Context, in rule.Interest) (*rule.Ruleset, error) {
	rs := rule.NewRuleset(t.V6)
	if t.Whole {
		var out []byte
		var err error
		if t.Unchanged != nil {
			out, err = RunCached(ctx, t.Run, &t.saved, t.Unchanged, t.Save)
		} else {
			out, err = t.Run.Run(ctx, nil, t.Save)
		}
		if err != nil {
			return nil, fmt.Errorf("read rules: %w", err)
		}
		if err := rule.ParseText(rs, string(out), "", in.Reads, in.Needles); err != nil {
			return nil, fmt.Errorf("parse %s output: %w", t.Save, err)
		}
		return rs, nil
	}
	for _, c := range in.Chains {
		table, name := c.Table, c.Chain
		out, err := t.Run.Run(ctx, nil, t.Cmd, "-t", table, "-S", name)
		if err != nil {
			if !rule.IsBuiltin(table, name) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
				// A user chain nobody created yet. Should it exist after
				// all, the repair's "-N" fails and nothing is flushed.
				rs.Chain(table, name).Exists = false
				continue
			}
			return nil, fmt.Errorf("read rules: %w", err)
		}
		if err := rule.ParseText(rs, string(out), table, in.Reads, in.Needles); err != nil {
			return nil, fmt.Errorf("parse %s -t %s -S %s output: %w", t.Cmd, table, name, err)
		}
		rs.Chain(table, name) // a builtin chain with no rules
	}
	return rs, nil
}

// ReadChain reads one chain with `<Cmd> -t table -S name` (the netlink
// reader's way for a chain holding a rule it cannot print).
func (t *Text) ReadChain(ctx context.Context, table, name string, needles []string) ([]rule.Rule, error) {
	out, err := t.Run.Run(ctx, nil, t.Cmd, "-t", table, "-S", name)
	if err != nil {
		return nil, fmt.Errorf("read rules: %w", err)
	}
	tmp := rule.NewRuleset(t.V6)
	keep := func(tb, n string) bool { return tb == table && n == name }
	if err := rule.ParseText(tmp, string(out), table, keep, needles); err != nil {
		return nil, fmt.Errorf("parse %s -t %s -S %s output: %w", t.Cmd, table, name, err)
	}
	return tmp.Chain(table, name).Rules, nil
}
