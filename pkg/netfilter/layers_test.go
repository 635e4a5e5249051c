package netfilter

import (
	"go/build"
	"strings"
	"testing"
)

// The layers of pkg/netfilter import one way: the enforcer imports its
// subpackages, never the reverse; rule imports nothing of this module,
// path (the credential-path evaluator) only rule, saved only rule and
// the safe file reader,
// kernel only rule and the netlink socket, and the enforcer reaches the
// kernel only through kernel (it does not import pkg/nfnetlink).
func TestLayersImportOneWay(t *testing.T) {
	const mod = "github.com/ecs-remediator/ecs-remediator/"
	allowed := map[string][]string{
		"rule":   nil,
		"kernel": {"pkg/netfilter/rule", "pkg/nfnetlink"},
		"path":   {"pkg/netfilter/rule"},
		"saved":  {"pkg/netfilter/rule", "pkg/safefile"},
	}
	for dir, ok := range allowed {
		p, err := build.ImportDir(dir, 0)
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		for _, imp := range p.Imports {
			if !strings.HasPrefix(imp, mod) {
				continue
			}
			found := false
			for _, a := range ok {
				found = found || imp == mod+a
			}
			if !found {
				t.Errorf("pkg/netfilter/%s imports %s; it may import only %v of this module", dir, imp, ok)
			}
		}
	}
	p, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range p.Imports {
		if imp == mod+"pkg/nfnetlink" {
			t.Errorf("pkg/netfilter imports %s: netlink requests belong in pkg/netfilter/kernel", imp)
		}
	}
}
