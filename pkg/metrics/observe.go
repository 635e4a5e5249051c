package metrics

import (
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ecs-remediator/ecs-remediator/pkg/finding"
)

// Observe records one reconcile pass: findings as they stand after it, the
// changes it made and how long it took. Items that are no longer reported
// (the policy stopped enforcing them) lose their compliance series; their
// counters stay. A pass with no error finding sets the success timestamp to
// now.
func (m *Metrics) Observe(findings []finding.Finding, changes []finding.Change, took time.Duration, now time.Time) {
	states := itemStates(findings)
	m.mu.Lock()
	defer m.mu.Unlock()
	for item, ok := range states {
		prev, seen := m.items[item]
		if !seen {
			// Start the item's counters at 0 so that increase() sees its
			// first repair.
			m.repairs.WithLabelValues(item)
			m.fights.WithLabelValues(item)
		}
		if !seen || prev != ok {
			m.compliant.WithLabelValues(item).Set(boolValue(ok))
			m.dirty = true
		}
	}
	for item := range m.items {
		if _, ok := states[item]; !ok {
			m.compliant.DeleteLabelValues(item)
			m.dirty = true
		}
	}
	m.items = states
	for _, c := range changes {
		m.repairs.WithLabelValues(label(c.Item)).Inc()
		m.dirty = true
	}
	m.duration.Observe(took.Seconds())
	if !hasError(findings) {
		m.lastSuccess.Set(float64(now.UnixNano()) / 1e9)
	}
}

// AgentRestarted counts one restart of the ECS agent.
func (m *Metrics) AgentRestarted() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.restarts.Inc()
	m.dirty = true
}

// RestartSuppressed counts one agent restart request that the rate limit
// deferred or merged into a later restart.
func (m *Metrics) RestartSuppressed() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.suppressed.Inc()
	m.dirty = true
}

// Fight counts one fight over item: another actor undid a repair.
func (m *Metrics) Fight(item string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fights.WithLabelValues(label(item)).Inc()
	m.dirty = true
}

// ReaderFallback counts one read of the kernel's rules that fell back to
// the iptables binaries (see netfilter.Enforcer.OnFallback).
func (m *Metrics) ReaderFallback(backend, reason string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fallbacks.WithLabelValues(label(backend), label(reason)).Inc()
	m.dirty = true
}

// Doctor records the doctor's last run: check id -> failed. Checks missing
// from results (no longer run) lose their series.
func (m *Metrics) Doctor(results map[string]bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	next := make(map[string]bool, len(results))
	for check, failed := range results {
		check = label(check)
		next[check] = failed
		if prev, seen := m.checks[check]; !seen || prev != failed {
			m.doctorFailed.WithLabelValues(check).Set(boolValue(failed))
			m.dirty = true
		}
	}
	for check := range m.checks {
		if _, ok := next[check]; !ok {
			m.doctorFailed.DeleteLabelValues(check)
			m.dirty = true
		}
	}
	m.checks = next
}

// itemStates folds findings into item -> compliant: an item is compliant
// when every finding about it is ok (a warning is still ok). Findings
// without an item id are left out.
func itemStates(findings []finding.Finding) map[string]bool {
	states := make(map[string]bool, len(findings))
	for _, f := range findings {
		if f.Item == "" {
			continue
		}
		item := label(f.Item)
		ok, seen := states[item]
		states[item] = (ok || !seen) && (f.Status == finding.OK || f.Status == finding.Warn)
	}
	return states
}

func hasError(findings []finding.Finding) bool {
	for _, f := range findings {
		if f.Status == finding.Error {
			return true
		}
	}
	return false
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// label makes s a valid label value: client_golang panics on invalid UTF-8.
func label(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
