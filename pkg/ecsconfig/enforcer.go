package ecsconfig

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/ecs-remediator/ecs-remediator/pkg/atomicfile"
	"github.com/ecs-remediator/ecs-remediator/pkg/envfile"
	"github.com/ecs-remediator/ecs-remediator/pkg/finding"
	"github.com/ecs-remediator/ecs-remediator/pkg/redact"
)

// Config says which file to enforce and what it must hold.
type Config struct {
	// Path is the file ecs-init reads last (/etc/ecs/ecs.config); the
	// only file this package writes.
	Path string
	// BasePath is read first and overridden by Path
	// (/var/lib/ecs/ecs.config); "" means none. Never written.
	BasePath string
	// AgentJSONPath is the host path of the agent's JSON configuration
	// file (/etc/ecs/ecs.config.json), read only; "" means none.
	AgentJSONPath string
	// BackupPath receives a copy of Path before its first change; ""
	// means no backup.
	BackupPath string
	// TaskIAMRole and TaskIAMRoleNetworkHost enforce each flag =true.
	TaskIAMRole, TaskIAMRoleNetworkHost bool
	// NoProxy enforces NO_PROXY when a proxy is set ("auto").
	NoProxy bool
	// Extra maps KEY to the exact value the agent must get.
	Extra map[string]string
}

// Enforcer checks and repairs the ecs.config file. It implements
// reconcile.Enforcer.
type Enforcer struct {
	c Config

	mu            sync.Mutex
	secrets, prev []string // of the files last read, and read before (pkg/redact)
}

// New returns an Enforcer for c.
func New(c Config) *Enforcer {
	return &Enforcer{c: c}
}

// observation is one read of both files and the judgement of every item.
type observation struct {
	data   []byte      // main file content as read
	info   os.FileInfo // of the descriptor data was read from (backup mode, owner)
	exists bool        // main file exists
	target string      // the file a write replaces (Path, or its symlink's target)
	items  []item
}

func (o *observation) findings() []finding.Finding {
	out := make([]finding.Finding, len(o.items))
	for i, it := range o.items {
		out[i] = it.f
	}
	return out
}

func (o *observation) drifts() bool {
	for _, it := range o.items {
		if it.key != "" {
			return true
		}
	}
	return false
}

// itemIDs are the items this configuration reports, in their stable order.
func (e *Enforcer) itemIDs() []string {
	var ids []string
	if e.c.TaskIAMRole {
		ids = append(ids, ItemPrefix+KeyTaskIAMRole)
	}
	if e.c.TaskIAMRoleNetworkHost {
		ids = append(ids, ItemPrefix+KeyTaskIAMRoleNetworkHost)
	}
	if e.c.NoProxy {
		ids = append(ids, ItemPrefix+KeyNoProxy)
	}
	for _, k := range e.extraKeys() {
		ids = append(ids, ItemPrefix+k)
	}
	return ids
}

func (e *Enforcer) extraKeys() []string {
	keys := make([]string, 0, len(e.c.Extra))
	for k := range e.c.Extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// failAll makes every item an error with the same reason.
func (e *Enforcer) failAll(detail, fix string) []item {
	var items []item
	for _, id := range e.itemIDs() {
		items = append(items, item{f: finding.Finding{Item: id, Status: finding.Error, Detail: detail, Fix: fix}})
	}
	return items
}

// observe reads both files and judges every item. It never writes.
func (e *Enforcer) observe() *observation {
	o := &observation{target: e.c.Path}
	data, info, exists, err := readFile(e.c.Path)
	if err != nil {
		o.items = e.failAll(err.Error(), "fix the file by hand as the detail says, then run ecs-remediator check")
		return o
	}
	o.data, o.info, o.exists = data, info, exists
	var bdata []byte
	defer func() { e.noteSecrets(data, bdata) }()
	v := &view{mainPath: e.c.Path, basePath: e.c.BasePath}
	if exists {
		v.main = Parse(data)
		v.sys = envfile.Parse(data)
	}
	if e.c.BasePath != "" {
		var bexists bool
		bdata, _, bexists, err = readFile(e.c.BasePath)
		if err != nil {
			o.items = e.failAll("base file (read by ecs-init before "+e.c.Path+"): "+err.Error(),
				"fix the base file by hand as the detail says, or set ecs_config_base: off in the policy if it is not used")
			return o
		}
		if bexists {
			v.base = Parse(bdata)
		}
	}
	v.jsonPath = e.c.AgentJSONPath
	if e.c.TaskIAMRole {
		o.items = append(o.items, v.flagItem(KeyTaskIAMRole, "task roles are OFF"))
	}
	if e.c.TaskIAMRoleNetworkHost {
		o.items = append(o.items, v.flagItem(KeyTaskIAMRoleNetworkHost, "task roles for host-network tasks are OFF"))
	}
	if e.c.NoProxy {
		o.items = append(o.items, v.proxyItems()...)
		o.items = append(o.items, v.noProxyItem())
	}
	for _, k := range e.extraKeys() {
		o.items = append(o.items, v.extraItem(k, e.c.Extra[k]))
	}
	if it, ok := v.environmentFileItem(); ok {
		o.items = append(o.items, it)
	}
	if o.drifts() {
		// A drift apply cannot repair is an error, not a drift.
		// A file this package refuses to write makes every item an error.
		target, err := writeTarget(e.c.Path)
		if err != nil {
			o.items = e.failAll(err.Error(), "fix the file by hand as the detail says, then run ecs-remediator check")
			return o
		}
		o.target = target
		// Never write a file the reader would refuse next time (it would
		// refuse its own repair forever).
		if data, _ := e.edit(o); len(data) > MaxSize {
			o.refuse(fmt.Errorf("the repaired %s would be %d bytes, more than the %d bytes allowed for ecs.config, so ecs-remediator would refuse to read it back; shorten the file by hand (a real ecs.config is a few hundred bytes)", e.c.Path, len(data), MaxSize))
		}
	}
	return o
}

// noteSecrets remembers the secrets of the files just read, and of the
// policy's values, for Secrets; those of the read before are kept too, so
// that a repair's old value (read before the write) stays known.
func (e *Enforcer) noteSecrets(files ...[]byte) {
	var out []string
	for _, d := range files {
		out = append(out, redact.FromEnvFile(d)...)
	}
	for k, v := range e.c.Extra {
		out = append(out, redact.Secrets(k, v)...)
	}
	e.mu.Lock()
	e.prev, e.secrets = e.secrets, out
	e.mu.Unlock()
}

// Secrets lists the secret values (credential keys, proxy userinfo) of the
// files last read, so that no output shows them (reconcile.SecretHolder).
func (e *Enforcer) Secrets() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append(append([]string(nil), e.secrets...), e.prev...)
}

// refuse turns every drift into an error: the file cannot be written.
func (o *observation) refuse(err error) {
	for i := range o.items {
		if o.items[i].key != "" {
			it := &o.items[i]
			it.fail(it.f.Detail+"; cannot repair: "+err.Error(), "fix the file by hand, or resolve the problem named in the detail and run ecs-remediator apply")
		}
	}
}

// Check observes both files without changing anything.
func (e *Enforcer) Check(ctx context.Context) []finding.Finding {
	return e.observe().findings()
}

// edit applies every repair of o to a copy of its file and returns the new
// content and one Change per repaired item.
func (e *Enforcer) edit(o *observation) ([]byte, []finding.Change) {
	f := Parse(o.data)
	var changes []finding.Change
	// Lines are removed last: a rewrite names its line by its number in the
	// file as read, and appended lines go after every line read.
	items := make([]item, 0, len(o.items))
	for _, it := range o.items {
		if !it.remove {
			items = append(items, it)
		}
	}
	for _, it := range o.items {
		if it.remove {
			items = append(items, it)
		}
	}
	for _, it := range items {
		if it.key == "" {
			continue
		}
		var action, newValue string
		switch {
		case it.remove:
			var lines []string
			for _, n := range f.RemoveOnlyQuotes(it.key) {
				lines = append(lines, strconv.Itoa(n))
			}
			action, newValue = "removed line "+strings.Join(lines, ", "), "(unset)"
		case it.at > 0 && it.at <= len(f.Lines):
			f.SetLine(it.at, it.key, it.value)
			action, newValue = fmt.Sprintf("rewrote line %d", it.at), show(it.value)
		default:
			a, n := f.Set(it.key, it.value)
			action, newValue = fmt.Sprintf("%s %d", a, n), show(it.value)
		}
		if it.secret {
			newValue = "(unquoted, not shown)"
		} else if newValue == "" {
			newValue = "(empty: no proxy)"
		}
		changes = append(changes, finding.Change{
			Item:         it.f.Item,
			Action:       action,
			Target:       e.c.Path,
			Old:          it.old,
			New:          newValue,
			Reason:       it.reason,
			AgentRestart: !it.noRestart,
		})
	}
	return f.Bytes(), changes
}

// Apply repairs every drift with one atomic write of the main file. With
// dryRun it writes a unified diff to plan and changes nothing (not even the
// backup). The findings returned are observed again after the write.
func (e *Enforcer) Apply(ctx context.Context, dryRun bool, plan io.Writer) ([]finding.Finding, []finding.Change) {
	// The file may change between the read and the write (an operator, a
	// configuration tool): the write happens only when the file still holds
	// what was judged, else the whole pass is redone.
	if !dryRun {
		// Temp files of a run killed in the middle of a write are removed
		// at the next start, even when there is nothing to repair now.
		atomicfile.RemoveStale(e.c.Path)
		if e.c.BackupPath != "" {
			atomicfile.RemoveStale(e.c.BackupPath)
		}
	}
	const attempts = 3
	var lastErr error
	for range attempts {
		o := e.observe()
		if !o.drifts() {
			return o.findings(), nil
		}
		data, changes := e.edit(o)
		if dryRun {
			if plan != nil {
				if _, err := io.WriteString(plan, atomicfile.Diff(e.c.Path, o.data, data)); err != nil {
					o.refuse(fmt.Errorf("write the plan: %w", err))
					return o.findings(), nil
				}
			}
			return o.findings(), changes
		}
		err := e.write(o, data)
		if errors.Is(err, errChanged) {
			lastErr = err
			continue
		}
		if err != nil {
			o.refuse(err)
			return o.findings(), nil
		}
		return e.observe().findings(), changes
	}
	o := e.observe()
	o.refuse(fmt.Errorf("%s: %w %d times in a row; run apply again when nothing else edits it", e.c.Path, lastErr, attempts))
	return o.findings(), nil
}

// errChanged says the file changed since it was judged.
var errChanged = fmt.Errorf("changed while being repaired")

// write backs the file up once and replaces it with data, provided it still
// holds what o read.
func (e *Enforcer) write(o *observation, data []byte) error {
	unchanged := func() error {
		now, _, exists, err := readFile(e.c.Path)
		if err != nil {
			return err
		}
		if exists != o.exists || !bytes.Equal(now, o.data) {
			return errChanged
		}
		return nil
	}
	if err := unchanged(); err != nil {
		return err
	}
	if o.exists && e.c.BackupPath != "" {
		// The backup is the content judged above, read from a validated
		// descriptor: the path is not opened by name again (a FIFO
		// swapped in meanwhile would hang the copy).
		if _, err := atomicfile.BackupOnce(o.data, o.info, e.c.BackupPath); err != nil {
			return fmt.Errorf("back up %s to %s before the first change: %w; fix the policy key backup or make room, nothing was changed", e.c.Path, e.c.BackupPath, err)
		}
	}
	// Checked again right before the new file takes the old one's place
	// (and a missing file is created with link, never replacing one that
	// appeared): an edit made while this one was being written and synced
	// is redone on, not overwritten.
	err := atomicfile.Replace(o.target, data, atomicfile.Options{Perm: 0o644, DirPerm: 0o755, Unchanged: unchanged, Create: !o.exists})
	if errors.Is(err, errChanged) || errors.Is(err, os.ErrExist) {
		return errChanged
	}
	if err != nil {
		return fmt.Errorf("%w; %s was left as it was", err, e.c.Path)
	}
	return nil
}
