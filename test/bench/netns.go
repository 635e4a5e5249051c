package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"

	"golang.org/x/sys/unix"
)

// netns is a private network namespace held by one locked OS thread, as
// test/nstest does it. Do runs a function on that thread: processes started
// and sockets created there live in the namespace. Sockets stay in it when
// used from other goroutines afterwards. Close throws the thread away, and
// the namespace goes with it once its processes have exited.
type netns struct {
	calls chan func()
	done  chan struct{}
	// env is added to every command run here (XTABLES_LOCKFILE: each
	// simulated host has its own xtables lock, as each instance has).
	env []string
}

// withEnv adds the namespace's env to cmd's.
func (n *netns) withEnv(cmd *exec.Cmd) {
	if len(n.env) == 0 {
		return
	}
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(append([]string(nil), n.env...), cmd.Env...) // cmd's own settings win
}

func newNetns() (*netns, error) {
	n := &netns{calls: make(chan func()), done: make(chan struct{})}
	errc := make(chan error, 1)
	go func() {
		defer close(n.done)
		runtime.LockOSThread()
		// Never unlocked: the thread dies with this goroutine.
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare(CLONE_NEWNET): %w (run as root)", err)
			return
		}
		if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
			errc <- fmt.Errorf("ip link set lo up: %v: %s", err, out)
			return
		}
		errc <- nil
		for f := range n.calls {
			f()
		}
	}()
	if err := <-errc; err != nil {
		<-n.done
		return nil, err
	}
	return n, nil
}

// Do runs f on the namespace's thread and waits for it.
func (n *netns) Do(f func()) {
	ran := make(chan struct{})
	n.calls <- func() { defer close(ran); f() }
	<-ran
}

// Sh runs a shell script in the namespace.
func (n *netns) Sh(script string) (string, error) {
	var out []byte
	var err error
	n.Do(func() {
		cmd := exec.Command("sh", "-c", script)
		n.withEnv(cmd)
		out, err = cmd.CombinedOutput()
	})
	if err != nil {
		return string(out), fmt.Errorf("sh -c %q: %v: %s", script, err, out)
	}
	return string(out), nil
}

// Start starts cmd in the namespace.
func (n *netns) Start(cmd *exec.Cmd) error {
	var err error
	n.withEnv(cmd)
	n.Do(func() { err = cmd.Start() })
	return err
}

// Run runs cmd in the namespace and waits for it.
func (n *netns) Run(cmd *exec.Cmd) error {
	var err error
	n.withEnv(cmd)
	n.Do(func() { err = cmd.Run() })
	return err
}

// Close ends the thread (and with it this process's hold on the namespace).
func (n *netns) Close() {
	close(n.calls)
	<-n.done
}
