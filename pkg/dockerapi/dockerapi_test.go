package dockerapi

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeDocker serves GET /networks on a unix socket with body (pure logic:
// the real Docker is asked in the Docker e2e).
func fakeDocker(t *testing.T, status int, body string) (socket string, queries *[]string) {
	t.Helper()
	socket = filepath.Join(t.TempDir(), "docker.sock")
	l, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	var qs []string
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		qs = append(qs, r.URL.Path+"?"+r.URL.RawQuery)
		w.WriteHeader(status)
		w.Write([]byte(body))
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return socket, &qs
}

// As docker network ls --format json would list them (docker.io 20.10).
const networks = `[
 {"Name":"host","Driver":"host","Options":{}},
 {"Name":"custom","Driver":"bridge","Options":{"com.docker.network.bridge.name":"br-custom"}},
 {"Name":"bridge","Driver":"bridge","Options":{"com.docker.network.bridge.default_bridge":"true","com.docker.network.bridge.enable_icc":"true","com.docker.network.bridge.name":"ecs-br0"}}
]`

func TestDefaultBridge(t *testing.T) {
	sock, qs := fakeDocker(t, 200, networks)
	name, ok, err := DefaultBridge(context.Background(), sock)
	if err != nil || !ok || name != "ecs-br0" {
		t.Fatalf("DefaultBridge = %q %v %v, want ecs-br0", name, ok, err)
	}
	if len(*qs) != 1 || !strings.Contains((*qs)[0], `"driver"`) {
		t.Errorf("queries %v: want one GET /networks filtered by driver", *qs)
	}

	// Docker answers but has no default bridge (dockerd --bridge=none).
	sock, _ = fakeDocker(t, 200, `[{"Name":"custom","Driver":"bridge","Options":{"com.docker.network.bridge.name":"br-custom"}}]`)
	if name, ok, err := DefaultBridge(context.Background(), sock); err != nil || ok || name != "" {
		t.Errorf("no default bridge: %q %v %v", name, ok, err)
	}

	// No answer: no socket, an error status, garbage.
	for what, sock := range map[string]string{
		"no socket": filepath.Join(t.TempDir(), "absent.sock"),
		"HTTP 500":  func() string { s, _ := fakeDocker(t, 500, `{"message":"boom"}`); return s }(),
		"garbage":   func() string { s, _ := fakeDocker(t, 200, `<html>`); return s }(),
	} {
		if _, _, err := DefaultBridge(context.Background(), sock); err == nil || !strings.Contains(err.Error(), sock) && what != "garbage" {
			t.Errorf("%s: err %v, want one naming %s", what, err, sock)
		}
	}
}

// A Docker that accepts and never answers costs at most Timeout.
func TestDefaultBridgeHungDocker(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "docker.sock")
	l, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close() // never answers
		}
	}()
	done := make(chan error, 1)
	go func() { _, _, err := DefaultBridge(context.Background(), socket); done <- err }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a silent Docker gave an answer")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("DefaultBridge did not give up on a Docker that never answers")
	}
}

// Bridge asks Docker once per Every.
func TestBridgeRemembers(t *testing.T) {
	sock, qs := fakeDocker(t, 200, networks)
	b := &Bridge{Socket: sock, Every: time.Hour}
	for i := 0; i < 3; i++ {
		if name, ok, err := b.Name(); name != "ecs-br0" || !ok || err != nil {
			t.Fatalf("Name = %q %v %v", name, ok, err)
		}
	}
	if len(*qs) != 1 {
		t.Errorf("%d questions to Docker, want 1", len(*qs))
	}
}
