package logging

import (
	"io"
	"sync"
	"time"

	"go.uber.org/zap/zapcore"
)

// humanCore writes the message of each entry and nothing else, so a person
// at a terminal reads sentences; "warning: " or "error: " marks what needs
// attention. Fields are left out: they are for the journal and JSON.
type humanCore struct {
	zapcore.LevelEnabler
	mu *sync.Mutex
	w  io.Writer
}

func newHumanCore(lvl zapcore.LevelEnabler, w io.Writer) zapcore.Core {
	return &humanCore{LevelEnabler: lvl, mu: &sync.Mutex{}, w: w}
}

func (c *humanCore) With([]zapcore.Field) zapcore.Core { return c }

func (c *humanCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *humanCore) Write(e zapcore.Entry, _ []zapcore.Field) error {
	prefix := ""
	switch {
	case e.Level >= zapcore.ErrorLevel:
		prefix = "error: "
	case e.Level == zapcore.WarnLevel:
		prefix = "warning: "
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	_, err := io.WriteString(c.w, prefix+e.Message+"\n")
	return err
}

func (c *humanCore) Sync() error { return nil }

// newJSONCore writes one JSON object per entry.
func newJSONCore(lvl zapcore.LevelEnabler, w io.Writer) zapcore.Core {
	enc := zapcore.EncoderConfig{
		TimeKey:        "ts",
		LevelKey:       "level",
		MessageKey:     "msg",
		StacktraceKey:  "stack",
		LineEnding:     zapcore.DefaultLineEnding,
		EncodeLevel:    zapcore.LowercaseLevelEncoder,
		EncodeTime:     zapcore.TimeEncoderOfLayout(time.RFC3339Nano),
		EncodeDuration: zapcore.StringDurationEncoder,
	}
	return zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.AddSync(w), lvl)
}
