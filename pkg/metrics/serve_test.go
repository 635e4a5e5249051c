package metrics

import (
	"context"
	"github.com/ecs-remediator/ecs-remediator/pkg/policy"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ecs-remediator/ecs-remediator/pkg/finding"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func TestEndpointServesWhatTheTextfileHolds(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ecs_remediator.prom")
	m := New(Config{Textfile: path, Version: "1.2.3", Commit: "abc1234"})
	m.Observe([]finding.Finding{f(iamRole, finding.Drift), f(natRule, finding.OK)}, nil, 2*time.Millisecond, t0)
	m.Observe([]finding.Finding{f(iamRole, finding.OK), f(natRule, finding.OK)}, []finding.Change{{Item: iamRole}}, 4*time.Millisecond, t0.Add(time.Second))
	m.Fight(natRule)
	m.Doctor(map[string]bool{"imds.reachable": true})
	if err := m.Flush(t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.ServeListener(ctx, ln) }()

	code, body := get(t, base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d\n%s", code, body)
	}
	fromHTTP := parse(t, strings.NewReader(body))
	if v := value(t, fromHTTP, NameRepairs, "item", iamRole); v != 1 {
		t.Errorf("endpoint: repairs = %v, want 1", v)
	}
	if v := value(t, fromHTTP, NameItemCompliant, "item", iamRole); v != 1 {
		t.Errorf("endpoint: compliant = %v, want 1", v)
	}
	if got, want := canonical(t, fromHTTP), canonical(t, parseFile(t, path)); got != want {
		t.Errorf("endpoint and textfile differ\nendpoint:\n%s\ntextfile:\n%s", got, want)
	}
	if code, _ := get(t, base+"/"); code != http.StatusOK {
		t.Errorf("GET /: %d, want 200", code)
	}
	if code, _ := get(t, base+"/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("GET /debug/pprof/: %d, want 404", code)
	}

	cancel()
	if err := <-done; err != nil {
		t.Errorf("ServeListener after cancel: %v", err)
	}
	if c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		c.Close()
		t.Error("the endpoint still accepts connections after ctx ended")
	}
}

func TestServeOffReturnsAtOnce(t *testing.T) {
	for _, listen := range []string{"", policy.Resolve(policy.Off)} {
		if err := New(Config{Listen: listen}).Serve(context.Background()); err != nil {
			t.Errorf("Serve with Listen %q: %v", listen, err)
		}
	}
}

func TestServeBusyAddressNamesTheKey(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	err = New(Config{Listen: ln.Addr().String()}).Serve(context.Background())
	if err == nil || !strings.Contains(err.Error(), "metrics.listen") || !strings.Contains(err.Error(), ln.Addr().String()) {
		t.Errorf("Serve on a busy address: %v, want an error naming metrics.listen and the address", err)
	}
}

func TestServeOnListenAddress(t *testing.T) {
	// Find a free port, release it, and serve there through Serve itself.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	m := New(Config{Listen: addr})
	m.Observe([]finding.Finding{f(iamRole, finding.Drift)}, nil, time.Millisecond, t0)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Serve(ctx) }()
	var body string
	for i := 0; ; i++ {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			break
		}
		select {
		case err := <-done:
			cancel()
			if err != nil && strings.Contains(err.Error(), "address already in use") {
				t.Skipf("port %s was taken by someone else meanwhile", addr)
			}
			t.Fatalf("Serve returned early: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
		if i == 250 {
			cancel()
			t.Fatalf("nothing served on %s: %v", addr, err)
		}
	}
	if v := value(t, parse(t, strings.NewReader(body)), NameItemCompliant, "item", iamRole); v != 0 {
		t.Errorf("compliant = %v, want 0", v)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve after cancel: %v", err)
	}
}

// localhost is 127.0.0.1 literally: /etc/hosts never widens the listener.
func TestListenAddrTakesLocalhostLiterally(t *testing.T) {
	for in, want := range map[string]string{
		"localhost:9723": "127.0.0.1:9723",
		"LOCALHOST:1":    "127.0.0.1:1",
		"127.0.0.1:9723": "127.0.0.1:9723",
		"[::1]:9723":     "[::1]:9723",
		"0.0.0.0:9723":   "0.0.0.0:9723",
	} {
		if got := ListenAddr(in); got != want {
			t.Errorf("ListenAddr(%q) = %q, want %q", in, got, want)
		}
	}
}
