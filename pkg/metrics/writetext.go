package metrics

import (
	"fmt"
	"io"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ecs-remediator/ecs-remediator/pkg/finding"
)

// WriteText writes the item compliance gauges of findings once, in the
// Prometheus text format, for `check --prometheus` (for example from cron
// into node_exporter's textfile directory). It shares the names and help of
// the daemon's metrics.
func WriteText(w io.Writer, findings []finding.Finding) error {
	reg := prometheus.NewRegistry()
	g := newCompliantGauge()
	reg.MustRegister(g)
	for item, ok := range itemStates(findings) {
		g.WithLabelValues(item).Set(boolValue(ok))
	}
	if err := writeFamilies(w, reg); err != nil {
		return fmt.Errorf("write prometheus text: %w", err)
	}
	return nil
}
