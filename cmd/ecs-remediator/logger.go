package main

import (
	"io"
	"os"
	"strings"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/ecs-remediator/ecs-remediator/pkg/logging"
)

// logFormatFlag adds --log-format to a command that logs (apply, run).
func (f *flags) logFormatFlag() *string {
	var names []string
	for _, n := range logging.Formats {
		names = append(names, string(n))
	}
	return f.String("log-format", "", "`FORMAT` of the log lines: "+strings.Join(names, ", ")+" (default: the journal under systemd, human on a terminal, text otherwise); an explicit format writes to stderr")
}

// checkLogFormat returns a usage error for a --log-format value that is
// not a format.
func (f *flags) checkLogFormat(format string) (int, bool) {
	for _, n := range logging.Formats {
		if string(n) == format {
			return 0, true
		}
	}
	if format == "" {
		return 0, true
	}
	return f.usageError("--log-format %q: give human, text or json", format), false
}

// newLogger is the one logger. Without --log-format: journald under
// systemd; on a terminal the human sentence only; elsewhere (a pipe, a
// file) the sentence with its fields. With --log-format, that format on w.
func newLogger(level, format string, w io.Writer) (*zap.Logger, error) {
	o := logging.Options{Writer: w, Format: logging.Format(format)}
	switch {
	case format != "":
		o.Output = logging.Console
	case isTerminal(w):
		o.Format = logging.Human
	default:
		o.Format = logging.Text
	}
	return logging.New(level, o)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
