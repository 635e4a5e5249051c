package nfnetlink

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ecs-remediator/ecs-remediator/test/nstest"
)

func TestAttrs(t *testing.T) {
	var b []byte
	b = AppendAttr(b, 1, []byte("nat\x00"))
	b = AppendAttr(b, 2|unix.NLA_F_NESTED, AppendAttr(nil, 7, []byte{1, 2, 3}))
	b = AppendAttr(b, 3, nil)
	type a struct {
		typ  uint16
		data string
	}
	var got []a
	Attrs(b, func(typ uint16, d []byte) { got = append(got, a{typ, string(d)}) })
	want := []a{{1, "nat\x00"}, {2, string(AppendAttr(nil, 7, []byte{1, 2, 3}))}, {3, ""}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for _, tc := range []struct {
		name string
		in   []byte
		n    int
	}{
		{"length past the end", []byte{200, 0, 1, 0, 'x', 0, 0, 0}, 0},
		{"length below the header", []byte{2, 0, 1, 0}, 0},
		{"short", []byte{8, 0}, 0},
		{"one, then garbage", append(AppendAttr(nil, 1, []byte{9}), 0xff, 0xff), 1},
	} {
		n := 0
		Attrs(tc.in, func(uint16, []byte) { n++ })
		if n != tc.n {
			t.Errorf("%s: %d attributes, want %d", tc.name, n, tc.n)
		}
	}
}

func TestMessagesRoundTrip(t *testing.T) {
	in := []Message{
		{Subsys: unix.NFNL_SUBSYS_NFTABLES, Type: unix.NFT_MSG_NEWRULE, Family: unix.NFPROTO_IPV4, Flags: 2, Payload: AppendAttr(nil, unix.NFTA_RULE_TABLE, []byte("nat\x00"))},
		{Subsys: unix.NFNL_SUBSYS_NFTABLES, Type: unix.NFT_MSG_NEWGEN, ResID: 7, Payload: []byte{8, 0, 1, 0, 0, 0, 0, 42, 1}},
	}
	var b []byte
	for _, m := range in {
		b = AppendMessage(b, m)
	}
	var out []Message
	Messages(b, func(m Message) { out = append(out, m) })
	if len(out) != len(in) {
		t.Fatalf("%d messages, want %d", len(out), len(in))
	}
	for i := range in {
		if out[i].Type != in[i].Type || out[i].Subsys != in[i].Subsys || out[i].Family != in[i].Family ||
			out[i].ResID != in[i].ResID || out[i].Flags != in[i].Flags || !bytes.Equal(out[i].Payload, in[i].Payload) {
			t.Errorf("message %d: %+v, want %+v", i, out[i], in[i])
		}
	}
	// Truncated: the whole messages before the cut, nothing after.
	n := 0
	Messages(b[:len(b)-4], func(Message) { n++ })
	if n != 1 {
		t.Errorf("truncated datagram: %d messages, want 1", n)
	}
}

func TestParseGen(t *testing.T) {
	var p []byte
	p = AppendAttr(p, unix.NFTA_GEN_ID, []byte{0, 0, 1, 2})
	p = AppendAttr(p, unix.NFTA_GEN_PROC_PID, []byte{0, 0, 3, 44})
	p = AppendAttr(p, unix.NFTA_GEN_PROC_NAME, []byte("firewalld\x00"))
	if g := ParseGen(p); g != (Gen{ID: 258, PID: 812, Comm: "firewalld"}) {
		t.Errorf("%+v", g)
	}
	if g := ParseGen(AppendAttr(nil, unix.NFTA_GEN_ID, []byte{0, 0, 0, 9})); g != (Gen{ID: 9}) {
		t.Errorf("a kernel before 4.19: %+v", g)
	}
}

func TestRequestFraming(t *testing.T) {
	m := Request{Subsys: unix.NFNL_SUBSYS_NFTABLES, Type: unix.NFT_MSG_GETRULE, Family: unix.NFPROTO_IPV4,
		Attrs: []Attr{String(unix.NFTA_RULE_TABLE, "nat"), U64(unix.NFTA_RULE_HANDLE, 5)}}.message()
	if got := uint16(m.Header.Type); got != unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_GETRULE {
		t.Errorf("type %#x", got)
	}
	want := append([]byte{unix.NFPROTO_IPV4, unix.NFNETLINK_V0, 0, 0}, AppendAttr(AppendAttr(nil, unix.NFTA_RULE_TABLE, []byte("nat\x00")), unix.NFTA_RULE_HANDLE, []byte{0, 0, 0, 0, 0, 0, 0, 5})...)
	if !bytes.Equal(m.Data, want) {
		t.Errorf("payload %x, want %x", m.Data, want)
	}
}

func FuzzMessages(f *testing.F) {
	f.Add(AppendMessage(nil, Message{Subsys: 10, Type: 6, Payload: AppendAttr(nil, 1, []byte("nat\x00"))}))
	f.Fuzz(func(t *testing.T, b []byte) {
		Messages(b, func(m Message) {
			Attrs(m.Payload, func(uint16, []byte) {})
			ParseGen(m.Payload)
		})
	})
}

// On a real kernel: a dump, the generation, and a batch bound to a stale
// generation, which the kernel refuses as a whole.
func TestKernel(t *testing.T) {
	nstest.Require(t, "iptables-nft")
	nstest.Run(t, func() {
		nstest.Sh(t, "iptables-nft -t nat -A OUTPUT -d 169.254.170.2/32 -p tcp --dport 80 -j REDIRECT --to-ports 51679")
		c, err := Dial()
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		gen, err := c.GenID()
		if err != nil {
			t.Error(err)
			return
		}
		msgs, err := c.Query(Request{Subsys: unix.NFNL_SUBSYS_NFTABLES, Type: unix.NFT_MSG_GETRULE, Flags: unix.NLM_F_DUMP, Family: unix.NFPROTO_IPV4,
			Attrs: []Attr{String(unix.NFTA_RULE_TABLE, "nat"), String(unix.NFTA_RULE_CHAIN, "OUTPUT")}})
		if err != nil || len(msgs) != 1 {
			t.Errorf("dump of nat OUTPUT: %d messages, %v; want the one rule", len(msgs), err)
			return
		}
		var handle uint64
		Attrs(msgs[0].Payload, func(typ uint16, d []byte) {
			if typ == unix.NFTA_RULE_HANDLE {
				handle = BE64(d)
			}
		})
		_, err = c.Query(Request{Subsys: unix.NFNL_SUBSYS_NFTABLES, Type: unix.NFT_MSG_GETCHAIN, Family: unix.NFPROTO_IPV4,
			Attrs: []Attr{String(unix.NFTA_CHAIN_TABLE, "nat"), String(unix.NFTA_CHAIN_NAME, "NOSUCH")}})
		if !errors.Is(err, unix.ENOENT) {
			t.Errorf("get of a missing chain: %v, want ENOENT", err)
		}
		del := Request{Subsys: unix.NFNL_SUBSYS_NFTABLES, Type: unix.NFT_MSG_DELRULE, Family: unix.NFPROTO_IPV4,
			Attrs: []Attr{String(unix.NFTA_RULE_TABLE, "nat"), String(unix.NFTA_RULE_CHAIN, "OUTPUT"), U64(unix.NFTA_RULE_HANDLE, handle)}}
		nstest.Sh(t, "iptables-nft -t filter -N MOVED") // the generation moves on
		if err := c.Batch(gen, []Request{del}); !errors.Is(err, unix.ERESTART) {
			t.Errorf("batch at a stale generation: %v, want ERESTART", err)
		}
		gen2, err := c.GenID()
		if err != nil || gen2 != gen+1 {
			t.Errorf("generation %d (%v), want %d: the refused batch must change nothing", gen2, err, gen+1)
		}
		if err := c.Batch(gen2, []Request{del}); err != nil {
			t.Errorf("batch at the current generation: %v", err)
		}
		if out := nstest.Sh(t, "iptables-nft -t nat -S OUTPUT"); bytes.Contains([]byte(out), []byte("169.254.170.2")) {
			t.Errorf("the rule is still there:\n%s", out)
		}
	})
}
