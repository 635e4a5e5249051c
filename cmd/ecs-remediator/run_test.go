package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ecs-remediator/ecs-remediator/pkg/agent"
	"github.com/ecs-remediator/ecs-remediator/pkg/metrics"
)

// activeUnits is a systemd whose agent unit is active and restarts fine.
type activeUnits struct{}

func (activeUnits) TryRestart(context.Context, string) error { return nil }
func (activeUnits) Reload(context.Context) error             { return nil }
func (activeUnits) ActiveState(context.Context, string) (string, error) {
	return "active", nil
}
func (activeUnits) StartedAt(context.Context, string) (time.Time, error) { return time.Time{}, nil }

// The daemon counts the restarter's restarts, and the requests merged into
// a pending restart or deferred by the rate limit, in its metrics.
func TestRestartMetrics(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ecs_remediator.prom")
	mx := metrics.New(metrics.Config{Textfile: path})
	r := agent.NewRestarter(activeUnits{}, agent.Config{Unit: "ecs.service", MinRestartInterval: time.Minute, Observe: restartMetrics(mx)})
	t0 := time.Now()
	r.Request(t0, "a changed", false)
	r.Request(t0, "b changed", false)                  // merged
	r.Tick(context.Background(), t0)                   // restarted
	r.Request(t0.Add(time.Second), "c changed", false) // deferred: within a minute of the restart
	if err := mx.Flush(t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{metrics.NameAgentRestarts + " 1\n", metrics.NameRestartSuppressed + " 2\n"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("metrics lack %q:\n%s", want, b)
		}
	}
}
