package metrics

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"

	"github.com/herald-lb/herald/internal/kube/client"
)

// How long a decision about a token is reused, as kube-rbac-proxy and controller-runtime's
// filter do: a scraper comes every 15-60 s, and each new decision costs two API requests.
const (
	allowedTTL = time.Minute
	deniedTTL  = 10 * time.Second
	// maxDecisions bounds the cache whatever tokens clients send; past it, expired entries go,
	// and if none has expired the cache starts afresh.
	maxDecisions = 1024
	reviewWait   = 10 * time.Second
)

// Reviewer lets a request through when its bearer token is one the API server accepts
// (TokenReview) and its user may get the request's non-resource URL (SubjectAccessReview): 401
// without a valid token, 403 without the permission, 500 when the API server cannot say.
// Decisions are kept for a short time, keyed by a hash of the token, the verb and the path.
//
// It does what controller-runtime's metrics filter does with two API calls, without
// k8s.io/apiserver: that filter links the API server's authentication stack (CEL, gRPC,
// OpenTelemetry) into each binary, 20 MB of the controller's 55 MB and pages of its memory.
type Reviewer struct {
	Tokens TokenReviews
	Access AccessReviews
	Log    logr.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time

	mu        sync.Mutex
	decisions map[[sha256.Size]byte]decision
}

type decision struct {
	code  int // http.StatusOK, StatusUnauthorized or StatusForbidden
	until time.Time
}

// TokenReviews creates TokenReviews (client-go's typed TokenReviewInterface has this method).
type TokenReviews interface {
	Create(ctx context.Context, tr *authnv1.TokenReview, opts metav1.CreateOptions) (*authnv1.TokenReview, error)
}

// AccessReviews creates SubjectAccessReviews (as client-go's typed SubjectAccessReviewInterface).
type AccessReviews interface {
	Create(ctx context.Context, sar *authzv1.SubjectAccessReview, opts metav1.CreateOptions) (*authzv1.SubjectAccessReview, error)
}

// NewReviewer returns a Reviewer that asks the API server at cfg, through a client of the two
// review kinds only (client-go's typed clients would register every API group at start).
func NewReviewer(cfg *rest.Config, hc *http.Client, log logr.Logger) (*Reviewer, error) {
	s := runtime.NewScheme()
	if err := authnv1.AddToScheme(s); err != nil {
		return nil, err
	}
	if err := authzv1.AddToScheme(s); err != nil {
		return nil, err
	}
	c, err := client.New(cfg, hc, s)
	if err != nil {
		return nil, fmt.Errorf("metrics server: review client: %w", err)
	}
	return &Reviewer{Tokens: creator[authnv1.TokenReview]{c}, Access: creator[authzv1.SubjectAccessReview]{c}, Log: log}, nil
}

// creator creates objects of type T through a client.
type creator[T any] struct{ c client.Writer }

func (r creator[T]) Create(ctx context.Context, obj *T, _ metav1.CreateOptions) (*T, error) {
	o, ok := any(obj).(client.Object)
	if !ok {
		return nil, fmt.Errorf("%T is not an object", obj)
	}
	return obj, r.c.Create(ctx, o)
}

// Wrap returns next behind the review.
func (rv *Reviewer) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code, err := rv.review(r)
		switch {
		case err != nil:
			rv.Log.Error(err, "checking a metrics client", "remote", r.RemoteAddr)
			http.Error(w, "Internal Server Error: the API server could not check the token", http.StatusInternalServerError)
		case code == http.StatusOK:
			next.ServeHTTP(w, r)
		case code == http.StatusUnauthorized:
			http.Error(w, "Unauthorized", code)
		default:
			http.Error(w, "Forbidden", code)
		}
	})
}

func (rv *Reviewer) now() time.Time {
	if rv.Now != nil {
		return rv.Now()
	}
	return time.Now()
}

// review says whether r may be served (200, 401 or 403), from the cache or the API server.
func (rv *Reviewer) review(r *http.Request) (int, error) {
	token, ok := bearer(r)
	if !ok {
		return http.StatusUnauthorized, nil
	}
	verb, path := strings.ToLower(r.Method), r.URL.Path
	key := sha256.Sum256([]byte(verb + "\x00" + path + "\x00" + token))
	now := rv.now()
	rv.mu.Lock()
	d, hit := rv.decisions[key]
	rv.mu.Unlock()
	if hit && now.Before(d.until) {
		return d.code, nil
	}
	ctx, cancel := context.WithTimeout(r.Context(), reviewWait)
	defer cancel()
	code, err := rv.ask(ctx, token, verb, path)
	if err != nil {
		return 0, err
	}
	ttl := deniedTTL
	if code == http.StatusOK {
		ttl = allowedTTL
	}
	rv.remember(key, decision{code: code, until: now.Add(ttl)}, now)
	return code, nil
}

func (rv *Reviewer) ask(ctx context.Context, token, verb, path string) (int, error) {
	tr, err := rv.Tokens.Create(ctx, &authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: token}}, metav1.CreateOptions{})
	if err != nil {
		return 0, fmt.Errorf("TokenReview: %w", err)
	}
	if !tr.Status.Authenticated {
		return http.StatusUnauthorized, nil
	}
	u := tr.Status.User
	extra := make(map[string]authzv1.ExtraValue, len(u.Extra))
	for k, v := range u.Extra {
		extra[k] = authzv1.ExtraValue(v)
	}
	sar, err := rv.Access.Create(ctx, &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{
		User: u.Username, UID: u.UID, Groups: u.Groups, Extra: extra,
		NonResourceAttributes: &authzv1.NonResourceAttributes{Path: path, Verb: verb},
	}}, metav1.CreateOptions{})
	if err != nil {
		return 0, fmt.Errorf("SubjectAccessReview for %q: %w", u.Username, err)
	}
	if !sar.Status.Allowed {
		rv.Log.V(1).Info("metrics client not allowed", "user", u.Username, "verb", verb, "path", path, "reason", sar.Status.Reason)
		return http.StatusForbidden, nil
	}
	return http.StatusOK, nil
}

func (rv *Reviewer) remember(key [sha256.Size]byte, d decision, now time.Time) {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	if rv.decisions == nil {
		rv.decisions = map[[sha256.Size]byte]decision{}
	}
	if len(rv.decisions) >= maxDecisions {
		for k, old := range rv.decisions {
			if !now.Before(old.until) {
				delete(rv.decisions, k)
			}
		}
		if len(rv.decisions) >= maxDecisions {
			clear(rv.decisions)
		}
	}
	rv.decisions[key] = d
}

// bearer returns the request's bearer token.
func bearer(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}
