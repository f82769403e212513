package bfd

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

const (
	ms    = time.Millisecond
	local = uint32(0x1111)
	peer  = uint32(0x2222)
)

func noJitter(d time.Duration) time.Duration { return d }

// step is one input to a session: a packet received, or the timers at a time, with what the
// session must answer.
type step struct {
	at   time.Duration // since t0
	rx   *Packet       // nil: Timeout
	want Output
	// wantDeadline, when set, is the session's Deadline after the step, since t0.
	wantDeadline time.Duration
}

// fromPeer is a packet the peer sends with intervals of 300 ms x 3.
func fromPeer(st State, your uint32, mod ...func(*Packet)) *Packet {
	p := &Packet{State: st, DetectMult: 3, MyDiscriminator: peer, YourDiscriminator: your, DesiredMinTx: 300 * ms, RequiredMinRx: 300 * ms}
	for _, m := range mod {
		m(p)
	}
	return p
}

// sent is a packet the session sends, with the 300 ms x 3 profile.
func sent(st State, your uint32, tx time.Duration, mod ...func(*Packet)) Packet {
	p := Packet{State: st, DetectMult: 3, MyDiscriminator: local, YourDiscriminator: your, DesiredMinTx: tx, RequiredMinRx: 300 * ms}
	for _, m := range mod {
		m(&p)
	}
	return p
}

func poll(p *Packet)  { p.Poll = true }
func final(p *Packet) { p.Final = true }
func diag(d Diag) func(*Packet) {
	return func(p *Packet) { p.Diag = d }
}

var profile = Config{DesiredMinTx: 300 * ms, RequiredMinRx: 300 * ms, DetectMult: 3}

// handshake is the three-way handshake from the active side, ending Up at 20 ms with a Poll
// Sequence for the faster interval running.
var handshake = []step{
	{at: 0, want: Output{Send: []Packet{sent(StateDown, 0, time.Second)}}, wantDeadline: time.Second},
	{at: 10 * ms, rx: fromPeer(StateDown, 0), want: Output{Changed: true, State: StateInit,
		Send: []Packet{sent(StateInit, peer, time.Second)}}, wantDeadline: 910 * ms},
	{at: 20 * ms, rx: fromPeer(StateUp, local), want: Output{Changed: true, State: StateUp,
		Send: []Packet{sent(StateUp, peer, 300*ms, poll)}}, wantDeadline: 320 * ms},
}

func TestSession(t *testing.T) {
	tests := []struct {
		name  string
		cfg   Config
		steps []step
	}{
		{name: "three-way handshake, active", cfg: profile, steps: handshake},
		{
			name: "handshake from Init: the peer answers our Down with Init",
			cfg:  profile,
			steps: []step{
				{at: 0, want: Output{Send: []Packet{sent(StateDown, 0, time.Second)}}},
				{at: 5 * ms, rx: fromPeer(StateInit, local), want: Output{Changed: true, State: StateUp,
					Send: []Packet{sent(StateUp, peer, 300*ms, poll)}}, wantDeadline: 305 * ms},
			},
		},
		{
			name: "poll sequence ends with Final; packets every 300 ms",
			cfg:  profile,
			steps: append(append([]step{}, handshake...),
				step{at: 100 * ms, rx: fromPeer(StateUp, local, final), want: Output{}, wantDeadline: 320 * ms},
				step{at: 320 * ms, want: Output{Send: []Packet{sent(StateUp, peer, 300*ms)}}, wantDeadline: 620 * ms},
			),
		},
		{
			name: "peer's Poll is answered at once with Final",
			cfg:  profile,
			steps: append(append([]step{}, handshake...),
				step{at: 100 * ms, rx: fromPeer(StateUp, local, final), want: Output{}},
				step{at: 200 * ms, rx: fromPeer(StateUp, local, poll), want: Output{Send: []Packet{sent(StateUp, peer, 300*ms, final)}},
					wantDeadline: 320 * ms},
			),
		},
		{
			name: "detection time expires: Down, a failure, told to the peer",
			cfg:  profile,
			steps: append(append([]step{}, handshake...),
				step{at: 320 * ms, want: Output{Send: []Packet{sent(StateUp, peer, 300*ms, poll)}}, wantDeadline: 620 * ms},
				step{at: 620 * ms, want: Output{Send: []Packet{sent(StateUp, peer, 300*ms, poll)}}, wantDeadline: 920 * ms},
				// The last packet came at 20 ms: 3 x 300 ms later the session is down.
				step{at: 920 * ms, want: Output{Changed: true, State: StateDown, Failure: true,
					Send: []Packet{sent(StateDown, 0, time.Second, diag(DiagControlDetectExpired))}}, wantDeadline: 1920 * ms},
			),
		},
		{
			name: "peer signals Down: a failure",
			cfg:  profile,
			steps: append(append([]step{}, handshake...),
				step{at: 100 * ms, rx: fromPeer(StateDown, local, diag(DiagControlDetectExpired)), want: Output{Changed: true, State: StateDown, Failure: true,
					Send: []Packet{sent(StateDown, peer, time.Second, diag(DiagNeighborSignaledDown))}}},
			),
		},
		{
			name: "peer goes AdminDown: Down, but no failure",
			cfg:  profile,
			steps: append(append([]step{}, handshake...),
				step{at: 100 * ms, rx: fromPeer(StateAdminDown, local, diag(DiagAdministrativelyDown)), want: Output{Changed: true, State: StateDown,
					Send: []Packet{sent(StateDown, peer, time.Second, diag(DiagNeighborSignaledDown))}}},
			),
		},
		{
			// FRR replaces its session (new discriminator) when it learns the local address.
			name: "the peer's session is replaced during the handshake",
			cfg:  profile,
			steps: []step{
				{at: 0, want: Output{Send: []Packet{sent(StateDown, 0, time.Second)}}},
				{at: 10 * ms, rx: fromPeer(StateDown, 0), want: Output{Changed: true, State: StateInit, Send: []Packet{sent(StateInit, peer, time.Second)}}},
				{at: 20 * ms, rx: fromPeer(StateDown, 0, func(p *Packet) { p.MyDiscriminator = 0x3333 }), want: Output{Send: []Packet{sent(StateInit, 0x3333, time.Second)}}},
				{at: 30 * ms, rx: fromPeer(StateUp, local, func(p *Packet) { p.MyDiscriminator = 0x3333 }), want: Output{Changed: true, State: StateUp,
					Send: []Packet{sent(StateUp, 0x3333, 300*ms, poll)}}},
			},
		},
		{
			name: "passive: silent until the peer speaks",
			cfg:  Config{DesiredMinTx: 300 * ms, RequiredMinRx: 300 * ms, DetectMult: 3, Passive: true},
			steps: []step{
				{at: 0, want: Output{}, wantDeadline: 0},
				{at: 5 * time.Second, want: Output{}, wantDeadline: 0},
				{at: 6 * time.Second, rx: fromPeer(StateDown, 0), want: Output{Changed: true, State: StateInit,
					Send: []Packet{sent(StateInit, peer, time.Second)}}, wantDeadline: 6*time.Second + 900*ms},
			},
		},
		{
			name: "packets not for the session are ignored",
			cfg:  profile,
			steps: append(append([]step{}, handshake...),
				step{at: 30 * ms, rx: fromPeer(StateUp, 0), want: Output{}},        // Up without Your Discriminator
				step{at: 40 * ms, rx: fromPeer(StateDown, 0x9999), want: Output{}}, // someone else's
			),
		},
		{
			name: "the peer's slower receive interval and detect multiplier are honoured",
			cfg:  Config{DesiredMinTx: 50 * ms, RequiredMinRx: 50 * ms, DetectMult: 3},
			steps: []step{
				{at: 0, want: Output{Send: []Packet{{State: StateDown, DetectMult: 3, MyDiscriminator: local, DesiredMinTx: time.Second, RequiredMinRx: 50 * ms}}}},
				{at: 10 * ms, rx: fromPeer(StateInit, local, func(p *Packet) { p.RequiredMinRx = 200 * ms; p.DetectMult = 5 }), want: Output{Changed: true, State: StateUp,
					Send: []Packet{{State: StateUp, Poll: true, DetectMult: 3, MyDiscriminator: local, YourDiscriminator: peer, DesiredMinTx: 50 * ms, RequiredMinRx: 50 * ms}}},
					// Sends every max(50, 200) ms; detects after 5 x max(50, 300) ms.
					wantDeadline: 210 * ms},
				{at: 210 * ms, want: Output{Send: []Packet{{State: StateUp, Poll: true, DetectMult: 3, MyDiscriminator: local, YourDiscriminator: peer, DesiredMinTx: 50 * ms, RequiredMinRx: 50 * ms}}},
					wantDeadline: 410 * ms},
				{at: 1509 * ms, want: Output{Send: []Packet{{State: StateUp, Poll: true, DetectMult: 3, MyDiscriminator: local, YourDiscriminator: peer, DesiredMinTx: 50 * ms, RequiredMinRx: 50 * ms}}},
					wantDeadline: 1510 * ms},
				{at: 1510 * ms, want: Output{Changed: true, State: StateDown, Failure: true,
					Send: []Packet{{Diag: DiagControlDetectExpired, State: StateDown, DetectMult: 3, MyDiscriminator: local, DesiredMinTx: time.Second, RequiredMinRx: 50 * ms}}}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewSession(tt.cfg, local, t0, noJitter)
			if err != nil {
				t.Fatal(err)
			}
			for i, st := range tt.steps {
				now := t0.Add(st.at)
				var got Output
				if st.rx != nil {
					got = s.Receive(*st.rx, now)
				} else {
					got = s.Timeout(now)
				}
				if diff := cmp.Diff(st.want, got); diff != "" {
					t.Fatalf("step %d (at %v): output (-want +got):\n%s", i, st.at, diff)
				}
				if st.wantDeadline != 0 || (st.rx == nil && st.want.Send == nil && !st.want.Changed) {
					var want time.Time
					if st.wantDeadline != 0 {
						want = t0.Add(st.wantDeadline)
					}
					if got := s.Deadline(); !got.Equal(want) {
						t.Fatalf("step %d (at %v): deadline %v, want %v", i, st.at, got.Sub(t0), st.wantDeadline)
					}
				}
			}
		})
	}
}

func TestAdminDown(t *testing.T) {
	s, err := NewSession(profile, local, t0, noJitter)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range handshake {
		if st.rx != nil {
			s.Receive(*st.rx, t0.Add(st.at))
		} else {
			s.Timeout(t0.Add(st.at))
		}
	}
	got := s.AdminDown(t0.Add(time.Second))
	want := Output{Changed: true, State: StateAdminDown, Send: []Packet{sent(StateAdminDown, peer, time.Second, diag(DiagAdministrativelyDown))}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("AdminDown (-want +got):\n%s", diff)
	}
	if d := s.Deadline(); !d.IsZero() {
		t.Errorf("deadline after AdminDown = %v, want none", d)
	}
	if out := s.Receive(*fromPeer(StateUp, local), t0.Add(2*time.Second)); out.Changed || len(out.Send) > 0 {
		t.Errorf("AdminDown session answered a packet: %+v", out)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"300 ms x 3", profile, true},
		{"limits", Config{DesiredMinTx: 10 * ms, RequiredMinRx: time.Minute, DetectMult: 255}, true},
		{"tx too short", Config{DesiredMinTx: 9 * ms, RequiredMinRx: 300 * ms, DetectMult: 3}, false},
		{"rx too long", Config{DesiredMinTx: 300 * ms, RequiredMinRx: time.Minute + ms, DetectMult: 3}, false},
		{"sub-millisecond", Config{DesiredMinTx: 300*ms + 1, RequiredMinRx: 300 * ms, DetectMult: 3}, false},
		{"multiplier 1", Config{DesiredMinTx: 300 * ms, RequiredMinRx: 300 * ms, DetectMult: 1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cfg.Validate(); (err == nil) != tt.ok {
				t.Errorf("Validate() = %v, want ok %v", err, tt.ok)
			}
		})
	}
}

func TestJitter(t *testing.T) {
	for range 1000 {
		if d := Jitter(300 * ms); d < 225*ms || d > 300*ms {
			t.Fatalf("Jitter(300ms) = %v, want between 225 and 300 ms", d)
		}
	}
}
