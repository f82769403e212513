package bgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
)

// sessionLog adapts GoBGP's logger of one session's server to slog and remembers the last
// error GoBGP reported for the session, which PeerStatus shows.
type sessionLog struct {
	log      *slog.Logger
	password bool

	mu      sync.Mutex
	lastErr string
}

var _ gobgplog.Logger = (*sessionLog)(nil)

func newSessionLog(l *slog.Logger, p Peer) *sessionLog {
	return &sessionLog{log: l.With("peer", p.Name, "address", p.Address.String()), password: p.Password != ""}
}

func (s *sessionLog) lastError() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastErr
}

func (s *sessionLog) setLastError(e string) {
	s.mu.Lock()
	s.lastErr = e
	s.mu.Unlock()
}

func (s *sessionLog) Panic(msg string, f gobgplog.Fields) {
	s.emit(slog.LevelError, msg, f)
	panic(msg)
}

// Fatal is logged as an error: GoBGP uses it for failures of its gRPC listener, which the
// speaker never starts, and the speaker's process is not GoBGP's to end.
func (s *sessionLog) Fatal(msg string, f gobgplog.Fields) { s.emit(slog.LevelError, msg, f) }
func (s *sessionLog) Error(msg string, f gobgplog.Fields) { s.emit(slog.LevelError, msg, f) }
func (s *sessionLog) Warn(msg string, f gobgplog.Fields)  { s.emit(slog.LevelWarn, msg, f) }
func (s *sessionLog) Info(msg string, f gobgplog.Fields)  { s.emit(slog.LevelInfo, msg, f) }
func (s *sessionLog) Debug(msg string, f gobgplog.Fields) { s.emit(slog.LevelDebug, msg, f) }

// SetLevel is ignored: the slog handler filters.
func (s *sessionLog) SetLevel(gobgplog.LogLevel) {}

// GetLevel always reports debug, because GoBGP logs connection failures only at that level and
// the speaker needs them for PeerStatus.LastError.
func (s *sessionLog) GetLevel() gobgplog.LogLevel { return gobgplog.DebugLevel }

func (s *sessionLog) emit(level slog.Level, msg string, f gobgplog.Fields) {
	s.observe(msg, f)
	ctx := context.Background()
	if !s.log.Enabled(ctx, level) {
		return
	}
	attrs := make([]slog.Attr, 0, len(f))
	for _, k := range slices.Sorted(maps.Keys(f)) {
		if k == "Topic" || k == "Key" {
			continue
		}
		attrs = append(attrs, slog.Any(strings.ToLower(k), fmt.Sprint(f[k])))
	}
	s.log.LogAttrs(ctx, level, "gobgp: "+msg, attrs...)
}

// observe keeps the last error of the session from GoBGP's messages.
func (s *sessionLog) observe(msg string, f gobgplog.Fields) {
	errField := f["Error"]
	if errField == nil {
		errField = f["Err"]
	}
	switch {
	case msg == "Peer Up":
		s.setLastError("")
	case msg == "failed to connect":
		if err, ok := errField.(error); ok {
			s.setLastError(describeConnectError(err, s.password))
		}
	case msg == "Peer Down":
		s.setLastError(fmt.Sprintf("session went down: %v", f["Reason"]))
	case msg == "state changed":
		// A session that fails before Established (e.g. the peer rejects the OPEN) is only
		// visible here, with GoBGP's reason.
		if f["reason"] == nil {
			return
		}
		o, n := fmt.Sprint(f["old"]), fmt.Sprint(f["new"])
		if (o == "BGP_FSM_OPENSENT" || o == "BGP_FSM_OPENCONFIRM") && n == "BGP_FSM_IDLE" {
			s.setLastError(fmt.Sprintf("session failed in %s: %v", stateName(o), f["reason"]))
		}
	case errField != nil:
		s.setLastError(fmt.Sprintf("%s: %v", msg, errField))
	}
}

func stateName(fsm string) string {
	for st := StateIdle; st <= StateEstablished; st++ {
		if strings.EqualFold("BGP_FSM_"+st.String(), fsm) {
			return st.String()
		}
	}
	return fsm
}

// describeConnectError turns a failed TCP connect into a sentence an operator can act on. A
// peer that expects another TCP MD5 password (or none) silently drops our SYNs, so a timeout is
// the only trace of a wrong password.
func describeConnectError(err error, password bool) string {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded):
		if password {
			return fmt.Sprintf("no TCP connection: %v (peer unreachable, not accepting BGP, or TCP MD5 password mismatch)", err)
		}
		return fmt.Sprintf("no TCP connection: %v (peer unreachable, or it drops our SYNs: it may expect a TCP MD5 password)", err)
	case strings.Contains(err.Error(), "connection refused"):
		return fmt.Sprintf("no TCP connection: %v (nothing listens on the peer's BGP port)", err)
	default:
		return fmt.Sprintf("no TCP connection: %v", err)
	}
}

// swapLogger is the logger a GoBGP server is created with. GoBGP cannot change a server's logger,
// and servers are reused across sessions (see Speaker.idle), so it forwards to the current
// session's log.
type swapLogger struct{ cur atomic.Pointer[sessionLog] }

var _ gobgplog.Logger = (*swapLogger)(nil)

func (s *swapLogger) Panic(msg string, f gobgplog.Fields) { s.cur.Load().Panic(msg, f) }
func (s *swapLogger) Fatal(msg string, f gobgplog.Fields) { s.cur.Load().Fatal(msg, f) }
func (s *swapLogger) Error(msg string, f gobgplog.Fields) { s.cur.Load().Error(msg, f) }
func (s *swapLogger) Warn(msg string, f gobgplog.Fields)  { s.cur.Load().Warn(msg, f) }
func (s *swapLogger) Info(msg string, f gobgplog.Fields)  { s.cur.Load().Info(msg, f) }
func (s *swapLogger) Debug(msg string, f gobgplog.Fields) { s.cur.Load().Debug(msg, f) }
func (s *swapLogger) SetLevel(gobgplog.LogLevel)          {}
func (s *swapLogger) GetLevel() gobgplog.LogLevel         { return gobgplog.DebugLevel }
