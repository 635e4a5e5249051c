package rule

import (
	"slices"
	"strings"
)

// ChainRef names one chain of one table.
type ChainRef struct{ Table, Chain string }

// Interest is what a reader of the live rules must read for a set of
// wants, and which of the rules read may be ours. A reader builds only
// this part of the ruleset: the rest of the kernel's rules are never
// looked at, and rules mentioning no needle are never tokenised.
type Interest struct {
	// Chains are the chains the wants are in, and filter FORWARD when a
	// want creates its chain (to tell whether Docker jumps to it), in a
	// stable order (readChainOrder) so that commands and tests are
	// reproducible.
	Chains []ChainRef
	// Needles are literals one of which every spelling of every want
	// contains (Want.Needle): a rule without any cannot be ours.
	Needles []string
	// NewChains are the user chains the wants create when missing: a
	// FORWARD rule that jumps to one of them matters.
	NewChains []string
	// keys are the wants' canonical keys per chain.
	keys map[ChainRef][]string
}

// readChainOrder is the order of Interest.Chains: tables, then chains
// within a table. A chain not listed comes after these, by name.
var readChainOrder = struct{ tables, chains []string }{
	tables: []string{"raw", "nat", "filter"},
	chains: []string{"PREROUTING", "OUTPUT", "INPUT", "FORWARD", "DOCKER-USER"},
}

// InterestOf is what must be read to plan ws.
func InterestOf(ws []Want) Interest {
	in := Interest{keys: map[ChainRef][]string{}}
	seen := map[string]bool{}
	add := func(c ChainRef) {
		if !slices.Contains(in.Chains, c) {
			in.Chains = append(in.Chains, c)
		}
	}
	for _, w := range ws {
		c := ChainRef{w.Table, w.Chain}
		add(c)
		in.keys[c] = append(in.keys[c], w.Key)
		if w.NewChain {
			add(ChainRef{"filter", "FORWARD"})
			if !slices.Contains(in.NewChains, w.Chain) {
				in.NewChains = append(in.NewChains, w.Chain)
			}
		}
		if !seen[w.Needle] {
			seen[w.Needle] = true
			in.Needles = append(in.Needles, w.Needle)
		}
	}
	rank := func(list []string, s string) int {
		if i := slices.Index(list, s); i >= 0 {
			return i
		}
		return len(list)
	}
	slices.SortStableFunc(in.Chains, func(a, b ChainRef) int {
		if d := rank(readChainOrder.tables, a.Table) - rank(readChainOrder.tables, b.Table); d != 0 {
			return d
		}
		if d := strings.Compare(a.Table, b.Table); d != 0 {
			return d
		}
		if d := rank(readChainOrder.chains, a.Chain) - rank(readChainOrder.chains, b.Chain); d != 0 {
			return d
		}
		return strings.Compare(a.Chain, b.Chain)
	})
	return in
}

// Reads reports whether table's chain is one of in.Chains.
func (in Interest) Reads(table, chain string) bool {
	return slices.Contains(in.Chains, ChainRef{table, chain})
}

// OursIn is the set of the wants' keys in table's chain (a fresh map).
func (in Interest) OursIn(table, chain string) map[string]bool {
	m := map[string]bool{}
	for _, k := range in.keys[ChainRef{table, chain}] {
		m[k] = true
	}
	return m
}

// ChainsKey names in.Chains in one string, for caches of what was read.
func (in Interest) ChainsKey() string {
	var b strings.Builder
	for _, c := range in.Chains {
		b.WriteString(c.Table + " " + c.Chain + ";")
	}
	return b.String()
}
