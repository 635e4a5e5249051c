// Package nfnetlink is the daemon's one NETLINK_NETFILTER client: the
// socket, nfnetlink framing, attributes, rule dumps, the ruleset
// generation id, batches bound to a generation (NFNL_BATCH_GENID) and the
// NFNLGRP_NFTABLES subscription. pkg/netfilter reads and repairs rules
// through it and pkg/watch listens to it: one parser, not two.
//
// The socket layer is github.com/mdlayher/netlink: sequence and port-id
// checks on every reply, multipart dumps, MSG_TRUNC reported as an error.
// The receive buffer is fixed at 64 KiB (recvBuffer says why). What this package adds is nfnetlink's: the nfgenmsg header, a
// dump the kernel marks inconsistent (NLM_F_DUMP_INTR) turned into
// ErrDumpInterrupted, and the generation-checked batch, which libraries
// such as google/nftables only recently learned to send. Decoding stays
// in the callers (zero-copy walks over the attribute bytes with Attrs),
// because a rule dump of 50 000 rules must not allocate per attribute.
//
// It owns no state beyond a socket, knows nothing of iptables or of the
// daemon, and never changes anything except through Batch. Sockets belong
// to the network namespace of the thread that opens them.
package nfnetlink

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// ErrDumpInterrupted: the ruleset changed while the kernel was dumping it
// (NLM_F_DUMP_INTR); the dump may be inconsistent, read again.
var ErrDumpInterrupted = errors.New("netlink dump interrupted by a concurrent change (NLM_F_DUMP_INTR); read again")

// timeout bounds one request: the kernel answers at once, so only a
// wedged kernel (or a test's fake) waits this long.
const timeout = 10 * time.Second

// Conn is one NETLINK_NETFILTER socket.
type Conn struct {
	c *netlink.Conn
}

// recvBuffer is the user-space buffer of every receive. The kernel sizes
// the datagrams of a dump by the largest receive buffer the socket has
// been read with (up to 32 KiB), and walks a chain from its head again for
// every datagram: read with the library's default (peek at the next
// datagram, then a buffer of exactly its size) a dump stays in small
// datagrams and a chain of 25 000 rules took 1.4 s instead of 75 ms. 64 KiB
// is twice the kernel's cap, so MSG_TRUNC cannot happen (the library
// reports it as an error if it does).
const recvBuffer = 64 << 10

// Dial opens a socket in the calling thread's network namespace.
func Dial() (*Conn, error) {
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{MessageBufferSize: recvBuffer})
	if err != nil {
		return nil, fmt.Errorf("netlink socket (NETLINK_NETFILTER): %w", err)
	}
	return &Conn{c: c}, nil
}

// Close closes the socket.
func (c *Conn) Close() error { return c.c.Close() }

// Message is one nfnetlink message: the subsystem's message type (the low
// byte of the netlink type), the nfgenmsg header and the attributes.
type Message struct {
	Subsys  uint8  // NFNL_SUBSYS_NFTABLES, ...
	Type    uint8  // NFT_MSG_NEWRULE, ...
	Family  uint8  // nfgenmsg.nfgen_family
	ResID   uint16 // nfgenmsg.res_id
	Flags   uint16 // netlink header flags
	Payload []byte // the attributes, after nfgenmsg
}

// Attr is one attribute to send.
type Attr struct {
	Type uint16
	Data []byte
}

// String is a NUL-terminated string attribute.
func String(typ uint16, s string) Attr { return Attr{typ, append([]byte(s), 0)} }

// U32 is a big-endian (network order) 32-bit attribute, as nf_tables
// wants its integers.
func U32(typ uint16, v uint32) Attr { return Attr{typ, binary.BigEndian.AppendUint32(nil, v)} }

// U64 is a big-endian 64-bit attribute.
func U64(typ uint16, v uint64) Attr { return Attr{typ, binary.BigEndian.AppendUint64(nil, v)} }

// Request is one message to send.
type Request struct {
	Subsys, Type uint8
	Flags        uint16 // NLM_F_DUMP, NLM_F_CREATE, NLM_F_APPEND, ... (NLM_F_REQUEST is added)
	Family       uint8
	ResID        uint16
	Attrs        []Attr
}

func (r Request) message() netlink.Message {
	n := 4
	for _, a := range r.Attrs {
		n += align4(4 + len(a.Data))
	}
	b := make([]byte, 4, n)
	b[0] = r.Family
	b[1] = unix.NFNETLINK_V0
	binary.BigEndian.PutUint16(b[2:], r.ResID)
	for _, a := range r.Attrs {
		b = AppendAttr(b, a.Type, a.Data)
	}
	return netlink.Message{
		Header: netlink.Header{Type: netlink.HeaderType(uint16(r.Subsys)<<8 | uint16(r.Type)), Flags: netlink.HeaderFlags(r.Flags)},
		Data:   b,
	}
}

// AppendAttr appends one attribute (header, data, padding) to b.
func AppendAttr(b []byte, typ uint16, data []byte) []byte {
	l := 4 + len(data)
	b = binary.NativeEndian.AppendUint16(b, uint16(l))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, data...)
	for i := l; i < align4(l); i++ {
		b = append(b, 0)
	}
	return b
}

func align4(n int) int { return (n + 3) &^ 3 }

// Query sends one request and returns the replies of the nftables
// subsystem: every part of a dump (NLM_F_DUMP), or the answer of a get
// (NLM_F_ACK is added so that a get ends with its acknowledgement). The
// replies' sequence and port id are checked against the request. An error
// reply is returned as an error wrapping the errno (errors.Is(err,
// unix.ENOENT)); a dump the kernel marked inconsistent is
// ErrDumpInterrupted.
func (c *Conn) Query(r Request) ([]Message, error) {
	dump := r.Flags&unix.NLM_F_DUMP == unix.NLM_F_DUMP
	r.Flags |= unix.NLM_F_REQUEST
	if !dump {
		r.Flags |= unix.NLM_F_ACK
	}
	if err := c.c.SetDeadline(time.Now().Add(timeout)); err != nil {
		return nil, err
	}
	req, err := c.c.Send(r.message())
	if err != nil {
		return nil, err
	}
	var out []Message
	intr := false
	for {
		msgs, err := c.c.Receive()
		if err != nil {
			return nil, unwrap(err)
		}
		if err := netlink.Validate(req, msgs); err != nil {
			return nil, err
		}
		done := false
		for _, m := range msgs {
			if m.Header.Flags&netlink.DumpInterrupted != 0 {
				intr = true
			}
			switch m.Header.Type {
			case netlink.Error: // an ack (errno 0: errors are returned by Receive)
				done = true
				continue
			case netlink.Done:
				done = true
				continue
			}
			if msg, ok := parse(m); ok {
				out = append(out, msg)
			}
		}
		// Receive reads a whole dump (until NLMSG_DONE, which it drops),
		// so a dump is complete after one call; a get ends with its ack.
		if dump || done {
			break
		}
	}
	if intr {
		return nil, ErrDumpInterrupted
	}
	return out, nil
}

// unwrap turns the library's *netlink.OpError for an error reply into
// "netlink: <errno text>" wrapping the errno, so callers match it with
// errors.Is and messages stay short.
func unwrap(err error) error {
	var oe *netlink.OpError
	if errors.As(err, &oe) {
		var errno unix.Errno
		if errors.As(oe.Err, &errno) {
			return fmt.Errorf("netlink %s: %w", oe.Op, errno)
		}
	}
	return err
}

func parse(m netlink.Message) (Message, bool) {
	if len(m.Data) < 4 {
		return Message{}, false
	}
	t := uint16(m.Header.Type)
	return Message{
		Subsys: uint8(t >> 8), Type: uint8(t), Flags: uint16(m.Header.Flags),
		Family: m.Data[0], ResID: binary.BigEndian.Uint16(m.Data[2:4]), Payload: m.Data[4:],
	}, true
}

// GenID is the nf_tables ruleset generation: every committed change
// increments it.
func (c *Conn) GenID() (uint32, error) {
	msgs, err := c.Query(Request{Subsys: unix.NFNL_SUBSYS_NFTABLES, Type: unix.NFT_MSG_GETGEN, Family: unix.AF_UNSPEC})
	if err != nil {
		return 0, fmt.Errorf("nf_tables generation: %w", err)
	}
	for _, m := range msgs {
		if m.Type == unix.NFT_MSG_NEWGEN {
			g := ParseGen(m.Payload)
			return g.ID, nil
		}
	}
	return 0, fmt.Errorf("nf_tables generation: the kernel sent no NFT_MSG_NEWGEN")
}

// Batch sends msgs as one nf_tables transaction that the kernel refuses
// as a whole, with ERESTART, when the ruleset generation is no longer gen
// (NFNL_BATCH_GENID; gen 0 sends none), or with the errno of the first
// message it rejects. Every message is acknowledged; Batch returns when
// all are, or at the first error.
func (c *Conn) Batch(gen uint32, msgs []Request) error {
	begin := Request{Type: unix.NFNL_MSG_BATCH_BEGIN, Flags: unix.NLM_F_REQUEST, Family: unix.AF_UNSPEC, ResID: unix.NFNL_SUBSYS_NFTABLES}
	if gen != 0 {
		begin.Attrs = []Attr{U32(unix.NFNL_BATCH_GENID, gen)}
	}
	all := make([]netlink.Message, 0, len(msgs)+2)
	all = append(all, begin.message())
	for _, m := range msgs {
		m.Flags |= unix.NLM_F_REQUEST | unix.NLM_F_ACK
		all = append(all, m.message())
	}
	all = append(all, Request{Type: unix.NFNL_MSG_BATCH_END, Flags: unix.NLM_F_REQUEST, Family: unix.AF_UNSPEC, ResID: unix.NFNL_SUBSYS_NFTABLES}.message())
	if err := c.c.SetDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	sent, err := c.c.SendMessages(all)
	if err != nil {
		return err
	}
	want := map[uint32]bool{}
	for _, m := range sent[1 : len(sent)-1] {
		want[m.Header.Sequence] = true
	}
	pid := c.c.PID()
	for len(want) > 0 {
		replies, err := c.c.Receive()
		if err != nil {
			return unwrap(err)
		}
		for _, m := range replies {
			if m.Header.PID != 0 && m.Header.PID != pid {
				return fmt.Errorf("netlink: reply for port id %d, we are %d", m.Header.PID, pid)
			}
			if m.Header.Type == netlink.Error {
				delete(want, m.Header.Sequence)
			}
		}
	}
	return nil
}

// Gen is an NFT_MSG_NEWGEN: the generation id and the process that
// committed it (NFTA_GEN_PROC_PID, NFTA_GEN_PROC_NAME; Linux 4.19 and
// later, zero and "" before).
type Gen struct {
	ID   uint32
	PID  int
	Comm string
}

// ParseGen decodes the attributes of an NFT_MSG_NEWGEN.
func ParseGen(payload []byte) Gen {
	var g Gen
	Attrs(payload, func(typ uint16, d []byte) {
		switch typ {
		case unix.NFTA_GEN_ID:
			g.ID = BE32(d)
		case unix.NFTA_GEN_PROC_PID:
			g.PID = int(BE32(d))
		case unix.NFTA_GEN_PROC_NAME:
			g.Comm = Cstr(d)
		}
	})
	return g
}

// Attrs calls fn for each attribute of b, with the nested and byte-order
// flags cleared from its type; it stops at the first malformed one.
func Attrs(b []byte, fn func(typ uint16, data []byte)) {
	for len(b) >= 4 {
		l := int(binary.NativeEndian.Uint16(b))
		if l < 4 || l > len(b) {
			return
		}
		fn(binary.NativeEndian.Uint16(b[2:])&^(unix.NLA_F_NESTED|unix.NLA_F_NET_BYTEORDER), b[4:l])
		if align4(l) >= len(b) {
			return
		}
		b = b[align4(l):]
	}
}

// BE32 is a big-endian uint32 attribute; 0 when it is too short.
func BE32(b []byte) uint32 {
	if len(b) < 4 {
		return 0
	}
	return binary.BigEndian.Uint32(b)
}

// BE64 is a big-endian uint64 attribute; 0 when it is too short.
func BE64(b []byte) uint64 {
	if len(b) < 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

// Cstr is a NUL-terminated string attribute.
func Cstr(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return string(b[:i])
	}
	return string(b)
}

// Messages calls fn for every nfnetlink message in one datagram (a
// notification read from a subscription, a recorded dump); it stops at the
// first malformed header. A message too short for nfgenmsg comes with a
// zero header and no payload.
func Messages(b []byte, fn func(Message)) {
	for len(b) >= unix.NLMSG_HDRLEN {
		l := int(binary.NativeEndian.Uint32(b[0:4]))
		if l < unix.NLMSG_HDRLEN || l > len(b) {
			return
		}
		t := binary.NativeEndian.Uint16(b[4:6])
		fl := binary.NativeEndian.Uint16(b[6:8])
		body := b[unix.NLMSG_HDRLEN:l]
		if t >= unix.NLMSG_MIN_TYPE {
			m := Message{Subsys: uint8(t >> 8), Type: uint8(t), Flags: fl}
			if len(body) >= 4 {
				m.Family, m.ResID, m.Payload = body[0], binary.BigEndian.Uint16(body[2:4]), body[4:]
			}
			fn(m)
		}
		l = align4(l)
		if l > len(b) {
			return
		}
		b = b[l:]
	}
}

// Monitor is a subscription to a netfilter multicast group.
type Monitor struct {
	c *netlink.Conn
}

// Subscribe joins group (unix.NFNLGRP_NFTABLES: every committed nf_tables
// change) in the calling thread's network namespace. It needs
// CAP_NET_ADMIN. The receive buffer is 1 MiB (SO_RCVBUFFORCE where
// allowed): a large buffer rides out bursts (docker creating many rules);
// an overflow costs the caller a resync (ENOBUFS from Receive).
func Subscribe(group uint32) (*Monitor, error) {
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{Groups: 1 << (group - 1), MessageBufferSize: recvBuffer})
	if err != nil {
		return nil, fmt.Errorf("subscribe to netlink group %d: %w", group, err)
	}
	if rc, err := c.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) {
			if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 1<<20) != nil {
				_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 1<<20)
			}
		})
	}
	return &Monitor{c: c}, nil
}

// Receive returns the messages of the next datagram. After Close it
// returns an error for which errors.Is(err, net.ErrClosed) holds.
func (m *Monitor) Receive() ([]Message, error) {
	msgs, err := m.c.Receive()
	if err != nil {
		return nil, err
	}
	out := make([]Message, 0, len(msgs))
	for _, nm := range msgs {
		if msg, ok := parse(nm); ok {
			out = append(out, msg)
		}
	}
	return out, nil
}

// SetReadDeadline bounds the next Receive (zero: none).
func (m *Monitor) SetReadDeadline(t time.Time) error { return m.c.SetReadDeadline(t) }

// Close ends the subscription and wakes a pending Receive.
func (m *Monitor) Close() error { return m.c.Close() }

// AppendMessage appends m in netlink framing (header, nfgenmsg, payload,
// padding) to b: the inverse of Messages, for recording dumps.
func AppendMessage(b []byte, m Message) []byte {
	l := unix.NLMSG_HDRLEN + 4 + len(m.Payload)
	b = binary.NativeEndian.AppendUint32(b, uint32(l))
	b = binary.NativeEndian.AppendUint16(b, uint16(m.Subsys)<<8|uint16(m.Type))
	b = binary.NativeEndian.AppendUint16(b, m.Flags)
	b = binary.NativeEndian.AppendUint32(b, 0) // sequence
	b = binary.NativeEndian.AppendUint32(b, 0) // port id
	b = append(b, m.Family, unix.NFNETLINK_V0)
	b = binary.BigEndian.AppendUint16(b, m.ResID)
	b = append(b, m.Payload...)
	for i := l; i < align4(l); i++ {
		b = append(b, 0)
	}
	return b
}
