package kernel

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ecs-remediator/ecs-remediator/pkg/netfilter/rule"
	"github.com/ecs-remediator/ecs-remediator/pkg/nfnetlink"
	"github.com/ecs-remediator/ecs-remediator/test/nstest"
)

// Recorded kernel answers (testdata/kernel) let the byte decoders be
// tested without root: the nf_tables rule dumps (nft-TABLE-CHAIN.nlmsg,
// the netlink messages as the kernel sent them) and the legacy tables
// (legacy-TABLE.blob: IPT_SO_GET_INFO's 84 bytes, then
// IPT_SO_GET_ENTRIES' entries), each with what iptables itself printed for
// them (.golden: `iptables -t TABLE -S`). TestRecordKernelAnswers writes
// them from ../testdata/foreign.rules loaded into a fresh namespace:
//
//	ECS_REMEDIATOR_RECORD=1 go test -run TestRecordKernelAnswers ./pkg/netfilter/kernel
const recordDir = "testdata/kernel"

// recordedChains are the chains of ../testdata/foreign.rules that are dumped.
var recordedChains = [][2]string{
	{"nat", "PREROUTING"}, {"nat", "OUTPUT"}, {"nat", "POSTROUTING"}, {"nat", "DOCKER"}, {"nat", "MY-NAT"},
	{"filter", "INPUT"}, {"filter", "FORWARD"}, {"filter", "DOCKER-USER"},
}

func TestRecordKernelAnswers(t *testing.T) {
	if os.Getenv("ECS_REMEDIATOR_RECORD") != "1" {
		t.Skip("set ECS_REMEDIATOR_RECORD=1 to record the kernel's answers into " + recordDir)
	}
	if err := os.MkdirAll(recordDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, b := range nstest.Backends {
		nstest.Require(t, b.Iptables, b.Restore)
		nstest.Run(t, func() {
			nstest.Sh(t, b.Restore+" < ../testdata/foreign.rules")
			if b.Name == "nft" {
				recordNft(t, b)
			} else {
				recordLegacy(t, b)
			}
		})
	}
}

func recordNft(t *testing.T, b nstest.Backend) {
	c, err := nfnetlink.Dial()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, k := range recordedChains {
		msgs, err := c.Query(nfnetlink.Request{Subsys: unix.NFNL_SUBSYS_NFTABLES, Type: unix.NFT_MSG_GETRULE,
			Flags: unix.NLM_F_DUMP, Family: unix.NFPROTO_IPV4,
			Attrs: []nfnetlink.Attr{nfnetlink.String(unix.NFTA_RULE_TABLE, k[0]), nfnetlink.String(unix.NFTA_RULE_CHAIN, k[1])}})
		if err != nil {
			t.Fatalf("dump %s %s: %v", k[0], k[1], err)
		}
		var raw []byte
		for _, m := range msgs {
			raw = nfnetlink.AppendMessage(raw, m)
		}
		base := filepath.Join(recordDir, "nft-"+k[0]+"-"+k[1])
		writeRecord(t, base+".nlmsg", raw)
		writeRecord(t, base+".golden", []byte(nstest.Sh(t, b.Iptables+" -t "+k[0]+" -S "+k[1])))
	}
}

func recordLegacy(t *testing.T, b nstest.Backend) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	for _, table := range []string{"nat", "filter"} {
		info := make([]byte, iptInfoLen)
		copy(info, table)
		if _, err := getsockopt(fd, iptSoGetInfo, info); err != nil {
			t.Fatal(err)
		}
		size := binary.NativeEndian.Uint32(info[80:])
		buf := make([]byte, iptEntriesHdr+int(size))
		copy(buf, table)
		binary.NativeEndian.PutUint32(buf[32:], size)
		if _, err := getsockopt(fd, iptSoGetEntries, buf); err != nil {
			t.Fatal(err)
		}
		base := filepath.Join(recordDir, "legacy-"+table)
		writeRecord(t, base+".blob", append(info, buf[iptEntriesHdr:]...))
		writeRecord(t, base+".golden", []byte(nstest.Sh(t, b.Iptables+" -t "+table+" -S")))
	}
}

func writeRecord(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// goldenRules is what iptables printed for table/chain, keyed as the
// readers key it.
func goldenRules(t *testing.T, path, table, chain string) []rule.Rule {
	t.Helper()
	out, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rs := rule.NewRuleset(false)
	keep := func(tb, n string) bool { return tb == table && n == chain }
	if err := rule.ParseText(rs, string(out), table, keep, nil); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return rs.Chain(table, chain).Rules
}

// compareDecoded checks decoded rules against iptables' own print: the
// same number of rules, and the same key for every rule the decoder could
// print (a rule it cannot print is read through the binaries instead).
func compareDecoded(t *testing.T, what string, got []printedRule, want []rule.Rule) (printed int) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d rules decoded, iptables printed %d", what, len(got), len(want))
		return 0
	}
	for i, g := range got {
		if !g.ok {
			continue
		}
		printed++
		k, _, err := rule.Key(g.text, false)
		if err != nil {
			t.Errorf("%s rule %d: decoded %q does not parse: %v", what, i+1, g.text, err)
			continue
		}
		wk, _, err := rule.Key(want[i].Text, false)
		if err != nil {
			t.Errorf("%s rule %d: iptables printed %q, which does not parse: %v", what, i+1, want[i].Text, err)
			continue
		}
		if k != wk {
			t.Errorf("%s rule %d: decoded %q (key %q), iptables printed %q (key %q)", what, i+1, g.text, k, want[i].Text, wk)
		}
	}
	return printed
}

func readNlmsg(t testing.TB, path string) []nfnetlink.Message {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var msgs []nfnetlink.Message
	nfnetlink.Messages(raw, func(m nfnetlink.Message) { msgs = append(msgs, m) })
	return msgs
}

func TestRecordedNftDumps(t *testing.T) {
	total := 0
	for _, k := range recordedChains {
		base := filepath.Join(recordDir, "nft-"+k[0]+"-"+k[1])
		nrs := decodeRules(readNlmsg(t, base+".nlmsg"), k[0], k[1])
		var got []printedRule
		for _, nr := range nrs {
			if nr.handle == 0 {
				t.Errorf("%s %s: a dumped rule without a handle", k[0], k[1])
			}
			got = append(got, nftText(nr.exprs, false))
		}
		total += compareDecoded(t, "nft "+k[0]+" "+k[1], got, goldenRules(t, base+".golden", k[0], k[1]))
	}
	if total == 0 {
		t.Error("no recorded rule was printed by the decoder")
	}
}

func TestRecordedLegacyTables(t *testing.T) {
	total := 0
	for _, table := range []string{"nat", "filter"} {
		base := filepath.Join(recordDir, "legacy-"+table)
		blob, err := os.ReadFile(base + ".blob")
		if err != nil {
			t.Fatal(err)
		}
		chains, err := decodeLegacy(table, blob[:iptInfoLen], blob[iptInfoLen:])
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range recordedChains {
			if k[0] != table {
				continue
			}
			nrs, ok := chains[k[1]]
			if !ok {
				t.Errorf("legacy %s %s: chain not decoded (have %v)", table, k[1], keys(chains))
				continue
			}
			var got []printedRule
			for i := range nrs {
				got = append(got, iptText(&nrs[i]))
			}
			total += compareDecoded(t, "legacy "+table+" "+k[1], got, goldenRules(t, base+".golden", table, k[1]))
		}
	}
	if total == 0 {
		t.Error("no recorded rule was printed by the decoder")
	}
}

func keys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// Decoders of kernel bytes must never panic, whatever the bytes.
func FuzzNftText(f *testing.F) {
	for _, k := range recordedChains {
		raw, err := os.ReadFile(filepath.Join(recordDir, "nft-"+k[0]+"-"+k[1]+".nlmsg"))
		if err != nil {
			continue
		}
		nfnetlink.Messages(raw, func(m nfnetlink.Message) {
			for _, nr := range decodeRules([]nfnetlink.Message{m}, k[0], k[1]) {
				f.Add(nr.exprs)
			}
		})
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		nftText(b, false)
		nftText(b, true)
	})
}

func FuzzDecodeRules(f *testing.F) {
	if raw, err := os.ReadFile(filepath.Join(recordDir, "nft-nat-PREROUTING.nlmsg")); err == nil {
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var msgs []nfnetlink.Message
		nfnetlink.Messages(b, func(m nfnetlink.Message) { msgs = append(msgs, m) })
		for _, nr := range decodeRules(msgs, "nat", "PREROUTING") {
			nftText(nr.exprs, false)
		}
	})
}

func FuzzDecodeLegacy(f *testing.F) {
	for _, table := range []string{"nat", "filter"} {
		if blob, err := os.ReadFile(filepath.Join(recordDir, "legacy-"+table+".blob")); err == nil {
			f.Add(blob)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < iptInfoLen {
			return
		}
		chains, err := decodeLegacy("fuzz", b[:iptInfoLen], b[iptInfoLen:])
		if err != nil {
			return
		}
		for _, nrs := range chains {
			for i := range nrs {
				iptText(&nrs[i])
			}
		}
	})
}
