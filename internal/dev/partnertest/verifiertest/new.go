package verifiertest

import (
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
)

// RefusesEndpoints holds a one-endpoint partner's New to refusing what it
// cannot call: each of bad as its one endpoint ("" a nil one), no endpoint,
// and two (good twice). Each refusal must return no verifier and an error
// starting errPrefix, so that a misconfigured function says whose endpoint
// is wrong at cold start.
func RefusesEndpoints[V any](t testing.TB, newV func(partnerhttp.Options) (V, error), errPrefix, good string, bad ...string) {
	t.Helper()
	refuses := func(what string, eps []*url.URL) {
		t.Helper()
		v, err := newV(partnerhttp.Options{Endpoints: eps})
		switch {
		case err == nil:
			t.Errorf("New with %s = %v; want an error", what, v)
		case !reflect.ValueOf(&v).Elem().IsZero():
			t.Errorf("New with %s returned a verifier with its error %q", what, err)
		case !strings.HasPrefix(err.Error(), errPrefix):
			t.Errorf("New with %s: error %q does not start %q", what, err, errPrefix)
		}
	}
	parse := func(s string) *url.URL {
		t.Helper()
		u, err := url.Parse(s)
		if err != nil {
			t.Fatalf("endpoint %q: %v", s, err)
		}
		return u
	}
	for _, ep := range bad {
		var u *url.URL
		if ep != "" {
			u = parse(ep)
		}
		refuses("endpoint "+strconv.Quote(ep), []*url.URL{u})
	}
	refuses("no endpoint", nil)
	g := parse(good)
	refuses("two endpoints", []*url.URL{g, g})
}
