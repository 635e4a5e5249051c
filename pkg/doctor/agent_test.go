package doctor

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// agentServer answers GET /v1/metadata like the ECS agent's introspection
// API: before registration ContainerInstanceArn is null.
func agentServer(t *testing.T, body string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/metadata" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/v1/metadata"
}

// closedURL returns a URL on 127.0.0.1 where nothing listens.
func closedURL(t *testing.T, path string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr + path
}

func TestIntrospection(t *testing.T) {
	for _, tc := range []struct {
		name      string
		url       func(t *testing.T) string
		want      Status
		detailHas string
		fixHas    string
	}{
		{"registered", func(t *testing.T) string {
			return agentServer(t, `{"Cluster":"prod","ContainerInstanceArn":"arn:aws:ecs:eu-west-1:123456789012:container-instance/prod/0123abcd","Version":"Amazon ECS Agent - v1.89.0 (1a2b3c4d)"}`)
		}, OK, "container-instance/prod/0123abcd", ""},
		{"not registered (null ARN)", func(t *testing.T) string {
			return agentServer(t, `{"Cluster":"prod","ContainerInstanceArn":null,"Version":"Amazon ECS Agent - v1.89.0 (1a2b3c4d)"}`)
		}, Warn, "not registered yet", "ECS_CLUSTER"},
		{"not registered (empty ARN)", func(t *testing.T) string {
			return agentServer(t, `{"Cluster":"prod","ContainerInstanceArn":"","Version":"v"}`)
		}, Warn, "not registered yet", "AmazonEC2ContainerServiceforEC2Role"},
		{"something else answers", func(t *testing.T) string { return agentServer(t, `<html>hello</html>`) }, Fail, "not with the agent's metadata JSON", "51678"},
		{"nothing listens", func(t *testing.T) string { return closedURL(t, "/v1/metadata") }, Fail, "connection refused", "not running"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{IntrospectionURL: tc.url(t), Timeout: 2 * time.Second}.withDefaults()
			r := checkIntrospection(context.Background(), c)
			if r.Item != ItemAgentIntrospection || r.Status != tc.want || !strings.Contains(r.Detail, tc.detailHas) || !strings.Contains(r.Fix, tc.fixHas) {
				t.Fatalf("got %+v, want status %s, detail with %q, fix with %q", r, tc.want, tc.detailHas, tc.fixHas)
			}
		})
	}
}

// TestIntrospectionTimeout points at a server that accepts but never
// answers: the check must fail naming the timeout, not hang.
func TestIntrospectionTimeout(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(block); srv.Close() })
	c := Config{IntrospectionURL: srv.URL + "/v1/metadata", Timeout: 200 * time.Millisecond}.withDefaults()
	ctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
	defer cancel()
	r := checkIntrospection(ctx, c)
	if r.Status != Fail || !strings.Contains(r.Detail, "no answer within") {
		t.Fatalf("got %+v", r)
	}
}

func TestAgentUnit(t *testing.T) {
	state := func(s string, err error) func(context.Context, string) (string, error) {
		return func(_ context.Context, unit string) (string, error) {
			if unit != "ecs.service" {
				return "", errors.New("wrong unit " + unit)
			}
			return s, err
		}
	}
	for _, tc := range []struct {
		name string
		fn   func(context.Context, string) (string, error)
		want Status
	}{
		{"no dbus", nil, Skip},
		{"dbus error", state("", errors.New("connection refused")), Skip},
		{"active", state("active", nil), OK},
		{"activating", state("activating", nil), Warn},
		{"failed", state("failed", nil), Fail},
		{"inactive", state("inactive", nil), Fail},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := checkAgentUnit(context.Background(), Config{UnitState: tc.fn}.withDefaults())
			if r.Item != ItemAgentUnit || r.Status != tc.want || r.Detail == "" || (r.Fix != "") != (tc.want == Fail || tc.want == Warn) {
				t.Fatalf("got %+v, want %s", r, tc.want)
			}
		})
	}
}
