// Package dropin owns NO_PROXY in a unit's drop-ins: the ecs unit's
// (/etc/systemd/system/ecs.service.d/*.conf, item agent.proxy_dropin), and,
// through Config, docker.service's for pkg/dockerproxy. A drop-in's
// Environment= reaches the unit's own process only: for the ecs unit that
// is ecs-init (its agent download from S3 and its IMDS region lookup), never
// the agent, whose environment ecs-init builds from ecs.config alone; and
// ecs.config's EnvironmentFile= overrides a drop-in's Environment= of the
// same name there (docs/proxy.md). When the drop-ins give the unit an
// HTTP(S) proxy, its NO_PROXY must exempt the required entries so those
// requests do not go to the proxy.
//
// It reads the drop-ins as systemd does (lexical order, later assignments
// win, an empty Environment= resets, quoting and escapes of
// systemd.exec(5)) and repairs by editing only the one assignment that
// decides the effective NO_PROXY, keeping every other byte; or, when no
// drop-in sets NO_PROXY, by adding one line right after the assignment
// that sets the proxy. It writes nothing but those drop-in files and their
// one-time backups (<file>.ecs-remediator.orig, which systemd ignores);
// the daemon-reload and agent restart a change needs are asked for in the
// Change, not done here.
package dropin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
	"strings"
	"sync"

	"github.com/ecs-remediator/ecs-remediator/pkg/atomicfile"
	"github.com/ecs-remediator/ecs-remediator/pkg/finding"
	"github.com/ecs-remediator/ecs-remediator/pkg/noproxy"
	"github.com/ecs-remediator/ecs-remediator/pkg/redact"
	"github.com/ecs-remediator/ecs-remediator/pkg/safefile"
)

// Item is the finding id (a stable contract of check --json).
const Item = "agent.proxy_dropin"

// BackupSuffix is appended to a drop-in's path for its one-time backup.
const BackupSuffix = ".ecs-remediator.orig"

// Config says where the drop-ins are.
type Config struct {
	// Dir is the unit's drop-in directory
	// (/etc/systemd/system/ecs.service.d).
	Dir string
	// Enabled turns the enforcer on; off, it reports nothing.
	Enabled bool
	// The fields below let another unit's drop-ins be judged the same way
	// (pkg/dockerproxy: docker.service). Zero values are the ECS agent's.
	//
	// Item is the finding id (default Item).
	Item string
	// Unit is the unit's name, for the messages (default ecs.service).
	Unit string
	// Required are the NO_PROXY entries (default noproxy.Required).
	Required []string
	// NoRestart: a change asks for no agent restart (the unit is not the
	// agent's; restarting it is the operator's decision).
	NoRestart bool
	// After is the operator's next step after a repair, for Fix (default:
	// daemon-reload and try-restart ecs).
	After string
}

// Enforcer implements reconcile.Enforcer for the drop-ins' NO_PROXY.
type Enforcer struct {
	c Config

	mu            sync.Mutex
	secrets, prev []string // of the drop-ins last read, and read before (pkg/redact)
}

// New returns the enforcer for c.
func New(c Config) *Enforcer {
	if c.Item == "" {
		c.Item = Item
	}
	if c.Unit == "" {
		c.Unit = "ecs.service"
	}
	if c.Required == nil {
		c.Required = noproxy.Required
	}
	if c.After == "" {
		c.After = "then systemctl daemon-reload and systemctl try-restart ecs"
	}
	return &Enforcer{c: c}
}

// Secrets lists the secret values (proxy userinfo, credential keys) of
// the drop-ins last read, so that no output shows them
// (reconcile.SecretHolder).
func (e *Enforcer) Secrets() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append(append([]string(nil), e.secrets...), e.prev...)
}

func (e *Enforcer) noteSecrets(files []*dropinFile) {
	var out []string
	for _, f := range files {
		for _, d := range f.directives {
			for _, a := range d.words {
				out = append(out, redact.Secrets(a.key, a.value)...)
				out = append(out, redact.Secrets(a.key, resolveSpecifiers(a.value))...)
			}
		}
	}
	e.mu.Lock()
	e.prev, e.secrets = e.secrets, out
	e.mu.Unlock()
}

// Check reads the drop-ins and reports one finding.
func (e *Enforcer) Check(ctx context.Context) []finding.Finding {
	if !e.c.Enabled {
		return nil
	}
	return []finding.Finding{e.observe().f}
}

// Apply repairs NO_PROXY. With dryRun it writes a unified diff of every
// file it would change to plan and changes nothing.
func (e *Enforcer) Apply(ctx context.Context, dryRun bool, plan io.Writer) ([]finding.Finding, []finding.Change) {
	if !e.c.Enabled {
		return nil, nil
	}
	o := e.observe()
	if len(o.fixes) == 0 {
		return []finding.Finding{o.f}, nil
	}
	var changes []finding.Change
	var failed []string
	for _, fe := range o.edits(e.c) {
		if dryRun {
			fmt.Fprint(plan, atomicfile.Diff(fe.file.path, fe.file.data, fe.data))
			changes = append(changes, fe.changes...)
			continue
		}
		if err := write(fe.file, fe.data); err != nil {
			failed = append(failed, err.Error())
			continue
		}
		changes = append(changes, fe.changes...)
	}
	if dryRun {
		return []finding.Finding{o.f}, changes
	}
	f := e.observe().f
	if len(failed) > 0 {
		f = finding.Finding{Item: e.c.Item, Status: finding.Error,
			Detail: strings.Join(failed, "; "),
			Fix:    "make the drop-in a writable regular file (or edit it yourself as the detail says), then run ecs-remediator apply"}
	}
	return []finding.Finding{f}, changes
}

// Env returns the environment the drop-ins give the unit (specifiers
// resolved), for a caller that combines it with the unit's EnvironmentFile=.
// A missing directory is an empty environment.
func (e *Enforcer) Env() (map[string]string, error) {
	files, err := readDir(e.c.Dir)
	if err != nil {
		return nil, err
	}
	env := map[string]string{}
	for k, s := range evaluate(files).env {
		env[k] = resolveSpecifiers(s.a.value)
	}
	return env, nil
}

// write backs the drop-in up once and replaces it atomically. A drop-in
// that is a symlink has its target rewritten only when that is a regular
// file in the same directory (pkg/safefile's rule, the one of ecs.config);
// the backup is the content read and judged, never the path read again.
func write(f *dropinFile, data []byte) error {
	target, err := safefile.WriteTarget(f.path)
	if err != nil {
		return err
	}
	if _, err := atomicfile.BackupOnce(f.data, f.info, f.path+BackupSuffix); err != nil {
		return fmt.Errorf("back up %s: %w", f.path, err)
	}
	if err := atomicfile.Replace(target, data, atomicfile.Options{}); err != nil {
		return fmt.Errorf("rewrite %s: %w", f.path, err)
	}
	return nil
}

// observation is one read of the drop-ins and its judgement.
type observation struct {
	f     finding.Finding
	fixes []fix
	proxy *setting // the last proxy assignment read
}

// fix is one no-proxy variable to repair.
type fix struct {
	key  string
	old  *setting // the decisive assignment; nil when none sets key
	at   *setting // nil old: insert a new line after this proxy assignment
	from string   // old value, unresolved ("" when absent)
	to   string   // new value, unresolved
	why  string
}

func (e *Enforcer) observe() observation {
	if _, err := os.Stat(e.c.Dir); errors.Is(err, fs.ErrNotExist) {
		return e.ok("no drop-in directory " + e.c.Dir + ": " + e.c.Unit + " gets no proxy from drop-ins")
	}
	files, err := readDir(e.c.Dir)
	if err != nil {
		return observation{f: finding.Finding{Item: e.c.Item, Status: finding.Error, Detail: err.Error(),
			Fix: "fix the drop-in so that systemd can read it (systemd-analyze verify " + e.c.Unit + " shows its complaints), then run ecs-remediator apply"}}
	}
	e.noteSecrets(files)
	eff := evaluate(files)
	proxies := eff.proxies()
	if len(proxies) == 0 {
		return e.ok("no drop-in in " + e.c.Dir + " sets a proxy")
	}
	var setBy []string
	for _, p := range proxies {
		setBy = append(setBy, fmt.Sprintf("%s (%s)", p.a.key, p.where()))
	}
	proxyDesc := strings.Join(setBy, ", ") + " sets a proxy"
	if len(setBy) > 1 {
		proxyDesc = strings.Join(setBy, ", ") + " set a proxy"
	}
	last := proxies[len(proxies)-1]

	var fixes []fix
	var good []string
	for _, k := range noProxyKeys {
		s := eff.env[k]
		if s == nil {
			continue
		}
		merged, missing := noproxy.MergeWith(s.a.value, e.c.Required)
		switch {
		case len(missing) > 0:
			fixes = append(fixes, fix{key: k, old: s, from: s.a.value, to: merged,
				why: fmt.Sprintf("%s (%s) lacks %s", k, s.where(), strings.Join(missing, ", "))})
		case !s.a.portable:
			fixes = append(fixes, fix{key: k, old: s, from: s.a.value, to: merged,
				why: fmt.Sprintf("%s (%s) has quotes inside the word, which systemd before v233 (Amazon Linux 2) keeps as part of the value", k, s.where())})
		default:
			good = append(good, fmt.Sprintf("%s (%s)", k, s.where()))
		}
	}
	if len(fixes) == 0 && len(good) == 0 {
		merged, _ := noproxy.MergeWith("", e.c.Required)
		fixes = append(fixes, fix{key: "NO_PROXY", at: last, to: merged, why: "no drop-in sets NO_PROXY"})
	}
	if len(fixes) == 0 {
		verb := "exempts"
		if len(good) > 1 {
			verb = "exempt"
		}
		return e.ok(fmt.Sprintf("%s; %s %s %s from it", proxyDesc, strings.Join(good, " and "), verb, strings.Join(e.c.Required, ", ")))
	}
	var whys []string
	for _, fx := range fixes {
		whys = append(whys, fx.why)
	}
	seen := map[string]bool{}
	var names []string
	for _, fx := range fixes {
		if p := fx.file().path; !seen[p] {
			seen[p] = true
			names = append(names, p)
		}
	}
	sort.Strings(names)
	detail := fmt.Sprintf("%s but %s: %s's own requests to %s would go to the proxy", proxyDesc, strings.Join(whys, "; "), e.c.Unit, strings.Join(e.c.Required, ", "))
	for _, fx := range fixes {
		if _, err := safefile.WriteTarget(fx.file().path); err != nil {
			return observation{f: finding.Finding{Item: e.c.Item, Status: finding.Error,
				Detail: detail + "; cannot repair: " + err.Error(),
				Fix:    "make " + fx.file().path + " a regular file (or a link to one in " + e.c.Dir + "), or edit its target yourself, then run ecs-remediator apply"}}
		}
	}
	if len(eff.syntax) > 0 {
		detail += " (also: " + strings.Join(eff.syntax, "; ") + ")"
	}
	return observation{
		f: finding.Finding{Item: e.c.Item, Status: finding.Drift, Detail: detail,
			Fix: "ecs-remediator apply (edits " + strings.Join(names, ", ") + "; " + e.c.After + ")"},
		fixes: fixes,
		proxy: last,
	}
}

func (e *Enforcer) ok(detail string) observation {
	return observation{f: finding.Finding{Item: e.c.Item, Status: finding.OK, Detail: detail}}
}

func (fx fix) file() *dropinFile {
	if fx.old != nil {
		return fx.old.file
	}
	return fx.at.file
}
