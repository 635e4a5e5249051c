// Package metrics owns the daemon's Prometheus view of one host: per-item
// compliance, repair, fight and agent-restart counters, reconcile latency,
// doctor results and build info, kept in a private registry. It exposes
// them as a node_exporter textfile (written atomically with pkg/atomicfile)
// and, when asked, on an HTTP /metrics endpoint.
//
// It only reads finding ids and statuses: it never puts file contents,
// values or paths in labels, never touches the global Prometheus registry,
// and writes no file but the configured textfile. It does not import
// pkg/policy: the caller resolves the policy into a Config.
package metrics
