package netfilter

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/ecs-remediator/ecs-remediator/pkg/netfilter/kernel"
	"github.com/ecs-remediator/ecs-remediator/pkg/netfilter/path"
)

// pathRead is the model of both hooks.
type pathRead struct {
	input, output []path.Base
	inUse         *path.Table
	notes         []string // what could not be read: the verdict may be undecidable
	err           error    // the backend in use could not be read
	natives       []path.NftBase
}

// credCache holds the texts read for the evaluator and the models parsed
// from them (reused while the text is the cached one: parsing a big table
// is costly, see docs/performance.md).
type credCache struct {
	inUse, other, nftJSON, nftText *kernel.Output
	models                         map[*kernel.Output]*path.Table
	natives                        *kernel.Output
	nativeBases                    []path.NftBase
}

// model parses a save text once per cached text.
func (c *credCache) model(slot *kernel.Output, out []byte, where string) (*path.Table, error) {
	if m, ok := c.models[slot]; ok && slot != nil {
		return m, nil
	}
	m, err := path.ParseSave(string(out), "filter", where)
	if err != nil {
		return nil, err
	}
	if slot != nil {
		if c.models == nil || len(c.models) > 4 {
			c.models = map[*kernel.Output]*path.Table{}
		}
		c.models[slot] = m
	}
	return m, nil
}

func (e *Enforcer) keyFor(backend string) func() string {
	if backend == backendNFT {
		return kernel.NFTGeneration
	}
	return func() string { return kernel.LegacyTablesHash(false) }
}

// readPath reads the model of both hooks: what the credential packets
// meet on the input and output hooks (see ItemCredentialsInput): the
// filter table of the iptables backend in use and of the other backend
// (when it holds one), as iptables-save prints them, and the native
// nf_tables base chains, as nft prints them. The texts are kept while the
// kernel shows they cannot have changed (the nf_tables generation; for
// legacy, the hash of the IPv4 tables the poller uses), so a steady
// reconcile starts no process.
func (e *Enforcer) readPath(ctx context.Context) *pathRead {
	pr := &pathRead{}
	if e.cred == nil {
		e.cred = &credCache{}
	}
	label := func(cmd, backend string) string {
		return fmt.Sprintf("%s (%s) filter", filepath.Base(cmd), backend)
	}
	out, err := kernel.RunCached(ctx, e.run, &e.cred.inUse, e.keyFor(e.v4.backend), e.v4.save, "-t", "filter")
	if err != nil {
		pr.err = fmt.Errorf("read the filter table: %w", err)
		return pr
	}
	t, err := e.cred.model(e.cred.inUse, out, label(e.v4.cmd, e.v4.backend))
	if err != nil {
		pr.err = fmt.Errorf("parse %s -t filter output: %w", e.v4.save, err)
		return pr
	}
	pr.inUse = t
	pr.input = append(pr.input, path.Base{Model: t, Chain: "INPUT", Owner: "iptables", Family: e.v4.backend, Table: "filter"})
	pr.output = append(pr.output, path.Base{Model: t, Chain: "OUTPUT", Owner: "iptables", Family: e.v4.backend, Table: "filter"})

	if e.oth != "" {
		other := backendLegacy
		if e.v4.backend == backendLegacy {
			other = backendNFT
		}
		if other == backendNFT || e.c.legacyTable("filter") {
			save := deriveTool(e.oth, "iptables", "-save")
			args := []string{"-t", "filter"}
			if other == backendNFT {
				args = nil // with -t, iptables-nft-save prints a filter table that does not exist
			}
			out, err := kernel.RunCached(ctx, e.run, &e.cred.other, e.keyFor(other), save, args...)
			if err != nil {
				pr.notes = append(pr.notes, fmt.Sprintf("the %s backend's filter table could not be read (%v)", other, err))
			} else if ot, err := e.cred.model(e.cred.other, out, label(e.oth, other)); err != nil {
				pr.notes = append(pr.notes, fmt.Sprintf("parse %s output: %v", save, err))
			} else if len(ot.Chains) > 0 {
				pr.input = append(pr.input, path.Base{Model: ot, Chain: "INPUT", Family: other, Table: "filter"})
				pr.output = append(pr.output, path.Base{Model: ot, Chain: "OUTPUT", Family: other, Table: "filter"})
			}
		}
	}

	nft := e.c.nft()
	if !lookPath(nft) {
		if names := kernel.NativeTables(); len(names) > 0 {
			pr.notes = append(pr.notes, "native nf_tables tables exist ("+strings.Join(names, ", ")+") but "+nft+" is not installed, so their chains were not evaluated (install nftables)")
		}
		return pr
	}
	js, err := kernel.RunCached(ctx, e.run, &e.cred.nftJSON, kernel.NFTGeneration, nft, "-j", "list", "ruleset")
	if err == nil {
		var txt []byte
		txt, err = kernel.RunCached(ctx, e.run, &e.cred.nftText, kernel.NFTGeneration, nft, "-a", "list", "ruleset")
		switch {
		case err == nil && e.cred.natives != nil && e.cred.natives == e.cred.nftJSON && e.cred.nftText != nil:
			pr.natives = e.cred.nativeBases // the same generation: the same model
		case err == nil:
			pr.natives, err = path.ParseNft(js, path.ParseNftText(string(txt)))
			e.cred.natives, e.cred.nativeBases = e.cred.nftJSON, pr.natives
		}
	}
	if err != nil {
		pr.notes = append(pr.notes, "the native nf_tables ruleset could not be read: "+err.Error())
		return pr
	}
	for _, nb := range pr.natives {
		b := path.Base{Model: nb.Model, Chain: nb.Chain, Prio: nb.Prio, Family: nb.Family, Table: nb.Table}
		if nb.Hook == "input" {
			pr.input = append(pr.input, b)
		} else {
			pr.output = append(pr.output, b)
		}
	}
	return pr
}

func (c *Config) nft() string {
	if c.Nft == "" {
		return "nft"
	}
	return c.Nft
}

// legacyTable reports whether the legacy backend holds table (reading it
// otherwise would create it).
func (c *Config) legacyTable(table string) bool {
	b, err := os.ReadFile(filepath.Join(c.ProcRoot, "net", "ip_tables_names"))
	if err != nil {
		return false
	}
	for _, n := range strings.Fields(string(b)) {
		if n == table {
			return true
		}
	}
	return false
}

// bridgeSubnet is the IPv4 network of a bridge (its containers' source
// addresses); false when it has none or the name is a wildcard.
func bridgeSubnet(name string) (netip.Prefix, bool) {
	if strings.HasSuffix(name, "+") {
		return netip.Prefix{}, false
	}
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		return netip.Prefix{}, false
	}
	addrs, err := ifc.Addrs()
	if err != nil {
		return netip.Prefix{}, false
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
			ones, _ := n.Mask.Size()
			ip, _ := netip.AddrFromSlice(n.IP.To4())
			p, err := ip.Prefix(ones)
			if err == nil {
				return p, true
			}
		}
	}
	return netip.Prefix{}, false
}
