// Package pionlog routes pion's leveled loggers to a *slog.Logger. pion's
// debug and trace output stays below slog's Debug, so it appears only when
// asked for.
package pionlog

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// Factory implements logging.LoggerFactory over a slog.Logger.
type Factory struct{ Logger *slog.Logger }

// NewLogger returns a logger tagged with pion's scope.
func (f Factory) NewLogger(scope string) logging.LeveledLogger {
	return logger{f.Logger.With("pion", scope)}
}

type logger struct{ l *slog.Logger }

const levelTrace = slog.LevelDebug - 4

func (l logger) log(level slog.Level, msg string) {
	if l.l.Enabled(context.Background(), level) {
		l.l.Log(context.Background(), level, msg)
	}
}

func (l logger) logf(level slog.Level, format string, args ...any) {
	if l.l.Enabled(context.Background(), level) {
		l.l.Log(context.Background(), level, fmt.Sprintf(format, args...))
	}
}

func (l logger) Trace(msg string)                  { l.log(levelTrace, msg) }
func (l logger) Tracef(format string, args ...any) { l.logf(levelTrace, format, args...) }
func (l logger) Debug(msg string)                  { l.log(slog.LevelDebug-2, msg) }
func (l logger) Debugf(format string, args ...any) { l.logf(slog.LevelDebug-2, format, args...) }
func (l logger) Info(msg string)                   { l.log(slog.LevelDebug, msg) }
func (l logger) Infof(format string, args ...any)  { l.logf(slog.LevelDebug, format, args...) }
func (l logger) Warn(msg string)                   { l.log(slog.LevelDebug, msg) }
func (l logger) Warnf(format string, args ...any)  { l.logf(slog.LevelDebug, format, args...) }
func (l logger) Error(msg string)                  { l.log(slog.LevelWarn, msg) }
func (l logger) Errorf(format string, args ...any) { l.logf(slog.LevelWarn, format, args...) }
