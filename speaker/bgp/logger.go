package bgp

import (
	"context"
	"log/slog"
)

// gobgpHandler routes GoBGP's log records to the speaker's logger at Debug level, whatever
// level GoBGP gave them, with "gobgp: " before the message: GoBGP's view is detail for debugging,
// and the speaker reports what an operator needs (sessions up and down and why) itself, from
// GoBGP's peer events. Nothing reads GoBGP's log text.
type gobgpHandler struct{ inner slog.Handler }

func newGoBGPLogger(l *slog.Logger) *slog.Logger {
	return slog.New(gobgpHandler{inner: l.Handler()})
}

func (h gobgpHandler) Enabled(ctx context.Context, _ slog.Level) bool {
	return h.inner.Enabled(ctx, slog.LevelDebug)
}

func (h gobgpHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, slog.LevelDebug, "gobgp: "+r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(a)
		return true
	})
	return h.inner.Handle(ctx, out)
}

func (h gobgpHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return gobgpHandler{inner: h.inner.WithAttrs(as)}
}

func (h gobgpHandler) WithGroup(name string) slog.Handler {
	return gobgpHandler{inner: h.inner.WithGroup(name)}
}
