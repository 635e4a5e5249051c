package doctor

import (
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// nsWorker is one OS thread in a fresh, anonymous network namespace: the
// bridge probe's throw-away "container". Functions given to do run on that
// thread, so the sockets they create and the processes they start live in
// the namespace. The namespace has no name (nothing under /run/netns) and
// nothing but this thread holds it: when close ends the goroutine, the
// locked thread exits, the kernel frees the namespace and every interface
// in it (a veth's peer goes with it). A SIGKILLed process takes it along
// just the same, so a kill can leave nothing behind.
type nsWorker struct {
	jobs chan func()
	done chan struct{}
	tid  int
}

// newNSWorker starts the thread and unshares its network namespace. The
// error wraps unix.EPERM when the process lacks CAP_SYS_ADMIN.
func newNSWorker() (*nsWorker, error) {
	w := &nsWorker{jobs: make(chan func()), done: make(chan struct{})}
	errc := make(chan error, 1)
	go func() {
		defer close(w.done)
		// Never unlocked: the goroutine exits locked, so the runtime
		// terminates the thread instead of reusing it in another namespace.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare(CLONE_NEWNET): %w", err)
			return
		}
		w.tid = unix.Gettid()
		errc <- nil
		for f := range w.jobs {
			f()
		}
	}()
	if err := <-errc; err != nil {
		<-w.done
		return nil, err
	}
	return w, nil
}

// nsPath names the namespace for tools that take a path (ip ... netns PATH).
// It is valid while the worker runs.
func (w *nsWorker) nsPath() string {
	return fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), w.tid)
}

// do runs f on the namespace thread and waits for it.
func (w *nsWorker) do(f func()) {
	finished := make(chan struct{})
	w.jobs <- func() { defer close(finished); f() }
	<-finished
}

// close ends the thread, and with it the namespace.
func (w *nsWorker) close() {
	close(w.jobs)
	<-w.done
}
