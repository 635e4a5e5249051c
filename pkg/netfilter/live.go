package netfilter

import (
	"context"
	"fmt"
	"strings"

	"github.com/ecs-remediator/ecs-remediator/pkg/netfilter/kernel"
	"github.com/ecs-remediator/ecs-remediator/pkg/netfilter/rule"
)

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

// nft is the family's netlink reader and writer (nil unless the family
// is read over netlink).
func (e *Enforcer) nft(v6 bool) *kernel.NFT {
	if v6 {
		return e.nft6
	}
	return e.nft4
}

// newReader is kernel.New for t's binaries, its fall-backs told to
// OnFallback's hook.
func (e *Enforcer) newReader(t tools, v6 bool) (kernel.Reader, *kernel.NFT) {
	return kernel.New(t.binaries(v6), e.run, e.fellBack)
}

// textReader reads t's family with its binaries, as kernel.New's readers
// do when they fall back.
func (e *Enforcer) textReader(t tools, v6 bool) *kernel.Text {
	return kernel.NewText(t.binaries(v6), e.run)
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

// repair reads, plans and repairs; on a failed repair it reads again, up
// to attempts times. The result's after is the state after a successful
// repair. Where the time goes, with the figures, is in
// docs/performance.md ("Where a reconcile's time goes").
//
// Read over netlink (nf_tables), extra copies are deleted by handle and
// our missing rules re-added from the expressions the kernel once dumped,
// in one transaction bound to the generation the plan was read at
// (kernel.NFT.Apply); the state after it is derived, not read again
// (afterRepair). Only a rule never dumped, or a new chain, goes through
// one `iptables-nft-restore --noflush` batch. On legacy a repair is one
// `iptables-legacy-restore --noflush` batch and a read back. Either way
// only rules that may be ours are tokenised, and the shadow scan skips,
// unparsed, nat rules whose destination cannot be 169.254.170.2, so a
// reconcile is linear in the rules read, never foreign x ours.
func (e *Enforcer) repair(ctx context.Context, t tools, ws []rule.Want, v6 bool) familyResult {
	var lastErr error
	nft := e.nft(v6)
	for a := 0; a < attempts; a++ {
		fr := e.observe(ctx, t, ws, v6)
		if fr.err != nil {
			return fr
		}
		if len(fr.after.ops) == 0 {
			return fr
		}
		ops := fr.after.ops
		var dels []kernel.Delete
		direct := false // read over netlink: the result can be derived
		if d, rest, ok := byHandle(fr.after, fr.rs); ok && nft != nil {
			direct, dels, ops = true, d, rest
		}
		inserted := ops
		added := false // our inserts went over netlink, in the deletions' transaction
		if direct {
			adds, ok := addsOf(ops)
			if !ok {
				adds = nil
			}
			var err error
			if added, err = nft.Apply(fr.rs, dels, adds); err != nil {
				lastErr = err
				if ctx.Err() != nil {
					break
				}
				continue
			}
			if added {
				ops = nil
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
		if direct {
			adds, _ := addsOf(inserted)
			if added || nft.KnowsAll(adds) {
				if fr2, ok := e.afterRepair(fr, nft, dels, inserted, v6, added); ok {
					return fr2
				}
			}
		}
		applied := fr.after
		fr = e.observe(ctx, t, ws, v6)
		fr.applied = applied
		return fr
	}
	return familyResult{t: t, ws: ws, err: fmt.Errorf("repair rules (%d attempts): %w", attempts, lastErr)}
}

// addsOf is the inserts and appends of ops, for kernel.NFT; ok is false
// when ops hold anything else (a new chain), which needs a restore batch.
func addsOf(ops []op) (adds []kernel.Add, ok bool) {
	ok = true
	for _, o := range ops {
		if (o.verb != "-I" && o.verb != "-A") || o.st == nil {
			ok = false
			continue
		}
		a := kernel.Add{Table: o.table, Chain: o.chain, Key: o.st.w.Key}
		if o.verb == "-I" {
			a.Pos = o.pos
		}
		adds = append(adds, a)
	}
	return adds, ok
}

// afterRepair is the state after a repair of rules read over netlink,
// without dumping every chain again: when the generation moved by exactly
// our transactions (one for the deletions by handle, one per table of the
// restore batch: iptables-nft-restore commits at each COMMIT), nothing
// else changed, so the rules are the ones read, minus the
// ones deleted, plus the ones the batch inserted where it inserted them.
// Inserted rules have no handle until the next read (a deletion of one of
// them would go through a restore batch).
func (e *Enforcer) afterRepair(fr familyResult, nft *kernel.NFT, dels []kernel.Delete, ops []op, v6 bool, oneTxn bool) (familyResult, bool) {
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
	gen, err := nft.Generation()
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
	nft.Remember(rs, rule.InterestOf(fr.ws))
	out := familyResult{t: fr.t, ws: fr.ws, rs: rs, after: makePlan(fr.ws, rs), applied: fr.after}
	return out, true
}

// without is rs after the rules ds were deleted, at generation gen.
func without(rs *rule.Ruleset, ds []kernel.Delete, gen uint32) *rule.Ruleset {
	gone := map[kernel.Delete]bool{} // handles are per table
	for _, d := range ds {
		gone[d] = true
	}
	out := rs.Clone()
	out.Gen = gen
	for _, cs := range out.Tables {
		for _, c := range cs {
			kept := c.Rules[:0]
			for _, r := range c.Rules {
				if !gone[kernel.Delete{Table: c.Table, Chain: c.Name, Handle: r.Handle}] {
					kept = append(kept, r)
				}
			}
			c.Rules = kept
		}
	}
	return out
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
func byHandle(p *plan, rs *rule.Ruleset) (dels []kernel.Delete, rest []op, ok bool) {
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
			dels = append(dels, kernel.Delete{Table: o.table, Chain: o.chain, Handle: rules[o.idx].Handle})
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
