// Package dockerproxy owns NO_PROXY of Docker's daemon (item
// docker.no_proxy). When docker.service gets an HTTP(S) proxy, from its
// drop-ins (/etc/systemd/system/docker.service.d/*.conf, Environment=) or
// from /etc/sysconfig/docker (EnvironmentFile= on Amazon Linux, which
// overrides the drop-ins), its NO_PROXY must hold 169.254.169.254 and
// 169.254.170.2, or the awslogs log driver and ECR pulls through the proxy
// cannot get credentials (AWS "HTTP proxy configuration for Linux container
// instances"; docs/proxy.md).
//
// It repairs the files (the drop-ins through pkg/dropin, /etc/sysconfig/docker
// by rewriting or adding one line; every entry kept, one-time backups
// <file>.ecs-remediator.orig), and never restarts Docker: that stops every
// task unless live-restore is on. It reads the running dockerd's environment
// (/proc/<pid>/environ of the process named dockerd) to tell "repaired on
// disk, Docker still runs with the old value: restart it when convenient"
// (a warning) from done. It writes nothing but those files; it never talks
// to Docker or systemd.
package dockerproxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/ecs-remediator/ecs-remediator/pkg/atomicfile"
	"github.com/ecs-remediator/ecs-remediator/pkg/dropin"
	"github.com/ecs-remediator/ecs-remediator/pkg/envfile"
	"github.com/ecs-remediator/ecs-remediator/pkg/finding"
	"github.com/ecs-remediator/ecs-remediator/pkg/noproxy"
	"github.com/ecs-remediator/ecs-remediator/pkg/redact"
	"github.com/ecs-remediator/ecs-remediator/pkg/safefile"
)

// Item is the finding id (a stable contract of check --json).
const Item = "docker.no_proxy"

// BackupSuffix is appended to /etc/sysconfig/docker for its one-time backup.
const BackupSuffix = ".ecs-remediator.orig"

// maxFile bounds what is read of /etc/sysconfig/docker and an environ.
const maxFile = 1 << 20

// Config says where Docker's daemon gets its environment.
type Config struct {
	// DropinDir is docker.service's drop-in directory
	// (/etc/systemd/system/docker.service.d); "" means none.
	DropinDir string
	// Sysconfig is the file docker.service reads with EnvironmentFile=
	// (/etc/sysconfig/docker on Amazon Linux); "" means none.
	Sysconfig string
	// ProcRoot is the procfs mount (/proc), to read the running dockerd's
	// environment.
	ProcRoot string
}

// Enforcer implements reconcile.Enforcer for Docker's NO_PROXY.
type Enforcer struct {
	c  Config
	di *dropin.Enforcer

	mu      sync.Mutex
	secrets []string // of /etc/sysconfig/docker as last read (pkg/redact)
	pid     int      // dockerd's pid when last found: checked first, so a pass reads two files, not all of /proc
}

// New returns the enforcer for c.
func New(c Config) *Enforcer {
	e := &Enforcer{c: c}
	if c.DropinDir != "" {
		e.di = dropin.New(dropin.Config{Dir: c.DropinDir, Enabled: true, Item: Item, Unit: "docker.service",
			Required: noproxy.DockerRequired, NoRestart: true,
			After: "Docker keeps its old environment until it is restarted: systemctl daemon-reload, then systemctl restart docker when convenient"})
	}
	return e
}

var (
	proxyKeys   = []string{"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"}
	restartNote = "restart Docker when convenient (systemctl daemon-reload; systemctl restart docker — this stops every running task unless live-restore is on in /etc/docker/daemon.json)"
)

// goProxy returns what Go's net/http (Docker) takes from env: whether a
// proxy is set and the effective NO_PROXY (upper case wins when not empty).
func goProxy(env map[string]string) (proxy bool, noProxy string) {
	for _, k := range proxyKeys {
		if env[k] != "" {
			proxy = true
		}
	}
	noProxy = env["NO_PROXY"]
	if noProxy == "" {
		noProxy = env["no_proxy"]
	}
	return proxy, noProxy
}

// sysconfig is /etc/sysconfig/docker as read.
type sysconfig struct {
	path   string
	data   []byte
	info   os.FileInfo // of the descriptor data was read from (for the backup)
	exists bool
	view   *envfile.View
}

func (e *Enforcer) readSysconfig() (*sysconfig, error) {
	s := &sysconfig{path: e.c.Sysconfig}
	if s.path == "" {
		return s, nil
	}
	f, err := safefile.Read(s.path, safefile.Options{Max: maxFile})
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, err
	}
	s.data, s.info, s.exists, s.view = f.Data, f.Info, true, envfile.Parse(f.Data)
	e.mu.Lock()
	e.secrets = redact.FromEnvFile(f.Data)
	e.mu.Unlock()
	return s, nil
}

// Secrets lists the secret values (proxy userinfo, credential keys) of the
// files last read, so that no output shows them (reconcile.SecretHolder).
func (e *Enforcer) Secrets() []string {
	e.mu.Lock()
	out := append([]string(nil), e.secrets...)
	e.mu.Unlock()
	if e.di != nil {
		out = append(out, e.di.Secrets()...)
	}
	return out
}

// sysEdit is the repair of /etc/sysconfig/docker: line (1-based) rewritten
// to NO_PROXY=value, or appended when line is 0.
type sysEdit struct {
	line   int
	value  string
	old    string
	reason string
}

// judgeSysconfig decides whether /etc/sysconfig/docker must change: it does
// when it sets a proxy or NO_PROXY (it overrides the drop-ins) and the
// NO_PROXY Docker then gets lacks an entry.
func judgeSysconfig(s *sysconfig, dropEnv map[string]string) (detail string, edit *sysEdit) {
	if !s.exists {
		return "", nil
	}
	if s.view.Skipped != nil {
		return fmt.Sprintf("systemd skips %s (%v), so Docker gets nothing from it", s.path, s.view.Skipped), nil
	}
	env := map[string]string{}
	for k, v := range dropEnv {
		env[k] = v
	}
	own := false
	for k, v := range s.view.Vars {
		env[k] = v.Value
		if k == "NO_PROXY" || k == "no_proxy" || isProxyKey(k) {
			own = true
		}
	}
	if !own {
		return "", nil
	}
	proxy, eff := goProxy(env)
	if !proxy {
		return s.path + " sets no proxy", nil
	}
	merged, missing := noproxy.MergeWith(eff, noproxy.DockerRequired)
	if len(missing) == 0 {
		return fmt.Sprintf("%s: Docker's NO_PROXY holds %s", s.path, strings.Join(noproxy.DockerRequired, ", ")), nil
	}
	ed := &sysEdit{value: merged, old: eff}
	if v, ok := s.view.Vars["NO_PROXY"]; ok && singleLine(s.data, v.Line) {
		ed.line = v.Line
		ed.reason = fmt.Sprintf("%s line %d: NO_PROXY lacks %s while Docker has a proxy", s.path, v.Line, strings.Join(missing, ", "))
	} else {
		// NO_PROXY comes from no_proxy or a drop-in: an upper-case
		// NO_PROXY here overrides both, with their entries kept.
		ed.reason = fmt.Sprintf("Docker has a proxy and its NO_PROXY (from %s) lacks %s", noProxySource(s, dropEnv), strings.Join(missing, ", "))
	}
	return ed.reason, ed
}

// singleLine reports whether the assignment on line n ends on that line (no
// backslash continuation, no open quote): only then is it rewritten in
// place; otherwise a new line is appended (the last assignment wins).
func singleLine(data []byte, n int) bool {
	lines := bytes.Split(data, []byte("\n"))
	if n < 1 || n > len(lines) {
		return false
	}
	l := bytes.TrimRight(lines[n-1], "\r \t")
	return !bytes.HasSuffix(l, []byte("\\")) && bytes.Count(l, []byte(`"`))%2 == 0 && bytes.Count(l, []byte("'"))%2 == 0
}

func noProxySource(s *sysconfig, dropEnv map[string]string) string {
	if _, ok := s.view.Vars["no_proxy"]; ok {
		return "no_proxy in " + s.path
	}
	if dropEnv["NO_PROXY"] != "" || dropEnv["no_proxy"] != "" {
		return "the drop-ins"
	}
	return "nowhere: it is not set"
}

func isProxyKey(k string) bool {
	for _, p := range proxyKeys {
		if p == k {
			return true
		}
	}
	return false
}

// apply returns the new content of the file.
func (ed *sysEdit) apply(data []byte) ([]byte, string) {
	line := "NO_PROXY=" + ed.value
	if ed.line > 0 {
		start, n := 0, 1
		for n < ed.line {
			i := bytes.IndexByte(data[start:], '\n')
			if i < 0 {
				break
			}
			start += i + 1
			n++
		}
		end := len(data)
		if i := bytes.IndexByte(data[start:], '\n'); i >= 0 {
			end = start + i
			if end > start && data[end-1] == '\r' {
				end--
			}
		}
		out := append(append(append([]byte{}, data[:start]...), line...), data[end:]...)
		return out, fmt.Sprintf("rewrote line %d", ed.line)
	}
	eol := "\n"
	if bytes.Contains(data, []byte("\r\n")) {
		eol = "\r\n"
	}
	out := append([]byte{}, data...)
	if len(out) > 0 && out[len(out)-1] != '\n' {
		out = append(out, eol...)
	}
	out = append(out, line+eol...)
	return out, fmt.Sprintf("appended line %d", bytes.Count(out, []byte("\n")))
}

// running is what the running dockerd has.
// defaultProcRoot is the procfs mount read when Config.ProcRoot is empty
// (the daemon passes the policy's doctor.proc_root).
const defaultProcRoot = "/proc"

type running struct {
	pid     int
	env     map[string]string
	readErr error
}

// findDockerd returns the process named dockerd and its environment (pid 0
// when Docker's daemon is not running).
func (e *Enforcer) findDockerd() running {
	root := e.c.ProcRoot
	if root == "" {
		root = defaultProcRoot
	}
	isDockerd := func(pid string) bool {
		comm, err := os.ReadFile(filepath.Join(root, pid, "comm"))
		return err == nil && strings.TrimSpace(string(comm)) == "dockerd"
	}
	e.mu.Lock()
	pid := e.pid
	e.mu.Unlock()
	if pid == 0 || !isDockerd(strconv.Itoa(pid)) {
		pid = 0
		ents, err := os.ReadDir(root)
		if err != nil {
			return running{readErr: err}
		}
		for _, ent := range ents {
			if n, err := strconv.Atoi(ent.Name()); err == nil && isDockerd(ent.Name()) {
				pid = n
				break
			}
		}
		e.mu.Lock()
		e.pid = pid
		e.mu.Unlock()
	}
	if pid == 0 {
		return running{}
	}
	r := running{pid: pid, env: map[string]string{}}
	envf, err := safefile.Read(filepath.Join(root, strconv.Itoa(pid), "environ"), safefile.Options{Max: maxFile})
	if err != nil {
		r.readErr = err
		return r
	}
	for _, kv := range bytes.Split(envf.Data, []byte{0}) {
		if k, v, ok := strings.Cut(string(kv), "="); ok {
			r.env[k] = v
		}
	}
	return r
}

// filesProxy reports whether Docker's files give it a proxy.
func filesProxy(s *sysconfig, dropEnv map[string]string) bool {
	env := map[string]string{}
	for k, v := range dropEnv {
		env[k] = v
	}
	if s.exists && s.view.Skipped == nil {
		for k, v := range s.view.Vars {
			env[k] = v.Value
		}
	}
	proxy, _ := goProxy(env)
	return proxy
}

// judgeRunning says what the running dockerd has, and whether it still
// lacks an entry (a warning: restart Docker when convenient).
func (e *Enforcer) judgeRunning(repaired bool) (detail string, warn bool) {
	r := e.findDockerd()
	switch {
	case r.pid == 0 && r.readErr != nil:
		return fmt.Sprintf("cannot look for dockerd under %s (%v)", e.c.ProcRoot, r.readErr), false
	case r.pid == 0:
		return "Docker's daemon is not running: it gets the files' values when it starts", false
	case r.readErr != nil:
		return fmt.Sprintf("cannot read the environment of dockerd (pid %d): %v; run ecs-remediator check as root to see what it runs with", r.pid, r.readErr), false
	}
	proxy, eff := goProxy(r.env)
	if !proxy {
		return fmt.Sprintf("the running dockerd (pid %d) has no proxy", r.pid), false
	}
	if _, missing := noproxy.MergeWith(eff, noproxy.DockerRequired); len(missing) > 0 {
		lead := "the files are right, but"
		if repaired {
			lead = "repaired on disk, but"
		}
		return fmt.Sprintf("%s Docker still runs with the old value: the running dockerd (pid %d) has a proxy and its NO_PROXY lacks %s; %s",
			lead, r.pid, strings.Join(missing, ", "), restartNote), true
	}
	return fmt.Sprintf("the running dockerd (pid %d) has a proxy and NO_PROXY holds %s", r.pid, strings.Join(noproxy.DockerRequired, ", ")), false
}

// observation is one read of the files and its judgement.
type observation struct {
	f     finding.Finding
	sys   *sysconfig
	edit  *sysEdit
	dropF *finding.Finding // the drop-ins' finding (nil without a drop-in dir)
}

func (e *Enforcer) observe(ctx context.Context, repaired bool) observation {
	o := observation{f: finding.Finding{Item: Item}}
	var parts []string
	dropEnv := map[string]string{}
	if e.di != nil {
		fs := e.di.Check(ctx)
		if len(fs) == 1 {
			o.dropF = &fs[0]
			parts = append(parts, fs[0].Detail)
		}
		if env, err := e.di.Env(); err == nil {
			dropEnv = env
		}
	}
	sys, err := e.readSysconfig()
	if err != nil {
		o.f.Status, o.f.Detail = finding.Error, fmt.Sprintf("read %s: %v", e.c.Sysconfig, err)
		o.f.Fix = "make " + e.c.Sysconfig + " a readable regular file, or set docker.sysconfig: off in the policy"
		return o
	}
	o.sys = sys
	sysDetail, edit := judgeSysconfig(sys, dropEnv)
	if sysDetail != "" {
		parts = append(parts, sysDetail)
	}
	o.edit = edit
	switch {
	case o.dropF != nil && o.dropF.Status == finding.Error:
		o.f.Status, o.f.Fix = finding.Error, o.dropF.Fix
	case edit != nil || (o.dropF != nil && o.dropF.Status == finding.Drift):
		o.f.Status = finding.Drift
		o.f.Fix = "ecs-remediator apply (edits the files, never restarts Docker); then " + restartNote
	case !filesProxy(sys, dropEnv):
		// No proxy for Docker in its files: nothing to compare with the
		// running dockerd, and no /proc read on every pass.
		o.f.Status = finding.OK
	default:
		o.f.Status = finding.OK
		detail, warn := e.judgeRunning(repaired)
		parts = append(parts, detail)
		if warn {
			o.f.Fix = restartNote
			o.f.Warn()
		}
	}
	o.f.Detail = strings.Join(parts, "; ")
	return o
}

// Check reads the files and the running dockerd.
func (e *Enforcer) Check(ctx context.Context) []finding.Finding {
	return []finding.Finding{e.observe(ctx, false).f}
}

// Apply repairs the files; with dryRun it writes the diffs to plan.
func (e *Enforcer) Apply(ctx context.Context, dryRun bool, plan io.Writer) ([]finding.Finding, []finding.Change) {
	o := e.observe(ctx, false)
	if o.f.Status != finding.Drift {
		return []finding.Finding{o.f}, nil
	}
	var changes []finding.Change
	var failed []string
	if o.dropF != nil && o.dropF.Status == finding.Drift {
		_, cs := e.di.Apply(ctx, dryRun, plan)
		for _, c := range cs {
			c.Reason += "; Docker is not restarted: " + restartNote
			changes = append(changes, c)
		}
	}
	if o.edit != nil {
		data, action := o.edit.apply(o.sys.data)
		c := finding.Change{Item: Item, Action: action, Target: o.sys.path, Old: o.edit.old, New: o.edit.value,
			Reason: o.edit.reason + "; Docker is not restarted: " + restartNote}
		if dryRun {
			fmt.Fprint(plan, atomicfile.Diff(o.sys.path, o.sys.data, data))
			changes = append(changes, c)
		} else if err := writeSysconfig(o.sys, data); err != nil {
			failed = append(failed, err.Error())
		} else {
			changes = append(changes, c)
		}
	}
	if dryRun {
		return []finding.Finding{o.f}, changes
	}
	f := e.observe(ctx, len(changes) > 0).f
	if len(failed) > 0 {
		f = finding.Finding{Item: Item, Status: finding.Error, Detail: strings.Join(failed, "; "),
			Fix: "make the file a writable regular file (or edit it yourself as the detail says), then run ecs-remediator apply"}
	}
	return []finding.Finding{f}, changes
}

// writeSysconfig backs the file up once (the content read and judged, not
// the path read again) and replaces it; through a symlink only to a
// regular file in the same directory (pkg/safefile).
func writeSysconfig(s *sysconfig, data []byte) error {
	path := s.path
	target, err := safefile.WriteTarget(path)
	if err != nil {
		return err
	}
	if _, err := atomicfile.BackupOnce(s.data, s.info, path+BackupSuffix); err != nil {
		return fmt.Errorf("back up %s: %w", path, err)
	}
	if err := atomicfile.Replace(target, data, atomicfile.Options{}); err != nil {
		return fmt.Errorf("rewrite %s: %w", path, err)
	}
	return nil
}
