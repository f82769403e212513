package scale

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestSteps reads a failover from speaker log lines: memberlist's suspicion and declaration, the
// member gone, the first re-election after it, the new owner's takeover (not another node's), and
// other members declared gone meanwhile.
func TestSteps(t *testing.T) {
	kill := time.Date(2026, 12, 3, 15, 0, 0, 0, time.UTC)
	at := func(ms int) string { return kill.Add(time.Duration(ms) * time.Millisecond).Format(time.RFC3339Nano) }
	lines := map[string][]string{
		"n1": {
			`{"time":"` + at(-50) + `","msg":"re-elected after a membership change"}`,
			`{"time":"` + at(120) + `","msg":"Suspect n3 has failed, no acks received"}`,
			`{"time":"` + at(400) + `","msg":"Marking n3 as failed, suspect timeout reached (1 peer confirmations)"}`,
			`{"time":"` + at(401) + `","msg":"member gone","member":"n3"}`,
			`{"time":"` + at(405) + `","msg":"taking over","ip":"2001:db8::1"}`,
			`{"time":"` + at(410) + `","msg":"re-elected after a membership change","takeover":3000000}`,
			`{"time":"` + at(500) + `","msg":"re-elected after a membership change"}`,
		},
		"n2": {
			`not json`,
			`{"time":"` + at(420) + `","msg":"member gone","member":"n3"}`,
			`{"time":"` + at(421) + `","msg":"taking over","ip":"2001:db8::1"}`,
			`{"time":"` + at(430) + `","msg":"member gone","member":"n4"}`,
		},
	}
	var events []logEvent
	for node, ls := range lines {
		for _, l := range ls {
			if e, ok := parseLogLine([]byte(l), node); ok {
				events = append(events, e)
			}
		}
	}
	st := steps("n3", events, map[string]string{"2001:db8::1": "n1"})
	ms := func(m map[string]time.Time) map[string]time.Duration {
		out := map[string]time.Duration{}
		for k, v := range m {
			out[k] = v.Sub(kill)
		}
		return out
	}
	got := map[string]map[string]time.Duration{
		"suspected": ms(st.suspected), "marked": ms(st.marked), "gone": ms(st.gone), "takeover": ms(st.takeover),
		"reelected": {},
	}
	for n, e := range st.reelected {
		got["reelected"][n] = e.at.Sub(kill)
	}
	want := map[string]map[string]time.Duration{
		"suspected": {"n1": 120 * time.Millisecond},
		"marked":    {"n1": 400 * time.Millisecond},
		"gone":      {"n1": 401 * time.Millisecond, "n2": 420 * time.Millisecond},
		"takeover":  {"2001:db8::1": 405 * time.Millisecond},
		"reelected": {"n1": 410 * time.Millisecond},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("steps (-want +got):\n%s", diff)
	}
	if st.others != 1 {
		t.Errorf("other members gone = %d, want 1 (n4)", st.others)
	}
	if c := st.confirmations["n1"]; c != "1 peer confirmations" {
		t.Errorf("confirmations of n1 = %q", c)
	}
	if d := st.reelected["n1"].dur("takeover"); d != 3*time.Millisecond {
		t.Errorf("takeover duration = %s, want 3ms", d)
	}
	if a, ok := parseAnswer("1764774000000000000 2001:db8::1 aa:bb:cc:dd:ee:ff s"); !ok || !a.solicited || a.ip != "2001:db8::1" {
		t.Errorf("parseAnswer with s = %+v, %v", a, ok)
	}
	if a, ok := parseAnswer("1764774000000000000 2001:db8::1 aa:bb:cc:dd:ee:ff"); !ok || a.solicited {
		t.Errorf("parseAnswer of an old line = %+v, %v", a, ok)
	}
}
