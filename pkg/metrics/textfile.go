package metrics

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/ecs-remediator/ecs-remediator/pkg/atomicfile"
)

// ResolveTextfile turns the policy's metrics.textfile setting into a path:
// "auto" is autoPath when autoPath's directory exists (node_exporter's
// textfile collector is set up), else ""; "" is ""; anything else
// is taken as the path. The caller passes the policy's default as autoPath.
func ResolveTextfile(setting, autoPath string) string {
	switch setting {
	case "":
		return ""
	case "auto":
		if autoPath == "" {
			return ""
		}
		if fi, err := os.Stat(filepath.Dir(autoPath)); err == nil && fi.IsDir() {
			return autoPath
		}
		return ""
	}
	return setting
}

// Flush writes the textfile when a value changed since the last write, or
// when RefreshInterval has passed (so its mtime shows the daemon is alive);
// otherwise it does nothing. The file is replaced atomically, so
// node_exporter never reads half of it; a new file gets mode 0644. A failed
// write is retried at the next change or after RefreshInterval, so a broken
// disk yields one error per change or per minute, not one per call.
// Without a textfile Flush does nothing.
func (m *Metrics) Flush(now time.Time) error {
	if m.cfg.Textfile == "" {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.dirty && !m.lastAttempt.IsZero() {
		if age := now.Sub(m.lastAttempt); age >= 0 && age < RefreshInterval {
			return nil
		}
	}
	m.dirty = false
	m.lastAttempt = now
	var buf bytes.Buffer
	if err := writeFamilies(&buf, m.reg); err != nil {
		return fmt.Errorf("metrics textfile %s: %w", m.cfg.Textfile, err)
	}
	if err := atomicfile.Replace(m.cfg.Textfile, buf.Bytes(), atomicfile.Options{Perm: 0o644}); err != nil {
		return fmt.Errorf("metrics textfile (policy key metrics.textfile): %w; fix the directory's permissions or set metrics.textfile to off", err)
	}
	return nil
}

// writeFamilies writes everything g gathers in the Prometheus text format.
func writeFamilies(w io.Writer, g prometheus.Gatherer) error {
	mfs, err := g.Gather()
	if err != nil {
		return fmt.Errorf("gather metrics: %w", err)
	}
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(w, mf); err != nil {
			return fmt.Errorf("encode %s: %w", mf.GetName(), err)
		}
	}
	return nil
}
