package router

import (
	"context"
	"errors"

	"github.com/ThreeDotsLabs/watermill"
	"go.uber.org/zap"

	"github.com/synchub/synchub/router/dispatch"
)

// zapAdapter lets Watermill log through the hub's zap logger.
type zapAdapter struct{ l *zap.Logger }

// NewLogger adapts l for Watermill components.
func NewLogger(l *zap.Logger) watermill.LoggerAdapter { return zapAdapter{l: l} }

func fields(f watermill.LogFields) []zap.Field {
	out := make([]zap.Field, 0, len(f))
	for k, v := range f {
		out = append(out, zap.Any(k, v))
	}
	return out
}

// Error logs at error level, except the failures that are expected and
// retried by design: a record held while its endpoint is down is sent again
// every NackResendSleep, and logging each resend as an error would bury an
// outage's one useful line (the circuit opening) under thousands.
func (a zapAdapter) Error(msg string, err error, f watermill.LogFields) {
	if errors.Is(err, dispatch.ErrHeld) || errors.Is(err, context.Canceled) {
		a.l.Debug(msg, append(fields(f), zap.Error(err))...)
		return
	}
	a.l.Error(msg, append(fields(f), zap.Error(err))...)
}
func (a zapAdapter) Info(msg string, f watermill.LogFields)  { a.l.Info(msg, fields(f)...) }
func (a zapAdapter) Debug(msg string, f watermill.LogFields) { a.l.Debug(msg, fields(f)...) }

// Watermill traces every message; that belongs below debug.
func (a zapAdapter) Trace(string, watermill.LogFields) {}

func (a zapAdapter) With(f watermill.LogFields) watermill.LoggerAdapter {
	return zapAdapter{l: a.l.With(fields(f)...)}
}
