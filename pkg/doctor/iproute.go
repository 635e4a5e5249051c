package doctor

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
)

// The bridge probe changes links, addresses and routes with ip(8) from
// iproute2: a handful of commands per run, each an honest, readable
// equivalent of what an operator would type, and no netlink attribute
// encoding of our own (the project's netlink library does not model
// rtnetlink links). Every call runs on the calling goroutine's locked
// thread, so the process starts in that thread's network namespace.

// ipBinary is the ip(8) command. Doctor skips the probe when it is missing.
const ipBinary = "ip"

// ipCmd runs ip with args (and stdin, for -batch -) and returns stdout.
// The error names the command and carries ip's own message.
func ipCmd(ctx context.Context, stdin string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, ipBinary, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if stdin != "" {
			return nil, fmt.Errorf("ip %s <<%q: %w: %s", strings.Join(args, " "), stdin, err, msg)
		}
		return nil, fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, msg)
	}
	return stdout.Bytes(), nil
}

// ipJSON runs ip -j args and decodes its output into v.
func ipJSON(ctx context.Context, v any, args ...string) error {
	out, err := ipCmd(ctx, "", append([]string{"-j"}, args...)...)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(out)) == 0 {
		return nil // older ip prints nothing for an empty list
	}
	if err := json.Unmarshal(out, v); err != nil {
		return fmt.Errorf("ip -j %s: unexpected output: %w", strings.Join(args, " "), err)
	}
	return nil
}

type ipLink struct {
	Name     string   `json:"ifname"`
	Flags    []string `json:"flags"`
	LinkInfo struct {
		Kind      string `json:"info_kind"`
		SlaveKind string `json:"info_slave_kind"`
		Data      struct {
			STPState int `json:"stp_state"`
		} `json:"info_data"`
		SlaveData struct {
			State string `json:"state"`
		} `json:"info_slave_data"`
	} `json:"linkinfo"`
}

func (l ipLink) up() bool {
	for _, f := range l.Flags {
		if f == "UP" {
			return true
		}
	}
	return false
}

type ipAddrs struct {
	Name     string `json:"ifname"`
	AddrInfo []struct {
		Family    string `json:"family"`
		Local     string `json:"local"`
		PrefixLen int    `json:"prefixlen"`
	} `json:"addr_info"`
}

type ipNeigh struct {
	Dst    string   `json:"dst"`
	LLAddr string   `json:"lladdr"`
	State  []string `json:"state"`
}
