// Package logging builds the one structured logger each binary passes down explicitly, from the
// logging flags both binaries share, and routes the libraries that log through globals (klog for
// client-go, controller-runtime, the standard library's log package) into the same handler, so
// that every line a binary writes is one record of one format.
package logging

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/go-logr/logr"
	"k8s.io/klog/v2"
	crlog "sigs.k8s.io/controller-runtime/pkg/log"
)

// ErrorKey is the key of an error value in every record. logr's Error (and with it klog's ErrorS
// and controller-runtime's Error) writes its error under "err", GoBGP under "Error" or "Err"; the
// handler renames those keys.
const ErrorKey = "error"

// Formats of --log-format.
const (
	FormatJSON = "json"
	FormatText = "text"
)

// Options are the logging flags of both binaries.
type Options struct {
	// Level is the lowest level written.
	Level slog.Level
	// Format is FormatJSON or FormatText.
	Format string
}

// DefaultOptions are the flags' defaults: info level, JSON records.
func DefaultOptions() Options { return Options{Level: slog.LevelInfo, Format: FormatJSON} }

// AddFlags registers --log-level and --log-format on fs; they write into o, whose values at the
// time of the call are the defaults.
func (o *Options) AddFlags(fs *flag.FlagSet) {
	fs.Func("log-level", "log level: debug, info, warn or error (default "+strings.ToLower(o.Level.String())+")", func(v string) error {
		l, err := ParseLevel(v)
		if err != nil {
			return err
		}
		o.Level = l
		return nil
	})
	fs.Func("log-format", "log format: json (one JSON object a line) or text (key=value) (default "+o.Format+")", func(v string) error {
		if err := checkFormat(v); err != nil {
			return err
		}
		o.Format = v
		return nil
	})
}

// ParseLevel parses a level name: debug, info, warn or error, in any case.
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(s))); err != nil {
		return l, fmt.Errorf("log level %q: use debug, info, warn or error", s)
	}
	return l, nil
}

func checkFormat(f string) error {
	if f != FormatJSON && f != FormatText {
		return fmt.Errorf("log format %q: use %s or %s", f, FormatJSON, FormatText)
	}
	return nil
}

// New returns a logger that writes o.Format records at o.Level and above to w, each error value
// under ErrorKey.
func New(w io.Writer, o Options) (*slog.Logger, error) {
	if err := checkFormat(o.Format); err != nil {
		return nil, err
	}
	ho := &slog.HandlerOptions{Level: o.Level, ReplaceAttr: renameErr}
	if o.Format == FormatText {
		return slog.New(slog.NewTextHandler(w, ho)), nil
	}
	return slog.New(slog.NewJSONHandler(w, ho)), nil
}

// renameErr writes the libraries' error keys under ErrorKey.
func renameErr(_ []string, a slog.Attr) slog.Attr {
	switch a.Key {
	case "err", "Err", "Error":
		a.Key = ErrorKey
	}
	return a
}

// Route makes log the destination of the loggers libraries keep in globals: klog (client-go's
// reflectors, leader election, event broadcaster), controller-runtime's root logger, and slog's
// default logger (and through it the standard library's log package). Each binary calls it once,
// in main, before it starts anything that logs.
func Route(log *slog.Logger) {
	klog.SetSlogLogger(log)
	crlog.SetLogger(logr.FromSlogHandler(log.Handler()))
	slog.SetDefault(log)
}
