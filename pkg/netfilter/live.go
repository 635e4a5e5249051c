package netfilter

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Reading and repairing the kernel's rules for one family (IPv4 with
// iptables, IPv6 with ip6tables).
//
// Cost (see BenchmarkReconcile and BenchmarkRead): the legacy backend
// copies a whole table out of the kernel for every command, so one
// `iptables-legacy-save` (all tables, one exec) is cheapest. iptables-nft
// fetches only the chain asked for, so `iptables-nft -t T -S CHAIN` for
// the 2-5 chains we need avoids reading Docker's or other tools' big chains
// at all. Either way the output is scanned once and only rules that could
// be ours are tokenised. A repair is one `<backend>-restore --noflush`
// batch for all tables of the family, so the cost of a reconcile is
// linear in the rules read, never foreign x ours.

// attempts bounds the read-plan-restore loop: a restore fails as a whole
// when another writer (ecs-init's stop) removed one of the rules it names
// in between; reading again sees the new state.
const attempts = 3

// chainsOf lists the chains the wants need, and FORWARD when DOCKER-USER
// is used (to tell whether Docker jumps to it).
func chainsOf(ws []want) map[[2]string]bool {
	m := map[[2]string]bool{}
	for _, w := range ws {
		m[[2]string{w.table, w.chain}] = true
		if w.newChain {
			m[[2]string{"filter", "FORWARD"}] = true
		}
	}
	return m
}

func needlesOf(ws []want) []string {
	var ns []string
	seen := map[string]bool{}
	for _, w := range ws {
		if !seen[w.needle] {
			seen[w.needle] = true
			ns = append(ns, w.needle)
		}
	}
	return ns
}

// read reads the chains the wants need.
func (e *Enforcer) read(ctx context.Context, t tools, ws []want, v6 bool) (*ruleset, error) {
	chains := chainsOf(ws)
	keep := func(table, name string) bool { return chains[[2]string{table, name}] }
	needles := needlesOf(ws)
	rs := newRuleset(v6)
	whole := t.backend == backendLegacy
	if e.readMode != "" { // benchmarks compare both ways
		whole = e.readMode == "save"
	}
	if whole {
		out, err := e.r.run(ctx, nil, t.save)
		if err != nil {
			return nil, fmt.Errorf("read rules: %w", err)
		}
		if err := parseRules(rs, string(out), "", keep, needles); err != nil {
			return nil, fmt.Errorf("parse %s output: %w", t.save, err)
		}
		return rs, nil
	}
	for k := range orderedChains(chains) {
		table, name := k[0], k[1]
		out, err := e.r.run(ctx, nil, t.cmd, "-t", table, "-S", name)
		if err != nil {
			if !builtinChain(table, name) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
				// A user chain nobody created yet. Should it exist after
				// all, the repair's "-N" fails and nothing is flushed.
				rs.chain(table, name).exists = false
				continue
			}
			return nil, fmt.Errorf("read rules: %w", err)
		}
		if err := parseRules(rs, string(out), table, keep, needles); err != nil {
			return nil, fmt.Errorf("parse %s -t %s -S %s output: %w", t.cmd, table, name, err)
		}
		rs.chain(table, name) // a builtin chain with no rules
	}
	return rs, nil
}

// orderedChains yields the chains in a stable order (so commands and tests
// are reproducible).
func orderedChains(m map[[2]string]bool) func(func([2]string) bool) {
	return func(yield func([2]string) bool) {
		for _, table := range []string{"nat", "filter"} {
			for _, name := range []string{"PREROUTING", "OUTPUT", "INPUT", "FORWARD", "DOCKER-USER"} {
				if m[[2]string{table, name}] && !yield([2]string{table, name}) {
					return
				}
			}
		}
	}
}

// familyResult is the outcome for one family.
type familyResult struct {
	t       tools
	ws      []want
	after   *plan // the state as it stands at the end (nil on error)
	applied *plan // what was repaired (or, in dry-run, would be)
	rs      *ruleset
	err     error
}

// observe reads and plans without changing anything.
func (e *Enforcer) observe(ctx context.Context, t tools, ws []want, v6 bool) familyResult {
	fr := familyResult{t: t, ws: ws}
	rs, err := e.read(ctx, t, ws, v6)
	if err != nil {
		fr.err = err
		return fr
	}
	fr.rs = rs
	fr.after = makePlan(ws, rs)
	return fr
}

// repair reads, plans and runs the batch; on a failed batch it reads
// again, up to attempts times. The result's after is read back from the
// kernel after a successful batch.
func (e *Enforcer) repair(ctx context.Context, t tools, ws []want, v6 bool) familyResult {
	var lastErr error
	for a := 0; a < attempts; a++ {
		fr := e.observe(ctx, t, ws, v6)
		if fr.err != nil {
			return fr
		}
		if len(fr.after.ops) == 0 {
			return fr
		}
		batch := fr.after.batch()
		args := []string{"--noflush"}
		if t.backend == backendLegacy {
			args = append(args, "--wait=5")
		}
		if _, err := e.r.run(ctx, batch, t.restore, args...); err != nil {
			lastErr = fmt.Errorf("%w; batch was:\n%s", err, strings.TrimSpace(string(batch)))
			if ctx.Err() != nil {
				break
			}
			continue
		}
		applied := fr.after
		fr = e.observe(ctx, t, ws, v6)
		fr.applied = applied
		return fr
	}
	return familyResult{t: t, ws: ws, err: fmt.Errorf("repair rules (%d attempts): %w", attempts, lastErr)}
}

// forwardJumps reports whether FORWARD jumps to chain (when it was read).
func (rs *ruleset) forwardJumps(name string) (bool, bool) {
	if rs == nil || !rs.has("filter", "FORWARD") {
		return false, false
	}
	for _, r := range rs.chain("filter", "FORWARD").rules {
		if targetOf(r.text) == name {
			return true, true
		}
	}
	return false, true
}
