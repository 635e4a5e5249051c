// Package systemd219 proves that the packaged unit works under systemd 219
// (Amazon Linux 2) without an Amazon Linux 2 machine: it reads
// systemd/ecs-remediator.service with systemd 219's parser rules for the
// directives that become seccomp filters, builds those filters with
// libseccomp exactly as systemd 219 does (testdata/sd219exec.c), and runs
// the real binary under them. docs/platforms.md lists every directive the
// unit uses with what systemd 219 does with it, and its sources.
//
// It is for tests only and touches nothing on the host: the binary runs in
// temp dirs and, for the kernel side, in a private network namespace.
package systemd219

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// Sandbox is what systemd 219 makes of a unit's seccomp-related [Service]
// directives (ExecContext in src/core/execute.h at tag v219).
type Sandbox struct {
	// SystemCallFilter=: an allow list (whitelist) or a deny list, of
	// system call numbers for this architecture.
	SyscallAllowList bool
	Syscalls         []int // nil: no SystemCallFilter= in effect
	// SystemCallErrorNumber=: 0 means the filter kills.
	Errno int
	// SystemCallArchitectures=: libseccomp arch tokens (0 = native).
	ArchsSet bool
	Archs    []uint32
	// RestrictAddressFamilies=.
	AFAllowList bool
	AFs         []int // nil: no RestrictAddressFamilies= in effect
	// NoNewPrivileges=.
	NoNewPrivileges bool
	// Ignored are the values systemd 219 logs and drops ("Failed to parse
	// system call, ignoring: @system-service").
	Ignored []string
}

// Resolver maps a system call name to its number on this architecture, or
// a negative number when libseccomp does not know it (219 then ignores it).
type Resolver func(name string) int

// defaultAllowed are the system calls systemd 219 puts into every allow list
// (default_syscalls in config_parse_syscall_filter, src/core/load-fragment.c
// at tag v219).
var defaultAllowed = []string{"execve", "exit", "exit_group", "rt_sigreturn", "sigreturn"}

// archNames is seccomp_arch_from_string of src/shared/seccomp-util.c at tag
// v219: the only names 219 knows.
var archNames = map[string]uint32{
	"native": 0, // SCMP_ARCH_NATIVE
	"x86":    0x40000003,
	"x86-64": 0xc000003e,
	"x32":    0x4000003e,
	"arm":    0x40000028,
}

// LoadFiles reads a unit file and its drop-ins in the order systemd applies
// them and returns the sandbox systemd 219 builds.
func LoadFiles(resolve Resolver, paths ...string) (Sandbox, error) {
	p := &parser{resolve: resolve}
	for _, path := range paths {
		f, err := os.Open(path)
		if err != nil {
			return Sandbox{}, err
		}
		err = p.read(f, path)
		f.Close()
		if err != nil {
			return Sandbox{}, err
		}
	}
	return p.s, nil
}

// Parse is LoadFiles for unit text.
func Parse(resolve Resolver, text string) Sandbox {
	p := &parser{resolve: resolve}
	p.read(strings.NewReader(text), "unit")
	return p.s
}

type parser struct {
	resolve Resolver
	s       Sandbox
	filter  map[int]bool // the set, as 219 keeps it
	afs     map[int]bool
}

// read follows config_parse() of src/shared/conf-parser.c at tag v219:
// "#" and ";" start comment lines, a trailing backslash continues a line,
// [Section] headers, KEY=VALUE with white space trimmed around both.
func (p *parser) read(r interface{ Read([]byte) (int, error) }, name string) error {
	sc := bufio.NewScanner(r)
	section := ""
	cont := ""
	for sc.Scan() {
		line := sc.Text()
		if cont != "" {
			line = cont + " " + strings.TrimSpace(line)
			cont = ""
		}
		if strings.HasSuffix(line, "\\") {
			cont = strings.TrimSuffix(line, "\\")
			continue
		}
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' && strings.HasSuffix(line, "]") {
			section = line[1 : len(line)-1]
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue // 219: "Missing '='." and the line is ignored
		}
		if section != "Service" {
			continue
		}
		p.directive(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	return sc.Err()
}

func (p *parser) directive(k, v string) {
	switch k {
	case "SystemCallFilter":
		p.syscallFilter(v)
	case "SystemCallErrorNumber":
		p.syscallErrno(v)
	case "SystemCallArchitectures":
		p.syscallArchs(v)
	case "RestrictAddressFamilies":
		p.addressFamilies(v)
	case "NoNewPrivileges":
		if b, ok := parseBoolean(v); ok {
			p.s.NoNewPrivileges = b
		}
	}
}

// syscallFilter is config_parse_syscall_filter of src/core/load-fragment.c
// at tag v219 (unchanged in RHEL 7's 219-78): an empty value resets; "~"
// inverts the line; the FIRST assignment decides whether the list is an
// allow list (then execve, exit, exit_group, rt_sigreturn, sigreturn are
// added) or a deny list; later lines add to or remove from that one list;
// a name libseccomp does not resolve (every "@group": groups came in v231)
// is logged and ignored.
func (p *parser) syscallFilter(v string) {
	if v == "" {
		p.filter = nil
		p.s.SyscallAllowList = false
		p.s.Syscalls = nil
		return
	}
	invert := false
	if v[0] == '~' {
		invert = true
		v = v[1:]
	}
	if p.filter == nil {
		p.filter = map[int]bool{}
		p.s.SyscallAllowList = !invert
		if !invert {
			for _, n := range defaultAllowed {
				if id := p.resolve(n); id >= 0 {
					p.filter[id] = true
				}
			}
		}
	}
	for _, w := range strings.Fields(v) {
		id := p.resolve(w)
		if id < 0 {
			p.s.Ignored = append(p.s.Ignored, "SystemCallFilter: "+w)
			continue
		}
		if !invert == p.s.SyscallAllowList {
			p.filter[id] = true
		} else {
			delete(p.filter, id)
		}
	}
	p.s.Syscalls = keys(p.filter)
}

// syscallErrno is config_parse_syscall_errno (v219): an errno name, or
// empty for "kill".
func (p *parser) syscallErrno(v string) {
	if v == "" {
		p.s.Errno = 0
		return
	}
	for e := 1; e < 4096; e++ {
		if unix.ErrnoName(unix.Errno(e)) == v {
			p.s.Errno = e
			return
		}
	}
	p.s.Ignored = append(p.s.Ignored, "SystemCallErrorNumber: "+v)
}

// syscallArchs is config_parse_syscall_archs (v219).
func (p *parser) syscallArchs(v string) {
	if v == "" {
		p.s.ArchsSet = false
		p.s.Archs = nil
		return
	}
	p.s.ArchsSet = true
	for _, w := range strings.Fields(v) {
		a, ok := archNames[w]
		if !ok {
			p.s.Ignored = append(p.s.Ignored, "SystemCallArchitectures: "+w)
			continue
		}
		p.s.Archs = append(p.s.Archs, a)
	}
}

// addressFamilies is config_parse_address_families (v219): like
// SystemCallFilter=, the first assignment decides allow or deny list.
func (p *parser) addressFamilies(v string) {
	if v == "" {
		p.afs = nil
		p.s.AFAllowList = false
		p.s.AFs = nil
		return
	}
	invert := false
	if v[0] == '~' {
		invert = true
		v = v[1:]
	}
	if p.afs == nil {
		p.afs = map[int]bool{}
		p.s.AFAllowList = !invert
	}
	for _, w := range strings.Fields(v) {
		af, ok := addressFamilies[w]
		if !ok {
			p.s.Ignored = append(p.s.Ignored, "RestrictAddressFamilies: "+w)
			continue
		}
		if !invert == p.s.AFAllowList {
			p.afs[af] = true
		} else {
			delete(p.afs, af)
		}
	}
	p.s.AFs = keys(p.afs)
}

var addressFamilies = map[string]int{
	"AF_UNIX": unix.AF_UNIX, "AF_LOCAL": unix.AF_LOCAL, "AF_INET": unix.AF_INET, "AF_INET6": unix.AF_INET6,
	"AF_NETLINK": unix.AF_NETLINK, "AF_PACKET": unix.AF_PACKET, "AF_KEY": unix.AF_KEY, "AF_BLUETOOTH": unix.AF_BLUETOOTH,
}

// parseBoolean is parse_boolean of src/shared/util.c (v219).
func parseBoolean(v string) (bool, bool) {
	switch strings.ToLower(v) {
	case "1", "yes", "y", "true", "t", "on":
		return true, true
	case "0", "no", "n", "false", "f", "off":
		return false, true
	}
	return false, false
}

func keys(m map[int]bool) []int {
	out := make([]int, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// Args are the sd219exec exec options that load this sandbox.
func (s Sandbox) Args() []string {
	var a []string
	if s.NoNewPrivileges {
		a = append(a, "-n")
	}
	if s.AFs != nil {
		a = append(a, "-F", mode(s.AFAllowList), "-f", join(s.AFs))
	}
	if s.Syscalls != nil {
		a = append(a, "-S", mode(s.SyscallAllowList), "-s", join(s.Syscalls))
	}
	if s.Errno != 0 {
		a = append(a, "-e", fmt.Sprint(s.Errno))
	}
	if s.ArchsSet {
		a = append(a, "-a")
		if len(s.Archs) > 0 {
			var as []int
			for _, x := range s.Archs {
				as = append(as, int(x))
			}
			a = append(a, "-A", join(as))
		}
	}
	return a
}

func mode(allow bool) string {
	if allow {
		return "w"
	}
	return "b"
}

func join(xs []int) string {
	var b strings.Builder
	for i, x := range xs {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprint(&b, x)
	}
	return b.String()
}
