// Package reconcile is the one place where the whole host is observed,
// compared with the policy and repaired: check calls Check, apply calls
// Apply once, and the daemon calls Apply whenever an event or the resync
// timer fires. It owns the order of repairs and the log line of every
// change; the side-effect packages it drives never import each other.
package reconcile

import (
	"bytes"
	"context"
	"io"
	"strings"

	"go.uber.org/zap"

	"github.com/ecs-remediator/ecs-remediator/pkg/finding"
	"github.com/ecs-remediator/ecs-remediator/pkg/logging"
	"github.com/ecs-remediator/ecs-remediator/pkg/redact"
)

// Enforcer observes and repairs one area of the host (ecs.config, iptables,
// a sysctl, ...). Implementations live in the side-effect packages.
type Enforcer interface {
	// Check observes without changing anything.
	Check(ctx context.Context) []finding.Finding
	// Apply repairs every drift it can. With dryRun it changes nothing and
	// writes what it would do to plan (a unified diff for files, the
	// commands for the kernel). It returns the findings as they stand
	// after the repair and the changes it made (or would make).
	Apply(ctx context.Context, dryRun bool, plan io.Writer) ([]finding.Finding, []finding.Change)
}

// SecretHolder is an Enforcer that knows which strings of what it last
// read are secrets (pkg/redact): they are replaced in every finding,
// change, plan line and log field before anything leaves this package.
type SecretHolder interface {
	Secrets() []string
}

// Reconciler runs enforcers in order.
type Reconciler struct {
	Enforcers []Enforcer
	Log       *zap.Logger
	// Secrets are secrets known without reading a file (the policy's
	// extra_settings values of credential keys).
	Secrets []string
}

// scrubber knows the static secrets and those of every enforcer that ran.
func (r *Reconciler) scrubber() *redact.Scrubber {
	s := &redact.Scrubber{}
	s.Add(r.Secrets...)
	for _, e := range r.Enforcers {
		if h, ok := e.(SecretHolder); ok {
			s.Add(h.Secrets()...)
		}
	}
	return s
}

// Scrub replaces the secrets known from the last pass in text, for what
// is printed beside a Result (doctor's own checks).
func (r *Reconciler) Scrub(text string) string { return r.scrubber().String(text) }

// scrub replaces secrets in everything res says.
func scrub(s *redact.Scrubber, res *Result) {
	for i := range res.Findings {
		f := &res.Findings[i]
		f.Detail, f.Fix = s.String(f.Detail), s.String(f.Fix)
	}
	for i := range res.Changes {
		c := &res.Changes[i]
		if item := strings.TrimPrefix(c.Item, "ecs_config."); item != c.Item && redact.IsSecretKey(item) {
			// The values of a credential key, whatever their length.
			c.Old, c.New = redact.Placeholder(c.Old), redact.Placeholder(c.New)
		}
		c.Action, c.Target = s.String(c.Action), s.String(c.Target)
		c.Old, c.New, c.Reason = s.String(c.Old), s.String(c.New), s.String(c.Reason)
	}
}

// Result is the outcome of one pass.
type Result struct {
	Findings []finding.Finding
	Changes  []finding.Change
}

// Compliant reports whether every finding is ok.
func (r Result) Compliant() bool { return finding.Compliant(r.Findings) }

// Check observes every enforcer.
func (r *Reconciler) Check(ctx context.Context) Result {
	var res Result
	for _, e := range r.Enforcers {
		res.Findings = append(res.Findings, e.Check(ctx)...)
	}
	scrub(r.scrubber(), &res)
	return res
}

// Culprits names who made the drift that a change repairs, for the
// change's log line (field culprit, journal CULPRIT): the process nf_tables
// named, or why none is known. The daemon derives it from the events that
// asked for the pass; "" adds nothing (apply, run by hand).
type Culprits func(c finding.Change) string

// Apply repairs with every enforcer, in order, and logs one line per
// change. The plan (dry-run) is written to plan once every enforcer has
// run, with secrets replaced line by line.
func (r *Reconciler) Apply(ctx context.Context, dryRun bool, plan io.Writer) Result {
	var res Result
	var buf *bytes.Buffer
	if plan != nil {
		buf = &bytes.Buffer{}
	}
	for _, e := range r.Enforcers {
		var w io.Writer = io.Discard
		if buf != nil {
			w = buf
		}
		fs, cs := e.Apply(ctx, dryRun, w)
		res.Findings = append(res.Findings, fs...)
		res.Changes = append(res.Changes, cs...)
	}
	s := r.scrubber()
	scrub(s, &res)
	if !dryRun {
		for _, c := range res.Changes {
			r.logChange(c, "")
		}
	}
	if buf != nil && buf.Len() > 0 {
		if _, err := io.WriteString(plan, s.Lines(buf.String())); err != nil && r.Log != nil {
			r.Log.Warn("write the plan: " + err.Error())
		}
	}
	return res
}

// Holder is an Enforcer that can leave some of its items as they are
// during a repair: ApplyHolding repairs like Apply(ctx, false, ...) except
// the items hold names, which it observes and reports only. An enforcer
// whose items are independent of each other's repairs implements it; the
// others are held as a whole (see Repair).
type Holder interface {
	ApplyHolding(ctx context.Context, hold func(item string) bool) ([]finding.Finding, []finding.Change)
}

// Options are the daemon's knobs for one repair pass.
type Options struct {
	// Hold names the items to observe but not repair in this pass (the
	// daemon's back-off for an item another tool keeps undoing). nil
	// holds nothing.
	Hold func(item string) bool
	// Culprits names the culprit of each change's log line (nil: none).
	Culprits Culprits
}

// HeldNote is appended to the detail of a drifted finding whose repair
// was held in this pass.
const HeldNote = " (repair held: another tool keeps undoing it; the daemon backs off and repairs it again shortly)"

// Repair is the daemon's pass: Apply, except that the items o.Hold names
// are only observed. A Holder skips exactly those; any other enforcer is
// observed first (Check), and repaired only when one of its drifted items
// is not held (then its held items are repaired with it: they share one
// file or value). Every pass observes everything.
func (r *Reconciler) Repair(ctx context.Context, o Options) Result {
	var res Result
	for _, e := range r.Enforcers {
		var fs []finding.Finding
		var cs []finding.Change
		switch h, ok := e.(Holder); {
		case o.Hold == nil:
			fs, cs = e.Apply(ctx, false, io.Discard)
		case ok:
			fs, cs = h.ApplyHolding(ctx, o.Hold)
		default:
			fs = e.Check(ctx)
			if needsRepair(fs, o.Hold) {
				fs, cs = e.Apply(ctx, false, io.Discard)
			}
		}
		if o.Hold != nil {
			for i := range fs {
				if fs[i].Status == finding.Drift && o.Hold(fs[i].Item) {
					fs[i].Detail += HeldNote
				}
			}
		}
		res.Findings = append(res.Findings, fs...)
		res.Changes = append(res.Changes, cs...)
	}
	scrub(r.scrubber(), &res)
	for _, c := range res.Changes {
		culprit := ""
		if o.Culprits != nil {
			culprit = o.Culprits(c)
		}
		r.logChange(c, culprit)
	}
	return res
}

// needsRepair reports whether a drifted finding's item is not held.
func needsRepair(fs []finding.Finding, hold func(string) bool) bool {
	for _, f := range fs {
		if f.Status == finding.Drift && !hold(f.Item) {
			return true
		}
	}
	return false
}

// logChange logs one repair; a culprit ("firewalld (pid 812)", or why it
// is not known) ends the message and is the field culprit.
func (r *Reconciler) logChange(c finding.Change, culprit string) {
	if r.Log == nil {
		return
	}
	msg := c.Item + ": " + c.Action + " (" + c.Reason + ")"
	fields := []zap.Field{
		logging.MessageID(logging.DriftRepaired),
		zap.String("item", c.Item),
		zap.String("action", c.Action),
		zap.String("target", c.Target),
		zap.String("old", c.Old),
		zap.String("new", c.New),
		zap.String("reason", c.Reason),
	}
	if culprit != "" {
		msg += "; changed by " + culprit
		fields = append(fields, zap.String("culprit", culprit))
	}
	r.Log.Info(msg, fields...)
}
