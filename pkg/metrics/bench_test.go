package metrics

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/ecs-remediator/ecs-remediator/pkg/finding"
)

// benchFindings is a typical host: a dozen items, all compliant.
func benchFindings() []finding.Finding {
	var fs []finding.Finding
	for i := range 12 {
		fs = append(fs, f(fmt.Sprintf("area.item_%02d", i), finding.OK))
	}
	return fs
}

// BenchmarkObserveFlushIdle is the daemon's idle cost per reconcile pass:
// nothing changed, so Flush does not write.
func BenchmarkObserveFlushIdle(b *testing.B) {
	m := New(Config{Textfile: filepath.Join(b.TempDir(), "ecs_remediator.prom")})
	fs := benchFindings()
	now := t0
	m.Observe(fs, nil, time.Millisecond, now)
	if err := m.Flush(now); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		now := t0.Add(time.Duration(i%50) * time.Millisecond)
		m.Observe(fs, nil, time.Millisecond, now)
		if err := m.Flush(now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkObserveFlushWrite is the cost of a pass that changed a value
// (or the once-a-minute refresh): gather, encode and an atomic, fsynced
// replace of the textfile.
func BenchmarkObserveFlushWrite(b *testing.B) {
	m := New(Config{Textfile: filepath.Join(b.TempDir(), "ecs_remediator.prom")})
	fs := benchFindings()
	change := []finding.Change{{Item: fs[0].Item}}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		now := t0.Add(time.Duration(i) * time.Millisecond)
		m.Observe(fs, change, time.Millisecond, now)
		if err := m.Flush(now); err != nil {
			b.Fatal(err)
		}
	}
}
