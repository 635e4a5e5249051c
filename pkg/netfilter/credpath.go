package netfilter

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/ecs-remediator/ecs-remediator/pkg/finding"
	"github.com/ecs-remediator/ecs-remediator/pkg/netfilter/kernel"
	"github.com/ecs-remediator/ecs-remediator/pkg/netfilter/path"
	"github.com/ecs-remediator/ecs-remediator/pkg/netfilter/rule"
)

// ItemCredentialsInput is the finding of the credential flows' verdicts:
// the credential packets must be accepted by every filter on their way,
// not only find our NAT rules in place. Two
// flows are followed (docs/credential-path.md):
//
//   - bridge path: the SYN a bridge-mode task sends to 169.254.170.2:80,
//     after the PREROUTING DNAT: on a task bridge, to 127.0.0.1:<agent>,
//     conntrack state NEW with status DNAT, through the input hook;
//   - host path: the SYN a host-network task (or the host) sends, through
//     the output hook after the OUTPUT REDIRECT (to 127.0.0.1:<agent>,
//     status DNAT), then delivered on lo through the input hook.
//
// Each hook's base chains are walked in priority order (path.EvalHook):
// the iptables filter INPUT/OUTPUT chains of the backend in use, the
// other backend's when it has a filter table, and the native nf_tables
// base chains of families ip and inet. A drop anywhere blocks.
//
// Repair (network.credentials_input: enforce): a block in a filter chain
// of the backend in use gets one narrow accept of ours directly above
// the rule that blocks (in the base chain: above the jump that leads to
// it), or at the end of the chain when the policy blocks. Such an accept
// is ours like our other rules: kept once, persisted in the saved
// ruleset, never moved once it works. A block in a table we do not own
// (native nf_tables, the other backend) is never touched: the finding
// gives the command that opens the path and where to persist it.
const ItemCredentialsInput = "network.credentials_input"

// DefaultTaskBridge is the bridge bridge-mode tasks use when
// network.task_bridges is empty: Docker's default bridge.
const DefaultTaskBridge = "docker0"

// nftablesConfs are where nftables.service loads its ruleset from
// (Amazon Linux 2023 / RHEL, then Debian / Ubuntu); only named in fixes.
var nftablesConfs = []string{"/etc/sysconfig/nftables.conf", "/etc/nftables.conf"}

// taskBridges is the one place the task bridges are resolved: the
// configured names, else Docker's default bridge (the name Docker reports,
// set for the pass by resolvePass; docker0 before that or without Docker).
func (c *Config) taskBridges() []string {
	if len(c.TaskBridges) > 0 {
		return c.TaskBridges
	}
	if c.bridge != "" {
		return []string{c.bridge}
	}
	return []string{DefaultTaskBridge}
}

// flow is one credential packet and the narrow accept that lets it in.
type flow struct {
	name  string
	hook  string // input or output
	chain string // INPUT or OUTPUT: where our accept goes
	p     path.Packet
	args  []string // our accept, iptables syntax
	nft   string   // the same, nft syntax
}

var (
	loopback8  = netip.MustParsePrefix("127.0.0.0/8")
	agentHost  = netip.MustParsePrefix("127.0.0.1/32")
	anyV4      = netip.MustParsePrefix("0.0.0.0/0")
	credsAddrP = netip.MustParseAddr(credentialsAddr)
)

// hostPath is how the host reaches 169.254.170.2 (kernel.HostRoute), nil in
// tests of the pure parts: the output interface is then unknown.
type hostPath func(netip.Addr) (oif string, src netip.Addr, ok bool)

// flows are the packets to follow; subnet finds a bridge's network (its
// containers' source addresses), route the host path's output interface
// and source; either nil in tests of the pure parts.
func (c *Config) flows(subnet func(string) (netip.Prefix, bool), route hostPath) []flow {
	port := c.AgentPort
	ps := strconv.Itoa(port)
	syn := func(hook string) path.Packet {
		return path.Packet{Hook: hook, Proto: "tcp", Dport: port, Syn: true,
			CtState: []string{"NEW", "DNAT"}, CtDir: "ORIGINAL", OrigDst: credsAddrP, OrigDport: 80,
			Dst: path.Addr{In: agentHost, Local: path.Yes}}
	}
	var fs []flow
	for _, b := range c.taskBridges() {
		p := syn("input")
		name, wild := strings.CutSuffix(b, "+")
		p.Iif = path.Iface{Name: name, Wild: wild}
		p.Src = path.Addr{In: anyV4, NotIn: []netip.Prefix{loopback8}, Local: path.No}
		if subnet != nil {
			if n, ok := subnet(b); ok {
				p.Src.In = n.Masked()
			}
		}
		nftName := b
		if wild {
			nftName = name + "*"
		}
		fs = append(fs, flow{name: "bridge path (" + b + " -> 127.0.0.1:" + ps + ")", hook: "input", chain: "INPUT", p: p,
			args: strings.Fields("-i " + b + " -d 127.0.0.1/32 -p tcp --dport " + ps + " -m conntrack --ctstate DNAT -j ACCEPT"),
			nft:  `iifname "` + nftName + `" ip daddr 127.0.0.1 tcp dport ` + ps + " ct status dnat accept"})
	}
	out := syn("output")
	out.Oif = path.Iface{Any: true}
	out.Src = path.Addr{In: anyV4, Local: path.Yes}
	var hostSrc netip.Addr
	if route != nil {
		if oif, src, ok := route(credsAddrP); ok {
			out.Oif = path.Iface{Name: oif}
			if src.IsValid() {
				hostSrc = src
				out.Src.In = netip.PrefixFrom(src, 32)
			}
		}
	}
	via := "output"
	if !out.Oif.Any {
		via = "output via " + out.Oif.Name
	}
	fs = append(fs, flow{name: "host path (" + credentialsAddr + ":80 -> 127.0.0.1:" + ps + ", " + via + ")", hook: "output", chain: "OUTPUT", p: out,
		args: strings.Fields("-d 127.0.0.1/32 -p tcp --dport " + ps + " -m conntrack --ctstate DNAT -j ACCEPT"),
		nft:  "ip daddr 127.0.0.1 tcp dport " + ps + " ct status dnat accept"})
	in := syn("input")
	in.Iif = path.Iface{Name: "lo"}
	in.Src = path.Addr{In: anyV4, Local: path.Yes}
	if hostSrc.IsValid() {
		in.Src.In = netip.PrefixFrom(hostSrc, 32) // the REDIRECT keeps the source
	}
	fs = append(fs, flow{name: "host path (delivered on lo to 127.0.0.1:" + ps + ")", hook: "input", chain: "INPUT", p: in,
		args: strings.Fields("-i lo -d 127.0.0.1/32 -p tcp --dport " + ps + " -m conntrack --ctstate DNAT -j ACCEPT"),
		nft:  `iifname "lo" ip daddr 127.0.0.1 tcp dport ` + ps + " ct status dnat accept"})
	return fs
}

// credpathWants are our accepts as known, not required rules: never
// added by the rule planner (credentialsInput decides where), but kept
// once when present and persisted (pass marks the present ones required
// for the saved file).
func (c Config) credpathWants() []rule.Want {
	if !c.Credentials || c.CredentialsInput == "" {
		return nil
	}
	var ws []rule.Want
	for i, f := range c.flows(nil, nil) {
		w := rule.Want{Item: ItemCredentialsInput, Table: "filter", Chain: f.chain, Args: f.args,
			Needle: strconv.Itoa(c.AgentPort), Place: rule.Top, Order: 10 + i,
			What: "the " + f.name + " is accepted"}
		k, _, err := rule.Key(rule.Quote(w.Args), false)
		if err != nil {
			panic("netfilter: bad built-in rule " + rule.Quote(w.Args) + ": " + err.Error())
		}
		w.Key = k
		ws = append(ws, w)
	}
	return ws
}

// flowResult is one flow's verdict.
type flowResult struct {
	f  flow
	hv path.HookVerdict
}

// evaluate follows every flow through the model read.
func evaluate(pr *pathRead, fs []flow) []flowResult {
	var out []flowResult
	for _, f := range fs {
		bases := pr.input
		if f.hook == "output" {
			bases = pr.output
		}
		bs := append([]path.Base(nil), bases...)
		p := f.p
		out = append(out, flowResult{f: f, hv: path.EvalHook(bs, &p)})
	}
	return out
}

// insertion is one accept of ours to add to the backend in use.
type insertion struct {
	chain string
	pos   int // 1-based; > len(rules): append
	text  string
	del   string // an existing copy of ours to delete first (it sits below the block)
	flow  string
	by    path.RuleRef
}

// repairs lists what opens the blocked flows in the backend in use, and
// the flows blocked where we may not repair.
func repairs(pr *pathRead, rs []flowResult) (ins []insertion, foreign []flowResult) {
	for _, r := range rs {
		if r.hv.Verdict != path.Drop {
			continue
		}
		for _, br := range r.hv.Results {
			if br.Outcome.Verdict != path.Drop {
				continue
			}
			if br.Base.Owner != "iptables" {
				foreign = append(foreign, r)
				continue
			}
			text := rule.Quote(r.f.args)
			key, _, _ := rule.Key(text, false)
			in := insertion{chain: br.Base.Chain, pos: br.Outcome.Top, text: text, flow: r.f.name, by: br.Outcome.By}
			if c := pr.inUse.Chains[br.Base.Chain]; c != nil {
				for j, x := range c.Rules {
					_, t, _ := strings.Cut(x.Ref.Text, " "+br.Base.Chain+" ")
					if k, _, err := rule.Key(t, false); err == nil && k == key {
						if j+1 < in.pos {
							in.pos = -1 // ours is above the block and does not open it: leave it to the finding
						} else {
							in.del = t
						}
						break
					}
				}
			}
			if in.pos > 0 {
				ins = append(ins, in)
			}
		}
	}
	return ins, foreign
}

// inputBatch is the restore input for ins: deletions of misplaced copies of
// ours first (alone: positions are computed again after them), else the
// inserts, highest position first so that each position stays right.
func inputBatch(ins []insertion) ([]byte, []string) {
	var lines, cmds []string
	for _, in := range ins {
		if in.del != "" {
			lines = append(lines, "-D "+in.chain+" "+in.del)
		}
	}
	if len(lines) == 0 {
		sorted := append([]insertion(nil), ins...)
		sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].pos > sorted[j].pos })
		for _, in := range sorted {
			lines = append(lines, fmt.Sprintf("-I %s %d %s", in.chain, in.pos, in.text))
		}
	}
	for _, l := range lines {
		cmds = append(cmds, "-t filter "+l)
	}
	return []byte("*filter\n" + strings.Join(lines, "\n") + "\nCOMMIT\n"), cmds
}

// appendPos turns a position past the end into -A semantics for display.
func (in insertion) command(bin string, rules int) string {
	if in.pos > rules {
		return bin + " -t filter -A " + in.chain + " " + in.text
	}
	return fmt.Sprintf("%s -t filter -I %s %d %s", bin, in.chain, in.pos, in.text)
}

// credentialsInput evaluates (and, with enforce, opens in modeRepair or plans in modeDryRun) the
// credential flows. present lists the keys of our accepts that are in the
// backend in use at the end (or, in a dry run, would be).
func (e *Enforcer) credentialsInput(ctx context.Context, m mode, w io.Writer) (f finding.Finding, cs []finding.Change, present map[string]bool, ok bool) {
	if !e.c.Credentials || e.c.CredentialsInput == "" {
		return f, nil, nil, false
	}
	f = finding.Finding{Item: ItemCredentialsInput, Status: finding.OK}
	enforce := e.c.CredentialsInput == "enforce"
	fs := e.c.flows(bridgeSubnet, kernel.HostRoute)
	var pr *pathRead
	var rs []flowResult
	var planned []insertion
	var lastErr error
	for attempt := 0; attempt < 4; attempt++ {
		pr = e.readPath(ctx)
		if pr.err != nil {
			f.Status, f.Detail = finding.Error, pr.err.Error()
			f.Fix = "check that " + e.v4.save + " runs as root (network.iptables selects the binary)"
			return f, cs, nil, true
		}
		rs = evaluate(pr, fs)
		ins, _ := repairs(pr, rs)
		if len(ins) == 0 || !enforce || m == modeCheck {
			planned = ins
			break
		}
		if m == modeDryRun {
			planned = ins
			fmt.Fprintf(w, "# %s (%s): open the credential path, one `%s --noflush` batch, equivalent to:\n", e.v4.cmd, e.v4.backend, e.v4.restore)
			for _, in := range ins {
				fmt.Fprintln(w, in.command(e.v4.cmd, len(pr.inUse.Chains[in.chain].RulesOrNil())))
			}
			for _, in := range ins {
				cs = append(cs, insChange(in, e.v4.cmd))
			}
			break
		}
		batch, _ := inputBatch(ins)
		args := []string{"--noflush"}
		if e.v4.backend == backendLegacy {
			args = append(args, "--wait=5")
		}
		if _, err := e.run.Run(ctx, batch, e.v4.restore, args...); err != nil {
			lastErr = fmt.Errorf("%w; batch was:\n%s", err, strings.TrimSpace(string(batch)))
			break
		}
		for _, in := range ins {
			if in.del == "" {
				cs = append(cs, insChange(in, e.v4.cmd))
			}
		}
	}
	present = map[string]bool{}
	for _, w := range e.c.credpathWants() {
		if c := pr.inUse.Chains[w.Chain]; c != nil {
			for _, x := range c.Rules {
				_, t, _ := strings.Cut(x.Ref.Text, " "+w.Chain+" ")
				if k, _, err := rule.Key(t, false); err == nil && k == w.Key {
					present[w.Key] = true
				}
			}
		}
		if m == modeDryRun {
			for _, in := range planned {
				if k, _, _ := rule.Key(in.text, false); k == w.Key && in.chain == w.Chain {
					present[w.Key] = true
				}
			}
		}
	}
	e.describeInput(&f, pr, rs, enforce, lastErr)
	return f, cs, present, true
}

func insChange(in insertion, bin string) finding.Change {
	return finding.Change{Item: ItemCredentialsInput, Action: "inserted rule",
		Target: "iptables filter " + in.chain,
		Old:    "blocked by " + in.by.String(),
		New:    fmt.Sprintf("-I %s %d %s", in.chain, in.pos, in.text),
		Reason: "the " + in.flow + " was dropped before it reached the agent; the accept is narrow (only connections DNAT'd to the agent port)"}
}

// describeInput writes the finding from the verdicts.
func (e *Enforcer) describeInput(f *finding.Finding, pr *pathRead, rs []flowResult, enforce bool, runErr error) {
	var details, fixes, warns []string
	drift := false
	ins, foreign := repairs(pr, rs)
	for _, r := range rs {
		switch r.hv.Verdict {
		case path.Accept:
			var by []string
			for _, br := range r.hv.Results {
				by = append(by, br.Outcome.By.String())
			}
			details = append(details, r.f.name+": accepted by "+strings.Join(by, "; "))
		case path.Drop:
			drift = true
			var by []string
			for _, br := range r.hv.Results {
				if br.Outcome.Verdict == path.Drop {
					by = append(by, br.Outcome.By.String())
				}
			}
			details = append(details, r.f.name+": blocked by "+strings.Join(by, "; "))
		default:
			var why []string
			for _, br := range r.hv.Results {
				if br.Outcome.Verdict == path.Unknown {
					why = append(why, br.Outcome.Undecided.String()+" may decide it ("+br.Outcome.Reason+")")
				}
			}
			warns = append(warns, r.f.name+": cannot be decided: "+strings.Join(why, "; "))
		}
	}
	warns = append(warns, pr.notes...)
	for _, in := range ins {
		fixes = append(fixes, in.command(e.v4.cmd, len(pr.inUse.Chains[in.chain].RulesOrNil())))
	}
	var manual []string
	seen := map[string]bool{}
	for _, r := range foreign {
		for _, br := range r.hv.Results {
			if br.Outcome.Verdict != path.Drop || br.Base.Owner == "iptables" {
				continue
			}
			m := e.manualFix(br, r.f)
			if !seen[m] {
				seen[m] = true
				manual = append(manual, m)
			}
		}
	}
	f.Detail = strings.Join(details, "; ")
	if len(warns) > 0 {
		if f.Detail != "" {
			f.Detail += "; "
		}
		f.Detail += "warning: " + strings.Join(warns, "; ")
	}
	switch {
	case runErr != nil:
		f.Status = finding.Error
		f.Detail += "; the repair failed: " + runErr.Error()
		f.Fix = "run again when no other tool holds the xtables lock, or run: " + strings.Join(fixes, "; ")
	case drift:
		f.Status = finding.Drift
		var parts []string
		if len(fixes) > 0 {
			if enforce {
				parts = append(parts, "ecs-remediator apply (runs: "+strings.Join(fixes, "; ")+")")
			} else {
				parts = append(parts, "network.credentials_input is report: run "+strings.Join(fixes, "; ")+", or set it to enforce and run ecs-remediator apply")
			}
		}
		if len(manual) > 0 {
			parts = append(parts, "ecs-remediator never modifies a table it does not own; open the path yourself: "+strings.Join(manual, "; "))
		}
		f.Fix = strings.Join(parts, "; ")
	case len(warns) > 0:
		f.Warn()
		f.Fix = "review the rule(s) named above: the evaluator cannot tell whether they let the credential packets through (docs/credential-path.md)"
	}
}

// manualFix is the command that opens flow fl where br blocks it, in a
// table we do not own, and where to persist it.
func (e *Enforcer) manualFix(br path.BaseResult, fl flow) string {
	b, o := br.Base, br.Outcome
	if b.Family == backendNFT || b.Family == backendLegacy {
		bin := e.oth
		if bin == "" {
			bin = "iptables"
		}
		pos := o.Top
		cmd := fmt.Sprintf("`%s -t filter -I %s %d %s`", bin, b.Chain, pos, rule.Quote(fl.args))
		if c := b.Model.Chains[b.Chain]; c != nil && pos > len(c.Rules) {
			cmd = fmt.Sprintf("`%s -t filter -A %s %s`", bin, b.Chain, rule.Quote(fl.args))
		}
		return cmd + " (the " + b.Family + " backend, which " + e.v4.cmd + " does not manage; persist it where that backend's rules are saved)"
	}
	if b.Table == "firewalld" {
		iface := "lo"
		if fl.p.Iif.Name != "" && fl.p.Iif.Name != "lo" {
			iface = fl.p.Iif.Name
		}
		return fmt.Sprintf("firewalld owns table %s %s: `firewall-cmd --permanent --zone=\"$(firewall-cmd --get-zone-of-interface=%s)\" --add-rich-rule='rule family=\"ipv4\" destination address=\"127.0.0.1\" port port=\"%d\" protocol=\"tcp\" accept' && firewall-cmd --reload` (firewalld keeps it in its zone file under /etc/firewalld/zones)",
			b.Family, b.Table, iface, e.c.AgentPort)
	}
	cmd := fmt.Sprintf("`nft add rule %s %s %s %s`", b.Family, b.Table, b.Chain, fl.nft)
	if c := b.Model.Chains[b.Chain]; c != nil && o.Top >= 1 && o.Top <= len(c.Rules) {
		cmd = fmt.Sprintf("`nft insert rule %s %s %s position %d %s`", b.Family, b.Table, b.Chain, c.Rules[o.Top-1].Ref.Handle, fl.nft)
	}
	return cmd + " (for " + fl.name + "), and add the same rule to chain " + b.Chain + " of table " + b.Family + " " + b.Table + " in " + nftablesConf() + " so that it survives a reload"
}

// nftablesConf names the file nftables.service loads on this host.
func nftablesConf() string {
	for _, p := range nftablesConfs {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return strings.Join(nftablesConfs, " or ")
}

// persistedInputs marks our accepts that are live as required, so that
// the saved ruleset holds them too (and only them).
func persistedInputs(ws []rule.Want, present map[string]bool) []rule.Want {
	out := make([]rule.Want, 0, len(ws))
	for _, w := range ws {
		if w.Item == ItemCredentialsInput {
			if !present[w.Key] {
				continue
			}
			w.Required = true
		}
		out = append(out, w)
	}
	return out
}
