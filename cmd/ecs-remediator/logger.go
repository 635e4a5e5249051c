package main

import (
	"io"

	"go.uber.org/zap"

	"github.com/ecs-remediator/ecs-remediator/pkg/logging"
)

// newLogger is the one logger: journald under systemd, lines on w otherwise.
func newLogger(level string, w io.Writer) (*zap.Logger, error) {
	return logging.New(level, logging.Options{Writer: w})
}
