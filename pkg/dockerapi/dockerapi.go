// Package dockerapi asks the Docker daemon, over its API socket, the one
// thing ecs-remediator needs from it: the name of its default bridge
// (what ecs-init puts in the introspection ACCEPT rule, and where
// bridge-mode tasks come from). Plain HTTP over the unix socket with a
// short timeout; no Docker SDK. It reads only; it never changes Docker.
package dockerapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// Timeout bounds one question to Docker: a stuck or absent daemon must
// not hold up a reconcile.
const Timeout = time.Second

// maxBody caps the answer read (a host with thousands of networks still
// fits).
const maxBody = 8 << 20

// network is the part of GET /networks that matters.
type network struct {
	Name    string            `json:"Name"`
	Driver  string            `json:"Driver"`
	Options map[string]string `json:"Options"`
}

// DefaultBridge returns the interface name of Docker's default bridge
// network: com.docker.network.bridge.name of the network whose
// com.docker.network.bridge.default_bridge is "true" (as ecs-init reads it
// in ecs-init/docker/docker.go). ok is false when Docker answers but has no
// default bridge (dockerd --bridge=none); err is set when Docker does not
// answer (not running, no socket, timeout, a malformed answer).
func DefaultBridge(ctx context.Context, socket string) (name string, ok bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	c := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		DisableKeepAlives: true,
	}}
	// ecs-init lists the bridge networks (driver=bridge) and takes the one
	// marked default_bridge (ecs-init/docker/docker.go,
	// FindDefaultBridgeNetworkInterfaceName).
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, `http://docker/networks?filters={"driver":{"bridge":true}}`, nil)
	if err != nil {
		return "", false, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", false, fmt.Errorf("ask Docker at %s for its networks: %w", socket, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", false, fmt.Errorf("ask Docker at %s for its networks: HTTP %s", socket, resp.Status)
	}
	var nets []network
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxBody)).Decode(&nets); err != nil {
		return "", false, fmt.Errorf("read the answer of Docker at %s to GET /networks: %w", socket, err)
	}
	for _, n := range nets {
		if n.Driver != "" && n.Driver != "bridge" {
			continue
		}
		if n.Options["com.docker.network.bridge.default_bridge"] == "true" {
			if b := n.Options["com.docker.network.bridge.name"]; b != "" {
				return b, true, nil
			}
		}
	}
	return "", false, nil
}

// Bridge remembers Docker's answer, so that a reconcile asks Docker at
// most every Every (a hung dockerd then costs a pass at most Timeout, once
// per Every). Not safe for concurrent use; the netfilter enforcer calls it
// under its own lock.
type Bridge struct {
	Socket string
	Every  time.Duration // 0: 30 s

	at   time.Time
	name string
	ok   bool
	err  error
}

// Name is DefaultBridge, asked again when the last answer is older than
// Every.
func (b *Bridge) Name() (string, bool, error) {
	every := b.Every
	if every <= 0 {
		every = 30 * time.Second
	}
	if b.at.IsZero() || time.Since(b.at) >= every {
		b.name, b.ok, b.err = DefaultBridge(context.Background(), b.Socket)
		b.at = time.Now()
	}
	return b.name, b.ok, b.err
}
