package doctor

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/ecs-remediator/ecs-remediator/pkg/logging"
)

// LocalInterval is how often the daemon runs the local checks (the agent,
// the credentials path, task processes); the IMDS checks run every
// Schedule's imdsEvery (the policy's doctor.interval) at most.
const LocalInterval = time.Minute

// Schedule is the daemon's periodic diagnosis. Run starts one diagnosis
// off the caller's goroutine (a slow IMDS must not delay a repair), one at
// a time; the IMDS checks are left out of a run that comes less than
// imdsEvery after the last run that had them, and keep their last state.
// A Tracker turns the runs into log lines: each new failure is logged once
// (error, DoctorFailure) and its recovery once (info, DoctorRecovered).
//
// The bridge-path probe adds a port to the task bridge for a moment:
// `doctor` runs it on request, a Schedule never does. On an ECS Anywhere
// host the daemon's unit hides /root (ProtectHome=yes), so a credentials
// file it cannot see is not reported missing (External.Sandboxed).
type Schedule struct {
	c         Config
	imdsEvery time.Duration
	log       *zap.Logger
	failing   func(map[string]bool)

	running  atomic.Bool
	tracker  Tracker   // owned by the running diagnosis
	lastIMDS time.Time // owned by the running diagnosis
}

// NewSchedule returns the periodic diagnosis of c, with the IMDS checks
// at most every imdsEvery. failing, when set, is given every item seen so
// far and whether it fails now after each complete run (the doctor gauge
// in metrics); it is called off the caller's goroutine.
func NewSchedule(c Config, imdsEvery time.Duration, log *zap.Logger, failing func(map[string]bool)) *Schedule {
	c.SkipBridgePath = true
	if c.External != nil {
		ext := *c.External
		ext.Sandboxed = true
		c.External = &ext
	}
	if log == nil {
		log = zap.NewNop()
	}
	return &Schedule{c: c, imdsEvery: imdsEvery, log: log, failing: failing}
}

// Interval is how often Run should be called: LocalInterval, or the IMDS
// interval when that is shorter.
func (s *Schedule) Interval() time.Duration { return min(LocalInterval, s.imdsEvery) }

// Run starts one diagnosis in a goroutine and returns at once; it does
// nothing while the previous one still runs. A diagnosis that ctx ends
// reports nothing.
func (s *Schedule) Run(ctx context.Context) {
	if s.running.CompareAndSwap(false, true) {
		go s.diagnose(ctx)
	}
}

func (s *Schedule) diagnose(ctx context.Context) {
	defer s.running.Store(false)
	c := s.c
	now := time.Now()
	imds := now.Sub(s.lastIMDS) >= s.imdsEvery
	c.SkipIMDS = !imds
	if imds {
		s.lastIMDS = now
	}
	var rs []Result
	for _, r := range Run(ctx, c) {
		if !imds && strings.HasPrefix(r.Item, "imds.") {
			continue // not run this time: keep its last state
		}
		rs = append(rs, r)
	}
	if ctx.Err() != nil {
		return
	}
	failed, recovered := s.tracker.Observe(rs)
	for _, r := range failed {
		s.log.Error(fmt.Sprintf("%s: %s; fix: %s", r.Item, oneLine(r.Detail), oneLine(r.Fix)),
			logging.MessageID(logging.DoctorFailure), zap.String("item", r.Item),
			zap.String("action", "diagnosis-failed"), zap.String("detail", r.Detail), zap.String("fix", r.Fix))
	}
	for _, r := range recovered {
		s.log.Info(fmt.Sprintf("%s: passes again: %s", r.Item, oneLine(r.Detail)),
			logging.MessageID(logging.DoctorRecovered), zap.String("item", r.Item),
			zap.String("action", "diagnosis-recovered"), zap.String("detail", r.Detail))
	}
	if s.failing != nil {
		s.failing(s.tracker.Failing())
	}
}

// oneLine puts a multi-line detail on one log line.
func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }
