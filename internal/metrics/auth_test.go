package metrics

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// fakeAPI answers TokenReviews and SubjectAccessReviews from two tables and counts the calls.
type fakeAPI struct {
	users   map[string]string // token -> user name
	allowed map[string]bool   // user name -> may get /metrics
	fail    atomic.Bool
	calls   atomic.Int32
}

func (f *fakeAPI) reviewer(now *time.Time) *Reviewer {
	cs := fake.NewClientset()
	cs.PrependReactor("create", "tokenreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		f.calls.Add(1)
		if f.fail.Load() {
			return true, nil, errors.New("connection refused")
		}
		tr := a.(k8stesting.CreateAction).GetObject().(*authnv1.TokenReview)
		user, ok := f.users[tr.Spec.Token]
		tr.Status = authnv1.TokenReviewStatus{Authenticated: ok, User: authnv1.UserInfo{Username: user, Groups: []string{"g"}}}
		return true, tr, nil
	})
	cs.PrependReactor("create", "subjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		f.calls.Add(1)
		sar := a.(k8stesting.CreateAction).GetObject().(*authzv1.SubjectAccessReview)
		na := sar.Spec.NonResourceAttributes
		sar.Status.Allowed = f.allowed[sar.Spec.User] && na != nil && na.Path == "/metrics" && na.Verb == "get"
		return true, sar, nil
	})
	return &Reviewer{Tokens: cs.AuthenticationV1().TokenReviews(), Access: cs.AuthorizationV1().SubjectAccessReviews(),
		Log: logr.Discard(), Now: func() time.Time { return *now }}
}

func TestReviewer(t *testing.T) {
	api := &fakeAPI{users: map[string]string{"prom": "system:serviceaccount:monitoring:prometheus", "nosy": "nosy"},
		allowed: map[string]bool{"system:serviceaccount:monitoring:prometheus": true}}
	now := time.Unix(1000, 0)
	rv := api.reviewer(&now)
	served := 0
	h := rv.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { served++ }))
	get := func(auth, method string) int {
		r := httptest.NewRequest(method, "https://node:9120/metrics", nil)
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	for _, tc := range []struct {
		name, auth, method string
		want               int
		wantCalls          int32 // API calls this request makes
	}{
		{"no header", "", http.MethodGet, http.StatusUnauthorized, 0},
		{"not a bearer token", "Basic cHJvbTpwcm9t", http.MethodGet, http.StatusUnauthorized, 0},
		{"empty bearer token", "Bearer ", http.MethodGet, http.StatusUnauthorized, 0},
		{"unknown token", "Bearer stolen", http.MethodGet, http.StatusUnauthorized, 1},
		{"known token without the permission", "Bearer nosy", http.MethodGet, http.StatusForbidden, 2},
		{"allowed", "Bearer prom", http.MethodGet, http.StatusOK, 2},
		{"allowed, again: cached", "bearer prom", http.MethodGet, http.StatusOK, 0},
		{"denied, again: cached", "Bearer nosy", http.MethodGet, http.StatusForbidden, 0},
		{"another verb is another question", "Bearer prom", http.MethodPost, http.StatusForbidden, 2},
	} {
		before := api.calls.Load()
		if got := get(tc.auth, tc.method); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
		if got := api.calls.Load() - before; got != tc.wantCalls {
			t.Errorf("%s: %d API calls, want %d", tc.name, got, tc.wantCalls)
		}
	}
	if served != 2 {
		t.Errorf("the metrics were served %d times, want 2 (the allowed requests)", served)
	}

	// A denial expires sooner than a grant; after the grant expires, the API server is asked again.
	now = now.Add(deniedTTL + time.Second)
	if before := api.calls.Load(); get("Bearer nosy", http.MethodGet) != http.StatusForbidden || api.calls.Load() == before {
		t.Error("an expired denial was not asked again")
	}
	if before := api.calls.Load(); get("Bearer prom", http.MethodGet) != http.StatusOK || api.calls.Load() != before {
		t.Error("a grant younger than its TTL was asked again")
	}
	now = now.Add(allowedTTL)
	api.fail.Store(true)
	if got := get("Bearer prom", http.MethodGet); got != http.StatusInternalServerError {
		t.Errorf("API server unreachable: %d, want 500", got)
	}
	api.fail.Store(false)
	if before := api.calls.Load(); get("Bearer prom", http.MethodGet) != http.StatusOK || api.calls.Load() == before {
		t.Error("a failed review was kept instead of asked again")
	}
}

func TestReviewerCacheIsBounded(t *testing.T) {
	api := &fakeAPI{users: map[string]string{}}
	now := time.Unix(1000, 0)
	rv := api.reviewer(&now)
	h := rv.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	for i := range 3 * maxDecisions {
		r := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		r.Header.Set("Authorization", "Bearer t"+string(rune('a'+i%26))+time.Duration(i).String())
		h.ServeHTTP(httptest.NewRecorder(), r)
		if n := len(rv.decisions); n > maxDecisions {
			t.Fatalf("%d decisions kept after %d tokens, want at most %d", n, i+1, maxDecisions)
		}
	}
}
