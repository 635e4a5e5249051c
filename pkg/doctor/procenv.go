package doctor

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// credentialsEnvVar is what the ECS agent puts in a task container's
// environment. Only the container's PID 1 is guaranteed to have it
// (docs/doctor.md, "The troubleshooting tree"): children started by a wrapper, supervisord or another init
// that clears the environment lose it, and their SDK falls back to the
// instance role.
const credentialsEnvVar = "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"

// fullURIEnvVar is the other variable SDKs read for container
// credentials; a process that has it is not blind.
const fullURIEnvVar = "AWS_CONTAINER_CREDENTIALS_FULL_URI"

// procInfo is what the scan needs of one process.
type procInfo struct {
	pid, ppid int
	comm      string
	pidNS     string // target of /proc/PID/ns/pid, e.g. "pid:[4026532201]"
}

// readProcs reads every process under procRoot. Processes that vanish or
// cannot be read are left out; zombies are left out too (their environ is
// empty). An error means procRoot itself cannot be listed.
func readProcs(procRoot string) (map[int]procInfo, error) {
	ents, err := os.ReadDir(procRoot)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", procRoot, err)
	}
	procs := make(map[int]procInfo, len(ents))
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		dir := filepath.Join(procRoot, e.Name())
		stat, err := os.ReadFile(filepath.Join(dir, "stat"))
		if err != nil {
			continue
		}
		comm, state, ppid, ok := parseStat(stat)
		if !ok || state == "Z" || state == "X" {
			continue
		}
		ns, err := os.Readlink(filepath.Join(dir, "ns", "pid"))
		if err != nil {
			continue
		}
		procs[pid] = procInfo{pid: pid, ppid: ppid, comm: comm, pidNS: ns}
	}
	return procs, nil
}

// parseStat reads comm, state and ppid from /proc/PID/stat. comm may hold
// spaces and parentheses, so it ends at the last ')'.
func parseStat(b []byte) (comm, state string, ppid int, ok bool) {
	open := bytes.IndexByte(b, '(')
	closing := bytes.LastIndexByte(b, ')')
	if open < 0 || closing < open {
		return "", "", 0, false
	}
	rest := strings.Fields(string(b[closing+1:]))
	if len(rest) < 2 {
		return "", "", 0, false
	}
	ppid, err := strconv.Atoi(rest[1])
	if err != nil {
		return "", "", 0, false
	}
	return string(b[open+1 : closing]), rest[0], ppid, true
}

// containerRoot returns the topmost ancestor of pid within pid's own PID
// namespace: seen from the host, a container's init is the first process
// whose parent lives in another PID namespace; seen from inside a
// container, it is PID 1. It returns 0 when pid is unknown.
func containerRoot(procs map[int]procInfo, pid int) int {
	cur, ok := procs[pid]
	if !ok {
		return 0
	}
	for range len(procs) { // bounded: a parent loop cannot exist, but never spin
		parent, ok := procs[cur.ppid]
		if !ok || parent.pidNS != cur.pidNS {
			return cur.pid
		}
		cur = parent
	}
	return cur.pid
}

// envHas reports which of the credentials variables an environ block sets.
func envHas(environ []byte) (relative, full bool) {
	for _, kv := range bytes.Split(environ, []byte{0}) {
		switch {
		case bytes.HasPrefix(kv, []byte(credentialsEnvVar+"=")):
			relative = true
		case bytes.HasPrefix(kv, []byte(fullURIEnvVar+"=")):
			full = true
		}
	}
	return relative, full
}

// blindProcess is a process whose container root has the credentials
// variable while it has neither credentials variable.
type blindProcess struct {
	pidNS      string
	rootPID    int
	rootComm   string
	pid        int
	comm       string
	othersSeen int // further blind processes in the same container
}

// scanCredentialsEnv finds, per container (PID namespace), the first
// process that lost the credentials variable. unreadable counts processes
// whose environ could not be read (other users' processes when not root).
func scanCredentialsEnv(procRoot string) (blind []blindProcess, containers, unreadable int, err error) {
	procs, err := readProcs(procRoot)
	if err != nil {
		return nil, 0, 0, err
	}
	environ := func(pid int) ([]byte, error) {
		return os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "environ"))
	}
	type rootState struct {
		checked, tasky bool
	}
	roots := map[int]*rootState{}
	byNS := map[string]*blindProcess{}
	pids := make([]int, 0, len(procs))
	for pid := range procs {
		pids = append(pids, pid)
	}
	sort.Ints(pids)
	for _, pid := range pids {
		root := containerRoot(procs, pid)
		if root == 0 || root == pid {
			continue
		}
		rs := roots[root]
		if rs == nil {
			rs = &rootState{}
			roots[root] = rs
		}
		if !rs.checked {
			rs.checked = true
			env, err := environ(root)
			if err != nil {
				if errors.Is(err, fs.ErrPermission) {
					unreadable++
				}
				continue
			}
			rs.tasky, _ = envHas(env)
			if rs.tasky {
				containers++
			}
		}
		if !rs.tasky {
			continue
		}
		env, err := environ(pid)
		if err != nil {
			if errors.Is(err, fs.ErrPermission) {
				unreadable++
			}
			continue
		}
		if rel, full := envHas(env); rel || full {
			continue
		}
		p := procs[pid]
		if b := byNS[p.pidNS]; b != nil {
			b.othersSeen++
			continue
		}
		byNS[p.pidNS] = &blindProcess{pidNS: p.pidNS, rootPID: root, rootComm: procs[root].comm, pid: pid, comm: p.comm}
	}
	for _, b := range byNS {
		blind = append(blind, *b)
	}
	sort.Slice(blind, func(i, j int) bool { return blind[i].rootPID < blind[j].rootPID })
	return blind, containers, unreadable, nil
}

// checkTasksCredentialsEnv reports tasks.credentials_env.
func checkTasksCredentialsEnv(procRoot string) Result {
	r := Result{Item: ItemTasksCredentialsEnv}
	blind, containers, unreadable, err := scanCredentialsEnv(procRoot)
	if err != nil {
		r.Status, r.Detail = Skip, fmt.Sprintf("cannot read processes: %v", err)
		return r
	}
	if len(blind) == 0 {
		if containers == 0 && unreadable > 0 {
			r.Status = Skip
			r.Detail = fmt.Sprintf("could not read the environment of %d processes under %s: run as root", unreadable, procRoot)
			return r
		}
		r.Status = OK
		r.Detail = fmt.Sprintf("%d task container(s) with %s; every process in them has it", containers, credentialsEnvVar)
		if unreadable > 0 {
			r.Detail += fmt.Sprintf(" (%d processes unreadable)", unreadable)
		}
		return r
	}
	parts := make([]string, 0, len(blind))
	for _, b := range blind {
		s := fmt.Sprintf("pid %d (%s) in the container of pid %d (%s, %s) lacks %s", b.pid, b.comm, b.rootPID, b.rootComm, b.pidNS, credentialsEnvVar)
		if b.othersSeen > 0 {
			s += fmt.Sprintf(" (and %d more processes there)", b.othersSeen)
		}
		parts = append(parts, s)
	}
	r.Status = Warn
	r.Detail = strings.Join(parts, "; ")
	r.Fix = "only the container's PID 1 gets " + credentialsEnvVar + " from ECS: processes started by a wrapper script, supervisord or another init that does not pass the environment on " +
		"fall back to the instance role (\"Access Denied\"). Pass the variable on (supervisord: environment=…, or start programs with the inherited environment) " +
		"or export it in the entrypoint before starting them"
	return r
}
