package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"go.uber.org/zap"

	"github.com/ecs-remediator/ecs-remediator/pkg/policy"
)

// policyFile follows the file the daemon's policy came from (--config, or
// the default file when it existed at start). When it is deleted while the
// daemon runs, the policy in force stays and that is logged once; a reload
// (SIGHUP) then falls back to the built-in defaults, as a missing default
// file does at start, instead of refusing. Only the daemon's loop goroutine
// calls it.
type policyFile struct {
	path string // "" when the daemon started on the built-in defaults
	log  *zap.Logger
	gone bool
}

// observe logs the file's disappearance and return, once each. It is
// called after every pass (a deletion makes one: the file is watched).
func (pf *policyFile) observe() {
	if pf.path == "" {
		return
	}
	_, err := os.Stat(pf.path)
	gone := errors.Is(err, fs.ErrNotExist)
	switch {
	case gone && !pf.gone:
		pf.log.Warn(fmt.Sprintf("policy file %s was deleted: the policy in force stays; a reload (systemctl reload ecs-remediator, SIGHUP) would fall back to the built-in defaults: restore the file first", pf.path),
			zap.String("action", "policy-file-deleted"), zap.String("file", pf.path))
	case !gone && pf.gone:
		pf.log.Info(fmt.Sprintf("policy file %s exists again; systemctl reload ecs-remediator puts it in force", pf.path),
			zap.String("action", "policy-file-restored"), zap.String("file", pf.path))
	}
	pf.gone = gone
}

// reload wraps the command's policy loader: a file that no longer exists
// means the built-in defaults (logged); any other error stays an error, and
// the daemon keeps the policy in force.
func (pf *policyFile) reload(load func() (*policy.Policy, error)) func() (*policy.Policy, error) {
	return func() (*policy.Policy, error) {
		p, err := load()
		if err == nil || pf.path == "" {
			return p, err
		}
		if _, serr := os.Stat(pf.path); !errors.Is(serr, fs.ErrNotExist) {
			return p, err
		}
		pf.log.Warn(fmt.Sprintf("policy file %s does not exist: reloading with the built-in defaults, as for a missing default file", pf.path),
			zap.String("action", "policy-defaults"), zap.String("file", pf.path))
		return policy.Default(), nil
	}
}
