package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/net/netutil"
)

// The listener's limits: no local user can exhaust the root daemon
// through /metrics (idle connections from an unprivileged uid took RSS from
// 13 to 199 MB and, at the fd limit, made repairs fail with "too many open
// files"). Connections beyond maxConns wait in the kernel's accept queue,
// costing the daemon neither a descriptor nor a goroutine; an accepted one
// that sends no request is closed after headerTimeout, an idle keep-alive
// after idleTimeout. A scrape is one small request.
const (
	maxConns       = 16
	headerTimeout  = 2 * time.Second
	readTimeout    = 5 * time.Second
	writeTimeout   = 10 * time.Second
	idleTimeout    = 10 * time.Second
	maxHeaderBytes = 8 << 10
)

// Serve serves /metrics on Config.Listen until ctx ends, then shuts the
// server down and returns nil. Without a listen address it returns nil at
// once. An address that cannot be bound is an error naming the policy key.
// The host "localhost" is taken as 127.0.0.1 literally: what /etc/hosts says
// it is never widens a loopback-only listener.
func (m *Metrics) Serve(ctx context.Context) error {
	if m.cfg.Listen == "" {
		return nil
	}
	addr := ListenAddr(m.cfg.Listen)
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics endpoint (policy key metrics.listen %q): %w; choose a free host:port or set metrics.listen to off", m.cfg.Listen, err)
	}
	return m.ServeListener(ctx, ln)
}

// ListenAddr is the address metrics.listen binds: "localhost" (any case)
// becomes 127.0.0.1, never a name resolved through /etc/hosts.
func ListenAddr(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil || !strings.EqualFold(host, "localhost") {
		return listen
	}
	return net.JoinHostPort("127.0.0.1", port)
}

// ServeListener is Serve on a listener the caller opened (a test's
// ephemeral port), with the same limits.
func (m *Metrics) ServeListener(ctx context.Context, ln net.Listener) error {
	ln = netutil.LimitListener(ln, maxConns)
	srv := &http.Server{
		Handler:           m.Handler(),
		ReadHeaderTimeout: headerTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			srv.Close()
		}
		<-errc
		return nil
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("serve metrics on %s: %w", ln.Addr(), err)
	}
}

// Handler serves /metrics from the private registry, and a pointer to it on
// "/"; every other path is 404.
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
		Timeout:             5 * time.Second,
	}))
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ecs-remediator: metrics are at /metrics")
	})
	return mux
}
