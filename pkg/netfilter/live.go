package netfilter

import (
	"context"
	"fmt"
	"strings"

	"github.com/ecs-remediator/ecs-remediator/pkg/netfilter/kernel"
	"github.com/ecs-remediator/ecs-remediator/pkg/netfilter/rule"
	"github.com/ecs-remediator/ecs-remediator/pkg/nfnetlink"
)

// Reading and repairing the kernel's rules for one family (IPv4 with
// iptables, IPv6 with ip6tables). Where the time goes, with the figures,
// is in docs/performance.md ("Where a reconcile's time goes"); in short:
//
// nf_tables: iptables-nft fetches and checks every rule of the table for
// any command, so the rules are read over netlink (nftread.go): the kernel
// dumps only the chains we need, in parallel, and rules that may be ours
// are printed by nftText and keyed by the same parser. The read is cached
// by the nf_tables generation. A repair deletes by handle and re-adds our
// rules from the expressions the kernel once dumped (nlinsert.go), in one
// transaction bound to the generation it was planned at; the state after
// it is derived, not read again. Only a rule never dumped, or a new chain,
// goes through one `iptables-nft-restore --noflush` batch.
//
// legacy: every command copies whole tables out of the kernel and libiptc
// parses and prints them all, so the IPv4 tables are copied with
// getsockopt(IPT_SO_GET_ENTRIES) ourselves (iptlegacy.go) and only the
// rules that matter are printed. There is no generation to cache by. A
// repair is one `iptables-legacy-restore --noflush` batch and a read back.
// IPv6 still reads with ip6tables-legacy-save (cached, savecache.go).
//
// A rule the direct readers cannot print, when it matters, sends that read
// to the text path (`iptables -S` per chain, or the -save), counted by
// OnFallback: an unknown expression costs time, never correctness. Either
// way only rules that may be ours are tokenised, and the shadow scan skips,
// unparsed, nat rules whose destination cannot be 169.254.170.2, so a
// reconcile is linear in the rules read, never foreign x ours.

// attempts bounds the read-plan-restore loop: a restore fails as a whole
// when another writer (ecs-init's stop) removed one of the rules it names
// in between; reading again sees the new state.
const attempts = 3

// reader is the family's reader of the live rules.
func (e *Enforcer) reader(v6 bool) kernel.Reader {
	if v6 {
		return e.read6
	}
	return e.read4
}

// newReader picks the reader for t's backend: netlink on nf_tables,
// getsockopt for the legacy IPv4 tables, each falling back to the
// binaries (counted by OnFallback); the binaries for the legacy IPv6
// tables, their -save kept while the tables hash the same (v6LegacyKey).
func (e *Enforcer) newReader(t tools, v6 bool) kernel.Reader {
	text := e.textReader(t, v6)
	switch {
	case t.backend == backendNFT:
		return kernel.WithFallback(&nftReader{e: e, text: text, v6: v6}, text, "nft", e.fellBack)
	case !v6:
		return kernel.WithFallback(legacyReader{e}, text, "legacy", e.fellBack)
	}
	text.Unchanged = v6LegacyKey
	return text
}

// textReader reads t's family with its binaries: one -save on legacy,
// where every command copies the whole tables anyway, else -S per chain.
func (e *Enforcer) textReader(t tools, v6 bool) *kernel.Text {
	return &kernel.Text{Run: e.run, Cmd: t.cmd, Save: t.save, V6: v6, Whole: t.backend == backendLegacy}
}

// familyResult is the outcome for one family.
type familyResult struct {
	t       tools
	ws      []rule.Want
	after   *plan // the state as it stands at the end (nil on error)
	applied *plan // what was repaired (or, in dry-run, would be)
	rs      *rule.Ruleset
	err     error
}

// observe reads and plans without changing anything.
func (e *Enforcer) observe(ctx context.Context, t tools, ws []rule.Want, v6 bool) familyResult {
	fr := familyResult{t: t, ws: ws}
	rs, err := e.reader(v6).Read(ctx, rule.InterestOf(ws))
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
func (e *Enforcer) repair(ctx context.Context, t tools, ws []rule.Want, v6 bool) familyResult {
	var lastErr error
	for a := 0; a < attempts; a++ {
		fr := e.observe(ctx, t, ws, v6)
		if fr.err != nil {
			return fr
		}
		if len(fr.after.ops) == 0 {
			return fr
		}
		ops := fr.after.ops
		var dels []nlDelete
		direct := false // read over netlink: the result can be derived
		if d, rest, ok := byHandle(fr.after, fr.rs); ok {
			direct, dels, ops = true, d, rest
		}
		var adds []nfnetlink.Request // our inserts over netlink, in the deletions' transaction
		inserted := ops
		if direct && t.backend == backendNFT {
			if reqs, ok := e.insertsByNetlink(ops, fr.rs, dels, v6); ok && len(reqs) > 0 {
				adds, ops = reqs, nil
			}
		}
		if len(dels) > 0 || len(adds) > 0 {
			c, err := nlDial()
			if err == nil {
				err = c.batch(family(v6), fr.rs.Gen, dels, adds)
				c.close()
			}
			if err != nil {
				lastErr = err
				if ctx.Err() != nil {
					break
				}
				continue
			}
		}
		if len(ops) > 0 {
			batch := restoreBatch(ops, fr.after.tables)
			args := []string{"--noflush"}
			if t.backend == backendLegacy {
				args = append(args, "--wait=5")
			}
			if _, err := e.run.Run(ctx, batch, t.restore, args...); err != nil {
				lastErr = fmt.Errorf("%w; batch was:\n%s", err, strings.TrimSpace(string(batch)))
				if ctx.Err() != nil {
					break
				}
				continue
			}
		}
		// The state after the batch is derived, not read back, unless a
		// rule the restore inserted was never dumped: then one read takes
		// its expressions, so the next repair of it needs no restore.
		if direct && (len(adds) > 0 || e.knowExprs(inserted, v6)) {
			if fr2, ok := e.afterRepair(fr, dels, inserted, v6, len(adds) > 0); ok {
				return fr2
			}
		}
		applied := fr.after
		fr = e.observe(ctx, t, ws, v6)
		fr.applied = applied
		return fr
	}
	return familyResult{t: t, ws: ws, err: fmt.Errorf("repair rules (%d attempts): %w", attempts, lastErr)}
}

// afterRepair is the state after a repair of rules read over netlink,
// without dumping every chain again: when the generation moved by exactly
// our transactions (one for the deletions by handle, one per table of the
// restore batch: iptables-nft-restore commits at each COMMIT), nothing
// else changed, so the rules are the ones read, minus the
// ones deleted, plus the ones the batch inserted where it inserted them.
// Inserted rules have no handle until the next read (a deletion of one of
// them would go through a restore batch).
func (e *Enforcer) afterRepair(fr familyResult, dels []nlDelete, ops []op, v6 bool, oneTxn bool) (familyResult, bool) {
	want := fr.rs.Gen
	if len(dels) > 0 || oneTxn {
		want++
	}
	seen := map[string]bool{} // iptables-nft-restore commits once per table
	for _, o := range ops {
		if !seen[o.table] && !oneTxn {
			seen[o.table] = true
			want++
		}
	}
	c, err := nlDial()
	if err != nil {
		return fr, false
	}
	gen, err := c.genID()
	c.close()
	if err != nil || gen != want {
		return fr, false
	}
	rs := without(fr.rs, dels, gen)
	for _, o := range ops {
		ch := rs.Chain(o.table, o.chain)
		switch o.verb {
		case "-N":
			ch.Exists = true
			continue
		case "-I", "-A":
		default:
			return fr, false
		}
		r := rule.Rule{Text: o.text}
		r.ParseKey(v6)
		at := len(ch.Rules)
		if o.verb == "-I" {
			at = o.pos - 1
		}
		if at < 0 || at > len(ch.Rules) {
			return fr, false
		}
		ch.Exists = true
		ch.Rules = append(ch.Rules, rule.Rule{})
		copy(ch.Rules[at+1:], ch.Rules[at:])
		ch.Rules[at] = r
	}
	if netns := netnsID(); netns != 0 {
		e.remember(v6, netns, rule.InterestOf(fr.ws).ChainsKey(), rs)
	}
	out := familyResult{t: fr.t, ws: fr.ws, rs: rs, after: makePlan(fr.ws, rs), applied: fr.after}
	return out, true
}

// byHandle splits a plan read over netlink into deletions by handle and
// the rest (inserts, appends, -N) for the restore batch. A duplicated rule
// keeps its first copy (the plan's delete-all-and-reinsert-there has the
// same outcome, but the rule would be missing between the two steps);
// the extra copies, and every copy of a misordered rule, are deleted by
// handle in one transaction bound to the generation the plan was read
// at. iptables-nft-restore would have to fetch and compare every rule of
// the table to find a rule by its text. ok is false when handles are not
// known (the rules were read as text).
func byHandle(p *plan, rs *rule.Ruleset) (dels []nlDelete, rest []op, ok bool) {
	if rs == nil || !rs.Netlink {
		return nil, nil, false
	}
	for _, o := range p.ops {
		dup := o.st != nil && o.st.copies > 1 && !o.st.misordered
		switch {
		case o.verb == "-D" && dup && o.idx == o.st.firstPos-1:
			// the copy we keep
		case o.verb == "-D":
			rules := rs.Chain(o.table, o.chain).Rules
			if o.idx >= len(rules) || rules[o.idx].Handle == 0 {
				return nil, nil, false
			}
			dels = append(dels, nlDelete{table: o.table, chain: o.chain, handle: rules[o.idx].Handle})
		case dup: // the re-insert of the kept copy
		default:
			rest = append(rest, o)
		}
	}
	return dels, rest, true
}

// forwardJumps reports whether FORWARD jumps to chain (when it was read).
func forwardJumps(rs *rule.Ruleset, name string) (bool, bool) {
	if rs == nil || !rs.Has("filter", "FORWARD") {
		return false, false
	}
	for _, r := range rs.Chain("filter", "FORWARD").Rules {
		if rule.TargetOf(r.Text) == name {
			return true, true
		}
	}
	return false, true
}
