package netfilter

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/ecs-remediator/ecs-remediator/pkg/finding"
	"github.com/ecs-remediator/ecs-remediator/pkg/netfilter/kernel"
	"github.com/ecs-remediator/ecs-remediator/pkg/netfilter/rule"
)

// otherFinding looks for rules about the credentials endpoint, or any of
// ours, in the backend we do not manage (iptables-legacy when we use
// nf_tables, and the reverse). Both backends' rules are active in the
// kernel side by side, so such rules are unmanaged copies that can hide
// or contradict ours. Apply never touches them; the finding is a warning
// with the commands that remove them. The legacy backend is read only when
// its tables are already loaded (PROC/net/ip_tables_names non-empty), so
// a host that never used it does not get the legacy modules loaded. No
// finding when the other binary is absent.
func (e *Enforcer) otherFinding(ctx context.Context, ws []rule.Want) (finding.Finding, bool) {
	if e.oth == "" {
		return finding.Finding{}, false
	}
	f := finding.Finding{Item: ItemOtherBackend, Status: finding.OK}
	other := "nf_tables"
	if e.v4.backend == backendNFT {
		other = "legacy"
		if !e.c.legacyInUse() {
			f.Detail = "the legacy backend holds no tables (" + e.c.ProcRoot + "/net/ip_tables_names is empty)"
			return f, true
		}
	}
	save := deriveTool(e.oth, "iptables", "-save")
	var out []byte
	var err error
	if other == "nf_tables" {
		out, err = kernel.RunCached(ctx, e.run, &e.othSave, kernel.NFTGeneration, save)
	} else {
		out, err = e.run.Run(ctx, nil, save)
	}
	if err != nil {
		f.Status = finding.Error
		f.Detail = fmt.Sprintf("read the %s backend: %v", other, err)
		f.Fix = "check that " + save + " runs"
		return f, true
	}
	keys := map[string]bool{}
	for _, w := range ws {
		if !w.V6 {
			keys[w.Key] = true
		}
	}
	rs := rule.NewRuleset(false)
	all := func(string, string) bool { return true }
	if err := rule.ParseText(rs, string(out), "", all, append(rule.InterestOf(ws).Needles, credentialsAddr)); err != nil {
		f.Status = finding.Error
		f.Detail = fmt.Sprintf("parse %s output: %v", save, err)
		return f, true
	}
	var found, fixes []string
	for _, table := range sortedKeys(rs.Tables) {
		for _, name := range sortedKeys(rs.Tables[table]) {
			for _, r := range rs.Tables[table][name].Rules {
				if (r.Key != "" && keys[r.Key]) || strings.Contains(r.Text, credentialsAddr) {
					found = append(found, "-t "+table+" -A "+name+" "+r.Text)
					fixes = append(fixes, e.oth+" -t "+table+" -D "+name+" "+r.Text)
				}
			}
		}
	}
	if len(found) == 0 {
		f.Detail = "no rules for " + credentialsAddr + " or ours in the " + other + " backend"
		return f, true
	}
	f.Warn()
	f.Detail = fmt.Sprintf("%d rule(s) for %s or ours in the %s backend, which ecs-remediator does not manage (%s uses %s): %s",
		len(found), credentialsAddr, other, e.v4.cmd, e.v4.backend, strings.Join(found, "; "))
	f.Fix = strings.Join(fixes, "; ")
	return f, true
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
