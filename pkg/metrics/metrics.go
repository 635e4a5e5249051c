package metrics

import (
	"runtime"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names, a contract documented in docs/fleet.md ("Continuously: Prometheus metrics"). Alerts and
// dashboards depend on them: never rename one.
const (
	NameItemCompliant     = "ecs_remediator_item_compliant"
	NameRepairs           = "ecs_remediator_repairs_total"
	NameAgentRestarts     = "ecs_remediator_agent_restarts_total"
	NameRestartSuppressed = "ecs_remediator_agent_restarts_suppressed_total"
	NameFights            = "ecs_remediator_fights_total"
	NameReaderFallbacks   = "ecs_remediator_reader_fallbacks_total"
	NameReconcileDuration = "ecs_remediator_reconcile_duration_seconds"
	NameLastSuccess       = "ecs_remediator_last_reconcile_success_timestamp_seconds"
	NameDoctorFailed      = "ecs_remediator_doctor_failed"
	NameBuildInfo         = "ecs_remediator_build_info"
)

// RefreshInterval is the longest time Flush lets pass without rewriting the
// textfile, so that its mtime (node_textfile_mtime_seconds) shows whether
// the daemon is alive even when no value changed.
const RefreshInterval = time.Minute

// reconcileBuckets cover 1 ms (an idle pass) to 2 s (a pass that ran
// iptables-restore and fsynced files on a slow disk), in seconds.
var reconcileBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2}

// Config is what the caller resolved from the policy.
type Config struct {
	// Textfile is the node_exporter textfile path; "" writes none.
	// Resolve the policy's "auto" with ResolveTextfile first.
	Textfile string
	// Listen is the host:port of the /metrics endpoint; ""
	// serves none. The caller has already refused a non-loopback address
	// unless the policy allows it.
	Listen string
	// Version and Commit label ecs_remediator_build_info.
	Version, Commit string
}

// Metrics is one daemon's metrics. Its methods are safe for concurrent use.
type Metrics struct {
	cfg Config
	reg *prometheus.Registry

	compliant    *prometheus.GaugeVec
	repairs      *prometheus.CounterVec
	restarts     prometheus.Counter
	suppressed   prometheus.Counter
	fights       *prometheus.CounterVec
	fallbacks    *prometheus.CounterVec
	duration     prometheus.Histogram
	lastSuccess  prometheus.Gauge
	doctorFailed *prometheus.GaugeVec

	mu          sync.Mutex
	items       map[string]bool // item -> compliant, as last observed
	checks      map[string]bool // doctor check -> failed, as last reported
	dirty       bool            // a value changed since the last textfile write
	lastAttempt time.Time       // last textfile write (or failed attempt)
}

// New builds the metrics in a private registry; nothing is written or served
// until Flush or Serve is called.
func New(c Config) *Metrics {
	m := &Metrics{
		cfg:       c,
		reg:       prometheus.NewRegistry(),
		compliant: newCompliantGauge(),
		repairs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameRepairs,
			Help: "Repairs made, by finding item id.",
		}, []string{"item"}),
		restarts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: NameAgentRestarts,
			Help: "Restarts of the ECS agent made after a repair of something it reads only at start.",
		}),
		suppressed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: NameRestartSuppressed,
			Help: "ECS agent restart requests deferred or merged into a later restart by the rate limit.",
		}),
		fights: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameFights,
			Help: "Times another actor undid a repair soon after it was made, by finding item id.",
		}, []string{"item"}),
		fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameReaderFallbacks,
			Help: "Reads of the kernel's rules that fell back from the netlink (backend nft) or getsockopt (backend legacy) reader to the iptables binaries, by reason (kernel-error, unprintable-rule).",
		}, []string{"backend", "reason"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    NameReconcileDuration,
			Help:    "Duration of one reconcile pass (observe, compare, repair).",
			Buckets: reconcileBuckets,
		}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: NameLastSuccess,
			Help: "Unix time of the last reconcile pass that ended without an error finding.",
		}),
		doctorFailed: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: NameDoctorFailed,
			Help: "1 when the doctor check failed at its last run, 0 when it did not.",
		}, []string{"check"}),
		items:  map[string]bool{},
		checks: map[string]bool{},
		dirty:  true,
	}
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: NameBuildInfo,
		Help: "Always 1; the labels say which build of ecs-remediator runs.",
	}, []string{"version", "commit", "goversion"})
	buildInfo.WithLabelValues(label(c.Version), label(c.Commit), runtime.Version()).Set(1)
	m.reg.MustRegister(m.compliant, m.repairs, m.restarts, m.suppressed, m.fights, m.fallbacks,
		m.duration, m.lastSuccess, m.doctorFailed, buildInfo)
	return m
}

// newCompliantGauge is shared by the daemon's registry and WriteText, so
// both speak the same name and help.
func newCompliantGauge() *prometheus.GaugeVec {
	return prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: NameItemCompliant,
		Help: "1 when the item is as the policy wants it, 0 when it drifted or could not be checked.",
	}, []string{"item"})
}
