package turn

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// pionLoggers adapts slog to pion's LoggerFactory.
//
// pion/turn logs every failed client request (a wrong password, a request
// for an allocation that does not exist) at Error level and routine events
// at Info, so its levels are shifted down: Error becomes Info, everything
// else Debug. Otherwise any client on the internet could fill the log.
type pionLoggers struct{ log *slog.Logger }

func (f pionLoggers) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{f.log.With("pion", scope)}
}

type pionLogger struct{ l *slog.Logger }

func (p pionLogger) logf(level slog.Level, format string, args ...any) {
	ctx := context.Background()
	if !p.l.Enabled(ctx, level) {
		return
	}
	p.l.Log(ctx, level, fmt.Sprintf(format, args...))
}

func (p pionLogger) Trace(msg string)                  { p.logf(slog.LevelDebug, "%s", msg) }
func (p pionLogger) Tracef(format string, args ...any) { p.logf(slog.LevelDebug, format, args...) }
func (p pionLogger) Debug(msg string)                  { p.logf(slog.LevelDebug, "%s", msg) }
func (p pionLogger) Debugf(format string, args ...any) { p.logf(slog.LevelDebug, format, args...) }
func (p pionLogger) Info(msg string)                   { p.logf(slog.LevelDebug, "%s", msg) }
func (p pionLogger) Infof(format string, args ...any)  { p.logf(slog.LevelDebug, format, args...) }
func (p pionLogger) Warn(msg string)                   { p.logf(slog.LevelDebug, "%s", msg) }
func (p pionLogger) Warnf(format string, args ...any)  { p.logf(slog.LevelDebug, format, args...) }
func (p pionLogger) Error(msg string)                  { p.logf(slog.LevelInfo, "%s", msg) }
func (p pionLogger) Errorf(format string, args ...any) { p.logf(slog.LevelInfo, format, args...) }
