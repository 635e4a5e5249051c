package netfilter

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/ecs-remediator/ecs-remediator/pkg/netfilter/rule"
)

// ruleState is what was found for one wanted rule.
type ruleState struct {
	w           *rule.Want
	copies      int
	firstPos    int    // 1-based position of the first copy (0: absent)
	misordered  bool   // after the rule it must precede
	mustPrecede string // that rule, when misordered
	chainGone   bool   // its (user) chain does not exist
	shadowedBy  string // a foreign rule above it that may decide first
	satisfiedBy string // absent, and not needed: this equivalent is there
	shadowSure  bool   // shadowedBy certainly accepts some of its packets (rawguard.go)
	action      string // what the plan does about it ("" nothing)
	pos         int    // where it will be (for inserts)
}

// op is one line of a restore batch.
type op struct {
	table, chain string
	verb         string     // -N, -D, -I, -A
	pos          int        // for -I
	text         string     // rule text (for -D: as printed; else ours)
	idx          int        // for -D: index of the rule in the chain as read
	st           *ruleState // the rule of ours the op is about (nil for -N)
}

func (o op) restoreLine() string {
	switch o.verb {
	case "-N":
		return "-N " + o.chain
	case "-I":
		return fmt.Sprintf("-I %s %d %s", o.chain, o.pos, o.text)
	}
	return o.verb + " " + o.chain + " " + o.text
}

// command is the same operation as a stand-alone iptables command.
func (o op) command(bin string) string {
	return bin + " -t " + o.table + " " + o.restoreLine()
}

// plan is the result of comparing wants with one family's ruleset.
type plan struct {
	states []*ruleState
	ops    []op
	tables []string // tables touched, in first-use order
}

// restoreBatch is the restore input for ops: one section per table of
// tables, each with its ops in order (a plan puts deletions first).
func restoreBatch(ops []op, tables []string) []byte {
	var b strings.Builder
	for _, t := range tables {
		b.WriteString("*" + t + "\n")
		for _, o := range ops {
			if o.table == t {
				b.WriteString(o.restoreLine() + "\n")
			}
		}
		b.WriteString("COMMIT\n")
	}
	return []byte(b.String())
}

// slot is one rule of the chain as it will be after the batch.
type slot struct {
	ours   int // index into wants, -1 for a foreign rule
	insert bool
}

// makePlan compares ws (one family) with rs. Planning is pure: from the
// rules we want and the ruleset as read, decide which of our rules are
// missing, duplicated or out of order, and the one iptables-restore batch
// that repairs them. Foreign rules are only ever read: deletions name one
// of OUR rules by its printed text, so even a stale batch cannot delete
// anything else (and restore fails as a whole when a rule is gone, which
// the caller answers by reading again).
func makePlan(ws []rule.Want, rs *rule.Ruleset) *plan {
	p := &plan{}
	states := make([]*ruleState, len(ws))
	for i := range ws {
		states[i] = &ruleState{w: &ws[i]}
	}
	p.states = states
	type chainKey struct{ table, chain string }
	var order []chainKey
	byChain := map[chainKey][]int{}
	for i, w := range ws {
		k := chainKey{w.Table, w.Chain}
		if _, ok := byChain[k]; !ok {
			order = append(order, k)
		}
		byChain[k] = append(byChain[k], i)
	}
	for _, k := range order {
		p.planChain(ws, states, byChain[k], rs.Chain(k.table, k.chain))
	}
	return p
}

func (p *plan) planChain(ws []rule.Want, states []*ruleState, idx []int, c *rule.Chain) {
	byKey := map[string]int{}
	for _, i := range idx {
		byKey[ws[i].Key] = i
	}
	owner := make([]int, len(c.Rules))
	first := map[int]int{} // want -> index of first copy
	for j := range c.Rules {
		owner[j] = -1
		if k := c.Rules[j].Key; k != "" {
			if i, ok := byKey[k]; ok {
				owner[j] = i
				if states[i].copies == 0 {
					first[i] = j
					states[i].firstPos = j + 1
				}
				states[i].copies++
			}
		}
	}
	for _, i := range idx {
		if states[i].copies == 0 {
			continue
		}
		for _, k := range ws[i].Satisfies {
			if t, ok := byKey[k]; ok && states[t].copies == 0 {
				states[t].satisfiedBy = ws[i].Spell()
			}
		}
	}
	for _, i := range idx {
		b, ok := byKey[ws[i].Before]
		if ok && states[i].copies > 0 && states[b].copies > 0 && first[i] > first[b] {
			states[i].misordered = true
			states[i].mustPrecede = ws[b].Spell()
		}
		if !c.Exists {
			states[i].chainGone = true
		}
	}
	p.shadowScan(ws, states, idx, c, owner, first)

	// The chain as it will be: foreign rules stay, extra copies go, a
	// deduplicated rule is deleted and re-inserted where its first copy was.
	var final []slot
	for j, i := range owner {
		switch {
		case i < 0:
			final = append(final, slot{ours: -1})
		case j == first[i] && !states[i].misordered:
			final = append(final, slot{ours: i, insert: states[i].copies > 1})
		}
	}
	for _, i := range idx {
		s := states[i]
		if s.misordered {
			at := indexOf(final, byKey[ws[i].Before])
			final = insertSlot(final, at, slot{ours: i, insert: true})
		}
	}
	for _, i := range idx {
		if states[i].copies > 0 || !ws[i].Required || states[i].satisfiedBy != "" {
			continue
		}
		at := len(final)
		if ws[i].Place == rule.Top {
			at = topPosition(ws, final, i)
		}
		final = insertSlot(final, at, slot{ours: i, insert: true})
	}

	// Emit: create the chain, delete every copy of a rule we re-place,
	// then insert in ascending final position (each position is then
	// already right), and append at the end.
	emit := func(o op) {
		o.table, o.chain = c.Table, c.Name
		p.ops = append(p.ops, o)
		for _, t := range p.tables {
			if t == c.Table {
				return
			}
		}
		p.tables = append(p.tables, c.Table)
	}
	if !c.Exists {
		for _, i := range idx {
			if ws[i].Required && ws[i].NewChain {
				emit(op{verb: "-N"})
				break
			}
		}
	}
	for j, i := range owner {
		if i >= 0 && (states[i].copies > 1 || states[i].misordered) {
			emit(op{verb: "-D", text: c.Rules[j].Text, idx: j, st: states[i]})
		}
	}
	for pos, s := range final {
		if !s.insert {
			continue
		}
		st := states[s.ours]
		w := &ws[s.ours]
		st.pos = pos + 1
		switch {
		case st.copies > 1:
			st.action = fmt.Sprintf("deleted duplicate rule (%d copies -> 1)", st.copies)
		case st.misordered:
			st.action = "moved rule above " + st.mustPrecede
		case w.Place == rule.Append:
			st.action = "appended rule"
		default:
			st.action = "inserted rule"
		}
		if st.action == "appended rule" {
			emit(op{verb: "-A", text: w.Spell(), st: st})
		} else {
			emit(op{verb: "-I", pos: pos + 1, text: w.Spell(), st: st})
		}
	}
}

// topPosition is where a missing top-placed rule goes: right before the
// first of our rules that follows it in group order, else right after the
// last of ours that precedes it, else at the top of the chain.
func topPosition(ws []rule.Want, final []slot, i int) int {
	after := -1
	for j, s := range final {
		if s.ours < 0 {
			continue
		}
		if ws[s.ours].Order > ws[i].Order {
			return j
		}
		after = j
	}
	return after + 1
}

func indexOf(final []slot, ours int) int {
	for j, s := range final {
		if s.ours == ours {
			return j
		}
	}
	return len(final)
}

func insertSlot(s []slot, at int, v slot) []slot {
	s = append(s, slot{})
	copy(s[at+1:], s[at:])
	s[at] = v
	return s
}

// shadowScan walks the chain once, up to the last of our rules, and notes
// for each of our rules the first foreign rule above it that may decide
// first. Cost: one pass; foreign rules are parsed only there.
func (p *plan) shadowScan(ws []rule.Want, states []*ruleState, idx []int, c *rule.Chain, owner []int, first map[int]int) {
	var pending []int
	last := -1
	wsps := map[int]*rule.Spec{}
	for _, i := range idx {
		if states[i].copies == 0 || ws[i].Args[len(ws[i].Args)-1] == "ACCEPT" {
			continue
		}
		_, sp, err := rule.Key(ws[i].Spell(), ws[i].V6)
		if err != nil {
			continue
		}
		wsps[i] = sp
		pending = append(pending, i)
		if first[i] > last {
			last = first[i]
		}
	}
	for j := 0; j <= last && len(pending) > 0; j++ {
		if owner[j] >= 0 {
			kept := pending[:0]
			for _, i := range pending {
				if first[i] != j {
					kept = append(kept, i)
				}
			}
			pending = kept
			continue
		}
		r := &c.Rules[j]
		if rule.IsPassive(rule.TargetOf(r.Text)) {
			continue // cheap pre-check: LOG, MARK, ... never decide
		}
		if r.Opaque || (c.Table == "nat" && r.NotOurDst) {
			continue // read over netlink and proven irrelevant (see kernel.NFT)
		}
		if c.Table == "nat" && !strings.Contains(r.Text, "-d ") && !strings.Contains(r.Text, "--d") {
			continue // no destination: cannot name our address
		}
		if c.Table == "nat" && dstExcludes(r.Text, credentialsAddr) {
			continue // its destination provably is not our address
		}
		f := r.Spec(ws[idx[0]].V6)
		for _, i := range pending {
			if states[i].shadowedBy == "" && shadows(f, &ws[i], wsps[i]) {
				states[i].shadowedBy = fmt.Sprintf("rule %d of %s (-A %s %s)", j+1, c.Name, c.Name, r.Text)
				states[i].shadowSure = shadowSure(f, &ws[i], wsps[i])
			}
		}
	}
}

// dstExcludes is a cheap test on a printed nat rule: it has exactly one
// destination option, spelled as iptables-save prints it ("-d A/N",
// optionally negated), and that destination cannot be addr (shadows
// would say no after a full parse). Any other spelling returns false and
// the rule is parsed.
func dstExcludes(text, addr string) bool {
	toks := strings.Fields(text)
	at := -1
	for i, t := range toks {
		switch t {
		case "-d":
			if at >= 0 {
				return false
			}
			at = i
		case "--destination", "--dst":
			return false
		}
	}
	if at < 0 || at+1 >= len(toks) {
		return false
	}
	if at > 0 && toks[at-1] == "!" {
		return false // rare: let the parser decide what the "!" belongs to
	}
	p, err := netip.ParsePrefix(toks[at+1])
	if err != nil {
		return false
	}
	return p.Bits() == 0 || !p.Contains(netip.MustParseAddr(addr))
}

// describe is a one-line account of the state for a finding detail.
func (s *ruleState) describe() string {
	w := s.w
	loc := w.Family() + " -t " + w.Table + " " + w.Chain
	switch {
	case s.copies == 0 && s.satisfiedBy != "":
		return "not added: ecs-init's older rule " + loc + " " + s.satisfiedBy + " is there (ecs-init before 1.97)"
	case s.copies == 0 && s.chainGone:
		return fmt.Sprintf("chain %s missing (%s)", w.Chain, loc)
	case s.copies == 0:
		return "missing: " + loc + " " + w.Spell()
	case s.copies > 1:
		return strconv.Itoa(s.copies) + " copies of " + loc + " " + w.Spell()
	case s.misordered:
		return "out of order: " + loc + " " + w.Spell() + " comes after " + s.mustPrecede
	}
	return "present once: " + loc + " " + w.Spell() + " (position " + strconv.Itoa(s.firstPos) + ")"
}

// drift reports whether the rule needs a repair.
func (s *ruleState) drift() bool {
	return (s.copies == 0 && s.w.Required && s.satisfiedBy == "") || s.copies > 1 || s.misordered
}
