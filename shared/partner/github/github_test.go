package githubpartner_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/githubdouble"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/verifiertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/metrics"
	githubpartner "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/github"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

const rule = "Github Personal Access Token"

// harness is the shared verifier harness bound to github.
var harness = verifiertest.Harness{Def: githubpartner.Definition, OpPrefix: "GET /"}

func githubFinding(tok string) finding.Finding {
	return finding.Finding{ID: "f-1", RuleID: rule, Token: finding.Secret(tok)}
}

// GitHub's expiry header form, and what details.expires_at must read.
var (
	expires     = time.Date(2031, 10, 7, 19, 7, 53, 0, time.UTC)
	expiresText = "2031-10-07T19:07:53Z"
)

func TestVerifyAgainstDouble(t *testing.T) {
	srv := partnertest.StartDouble(t, githubdouble.Start)
	one := metrics.Summary{Requests: 1}
	errored := metrics.Summary{Requests: 1, Errors: 1}
	network := metrics.Summary{Requests: 1, Errors: 1, NetworkErrors: 1}
	limited := metrics.Summary{Requests: 1, RateLimitHits: 1}
	hour := verifiertest.Want{Kind: verify.RateLimited, RetryMin: time.Hour - 10*time.Second, RetryMax: time.Hour + time.Second, Msg: "rate limited", Metrics: limited, Calls: 1}
	withStatus := func(w verifiertest.Want, status int) verifiertest.Want { w.HTTPStatus = status; return w }
	user := githubdouble.Token{Login: "octo-cat", UserID: 583231}
	classic := user
	classic.Scopes = []string{"repo", "read:org"}
	noScopes := user
	noScopes.Scopes = []string{}
	expiring := user
	expiring.Expires = expires
	login := finding.Details{githubpartner.DetailLogin: "octo-cat"}

	tests := []struct {
		name       string
		prefix     string // token prefix; "github_pat_" for a fine-grained token
		setup      func(tok string) finding.Finding
		retryAfter string
		timeout    time.Duration
		want       verifiertest.Want
	}{
		{name: "classic PAT live, with scopes", prefix: "ghp_", setup: add(srv, classic),
			want: verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Details: finding.Details{githubpartner.DetailLogin: "octo-cat", githubpartner.DetailScopes: []string{"repo", "read:org"}}, Metrics: one, Calls: 1}},
		{name: "classic PAT live, no scopes (empty X-OAuth-Scopes)", prefix: "ghp_", setup: add(srv, noScopes),
			want: verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Details: finding.Details{githubpartner.DetailLogin: "octo-cat", githubpartner.DetailScopes: []string{}}, Metrics: one, Calls: 1}},
		{name: "fine-grained PAT live, expiring", prefix: "github_pat_", setup: add(srv, expiring),
			want: verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Details: finding.Details{githubpartner.DetailLogin: "octo-cat", githubpartner.DetailExpiresAt: expiresText}, Metrics: one, Calls: 1}},
		{name: "OAuth token live", prefix: "gho_", setup: add(srv, classic),
			want: verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Details: finding.Details{githubpartner.DetailLogin: "octo-cat", githubpartner.DetailScopes: []string{"repo", "read:org"}}, Metrics: one, Calls: 1}},
		{name: "user-to-server token live", prefix: "ghu_", setup: add(srv, user),
			want: verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Details: login, Metrics: one, Calls: 1}},
		{name: "installation token live: /installation/repositories", prefix: "ghs_", setup: add(srv, expiring),
			want: verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Details: finding.Details{githubpartner.DetailExpiresAt: expiresText}, Metrics: one, Calls: 1}},
		{name: "unknown token: 401 Bad credentials", prefix: "ghp_", setup: func(tok string) finding.Finding { return githubFinding(tok) },
			want: verifiertest.Want{Reason: finding.ReasonPartnerRejected, Metrics: one, Calls: 1}},
		{name: "revoked fine-grained PAT", prefix: "github_pat_", setup: func(tok string) finding.Finding {
			srv.AddToken(tok, user)
			srv.RevokeToken(tok)
			return githubFinding(tok)
		}, want: verifiertest.Want{Reason: finding.ReasonPartnerRejected, Metrics: one, Calls: 1}},
		{name: "revoked installation token", prefix: "ghs_", setup: func(tok string) finding.Finding {
			srv.AddToken(tok, user)
			srv.RevokeToken(tok)
			return githubFinding(tok)
		}, want: verifiertest.Want{Reason: finding.ReasonPartnerRejected, Metrics: one, Calls: 1}},
		{name: "Enterprise Server's 401 wording", prefix: "ghp_", setup: func(tok string) finding.Finding {
			srv.SetEnterprise(true)
			return githubFinding(tok)
		}, want: verifiertest.Want{Reason: finding.ReasonPartnerRejected, Metrics: one, Calls: 1}},
		{name: "restricted fine-grained PAT: 403 Resource not accessible", prefix: "github_pat_", setup: addMode(srv, user, githubdouble.Restricted403),
			want: verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Metrics: one, Calls: 1}},
		{name: "restricted fine-grained PAT: 404 Resource not accessible", prefix: "github_pat_", setup: addMode(srv, user, githubdouble.Restricted404),
			want: verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Metrics: one, Calls: 1}},
		{name: "restricted installation token: 403 by integration", prefix: "ghs_", setup: addMode(srv, user, githubdouble.Restricted403),
			want: verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Metrics: one, Calls: 1}},
		{name: "classic PAT restricted: 403 Resource not accessible", prefix: "ghp_", setup: addMode(srv, classic, githubdouble.Restricted403),
			want: verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Metrics: one, Calls: 1}},
		{name: "lockout after bad attempts: a live token gets 403, never inactive", prefix: "ghp_", setup: func(tok string) finding.Finding {
			srv.AddToken(tok, user)
			srv.LockOut("octo-cat", true)
			return githubFinding(tok)
		}, want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 403, Msg: "lockout", Metrics: errored, Calls: 1}},
		{name: "lockout: a revoked token of that user gets 403 too", prefix: "ghp_", setup: func(tok string) finding.Finding {
			srv.AddToken(tok, user)
			srv.RevokeToken(tok)
			srv.LockOut("octo-cat", true)
			return githubFinding(tok)
		}, want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 403, Msg: "lockout", Metrics: errored, Calls: 1}},
		{name: "primary limit as 403, reset in epoch seconds", prefix: "ghp_", setup: addMode(srv, user, githubdouble.Primary403), want: withStatus(hour, 403)},
		{name: "primary limit as 429, reset in epoch seconds", prefix: "ghp_", setup: addMode(srv, user, githubdouble.Primary429), want: withStatus(hour, 429)},
		{name: "secondary limit 403 with retry-after", prefix: "ghp_", setup: addMode(srv, user, githubdouble.Secondary403RetryAfter),
			want: verifiertest.Want{Kind: verify.RateLimited, HTTPStatus: 403, RetryMin: 30 * time.Second, RetryMax: 30 * time.Second, Metrics: limited, Calls: 1}},
		{name: "secondary limit 429 with retry-after", prefix: "ghp_", setup: addMode(srv, user, githubdouble.Secondary429RetryAfter),
			want: verifiertest.Want{Kind: verify.RateLimited, HTTPStatus: 429, RetryMin: 30 * time.Second, RetryMax: 30 * time.Second, Metrics: limited, Calls: 1}},
		{name: "secondary limit 403 without retry-after: a minute", prefix: "ghp_", setup: addMode(srv, user, githubdouble.Secondary403),
			want: verifiertest.Want{Kind: verify.RateLimited, HTTPStatus: 403, RetryMin: time.Minute, RetryMax: time.Minute, Msg: "secondary rate limit", Metrics: limited, Calls: 1}},
		{name: "secondary limit 429 without retry-after: a minute", prefix: "ghp_", setup: addMode(srv, user, githubdouble.Secondary429),
			want: verifiertest.Want{Kind: verify.RateLimited, HTTPStatus: 429, RetryMin: time.Minute, RetryMax: time.Minute, Metrics: limited, Calls: 1}},
		{name: "malformed classic PAT: no call", prefix: "ghp_", setup: func(tok string) finding.Finding {
			return githubFinding(tok[:30])
		}, want: verifiertest.Want{Reason: finding.ReasonMalformedToken, Msg: "ghp_ + 36"}},
		{name: "unknown prefix: no call", prefix: "ghp_", setup: func(tok string) finding.Finding {
			return githubFinding("ghx_" + tok[4:])
		}, want: verifiertest.Want{Reason: finding.ReasonMalformedToken, Msg: "not a GitHub token"}},
		{name: "refresh token: unsupported, no call", prefix: "ghr_", setup: add(srv, user),
			want: verifiertest.Want{Reason: finding.ReasonUnsupportedTokenType, Msg: "refresh tokens"}},
		{name: "500", prefix: "ghp_", setup: fault(srv, partnertest.Fault500), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 500, Msg: "http 500", Metrics: errored, Calls: 1}},
		{name: "502 HTML", prefix: "ghp_", setup: fault(srv, partnertest.Fault502), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 502, Metrics: errored, Calls: 1}},
		{name: "503", prefix: "ghs_", setup: fault(srv, partnertest.Fault503), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 503, Metrics: errored, Calls: 1}},
		{name: "504 HTML", prefix: "ghp_", setup: fault(srv, partnertest.Fault504), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 504, Metrics: errored, Calls: 1}},
		{name: "429 Retry-After seconds", prefix: "ghp_", retryAfter: "7", setup: fault(srv, partnertest.Fault429),
			want: verifiertest.Want{Kind: verify.RateLimited, HTTPStatus: 429, RetryMin: 7 * time.Second, RetryMax: 7 * time.Second, Msg: "rate limited", Metrics: limited, Calls: 1}},
		{name: "429 x-ratelimit-reset only", prefix: "ghp_", retryAfter: "", setup: fault(srv, partnertest.Fault429),
			want: verifiertest.Want{Kind: verify.RateLimited, HTTPStatus: 429, RetryMin: 58 * time.Second, RetryMax: 61 * time.Second, Metrics: limited, Calls: 1}},
		{name: "reset", prefix: "ghp_", setup: fault(srv, partnertest.FaultReset), want: verifiertest.Want{Kind: verify.PartnerError, Network: true, Msg: "network error", Metrics: network, Calls: 1}},
		{name: "hang with a short timeout", prefix: "ghp_", timeout: 300 * time.Millisecond, setup: fault(srv, partnertest.FaultHang),
			want: verifiertest.Want{Kind: verify.PartnerError, Network: true, Msg: "timeout", Metrics: network, Calls: 1}},
		{name: "slow live answer within the timeout", prefix: "ghu_", timeout: 2 * time.Second, setup: func(tok string) finding.Finding {
			srv.AddToken(tok, user)
			srv.Controls.SetLatency(100*time.Millisecond, 0)
			return githubFinding(tok)
		}, want: verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Details: login, Metrics: one, Calls: 1}},
		{name: "garbled 200", prefix: "ghp_", setup: fault(srv, partnertest.FaultGarbled), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 200, Msg: "proves nothing", Metrics: errored, Calls: 1}},
		{name: "empty 200", prefix: "ghp_", setup: fault(srv, partnertest.FaultEmpty), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 200, Msg: "proves nothing", Metrics: errored, Calls: 1}},
		{name: "truncated 200", prefix: "ghp_", setup: fault(srv, partnertest.FaultTruncated), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 200, Msg: "read body", Metrics: errored, Calls: 1}},
		{name: "HTML 401 from a proxy", prefix: "ghp_", setup: fault(srv, partnertest.FaultHTML401), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 401, Msg: "HTML page", Metrics: errored, Calls: 1}},
		{name: "HTML 403 from a WAF", prefix: "ghp_", setup: fault(srv, partnertest.FaultHTML403), want: verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: 403, Msg: "HTML page", Metrics: errored, Calls: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv.Controls.Reset()
			srv.SetEnterprise(false)
			srv.LockOut("octo-cat", false)
			srv.Controls.SetRetryAfter(tc.retryAfter)
			tok := newToken(tc.prefix)
			got := harness.Run(harness.NewVerifier(t, tc.timeout, nil, srv.URL), "", tc.setup(tok))
			harness.Check(t, got, tc.want)
			if got.Verdict.Status() == finding.StatusInactive && got.Err != nil {
				t.Fatal("a fault came with an inactive verdict")
			}
			if calls := srv.Controls.Requests(); calls != tc.want.Calls {
				t.Errorf("double saw %d requests, want %d", calls, tc.want.Calls)
			}
		})
	}
}

func newToken(prefix string) string {
	if prefix == "github_pat_" {
		return githubdouble.NewFineGrainedToken()
	}
	return githubdouble.NewToken(prefix)
}

// add returns a row setup that registers the token as t.
func add(srv *githubdouble.Server, t githubdouble.Token) func(string) finding.Finding {
	return func(tok string) finding.Finding {
		srv.AddToken(tok, t)
		return githubFinding(tok)
	}
}

// addMode returns a row setup that registers the token answering in mode m.
func addMode(srv *githubdouble.Server, t githubdouble.Token, m githubdouble.Mode) func(string) finding.Finding {
	t.Mode = m
	return add(srv, t)
}

// fault returns a row setup that registers the token as live and scripts
// f, so that any verdict but a fault would be wrong.
func fault(srv *githubdouble.Server, f partnertest.Fault) func(string) finding.Finding {
	return func(tok string) finding.Finding {
		srv.AddToken(tok, githubdouble.Token{Login: "octo-cat", UserID: 5})
		srv.Controls.Push(f)
		return githubFinding(tok)
	}
}

// TestVerifyAnswersTheDoubleDoesNotGive covers answers a proxy, a partner
// change or a misconfiguration can give: the rejection needs GitHub's JSON
// error, a restriction its message, a user document its login and id.
func TestVerifyAnswersTheDoubleDoesNotGive(t *testing.T) {
	canary := partnertest.RedirectCanary(t)
	const js = "application/json; charset=utf-8"
	fault := func(status int, msg string) verifiertest.Want {
		return verifiertest.Want{Kind: verify.PartnerError, HTTPStatus: status, Msg: msg, Metrics: metrics.Summary{Requests: 1, Errors: 1}}
	}
	tests := []struct {
		name        string
		prefix      string
		status      int
		contentType string
		body        string
		header      map[string]string
		want        verifiertest.Want
	}{
		{"200 JSON without login", "ghp_", 200, js, `{"id":1}`, nil, fault(200, "proves nothing")},
		{"200 login not a string", "ghp_", 200, js, `{"login":7,"id":1}`, nil, fault(200, "proves nothing")},
		{"200 login with spaces", "ghp_", 200, js, `{"login":"a b","id":1}`, nil, fault(200, "proves nothing")},
		{"200 id zero", "ghp_", 200, js, `{"login":"octocat","id":0}`, nil, fault(200, "proves nothing")},
		{"200 id a string", "ghp_", 200, js, `{"login":"octocat","id":"1"}`, nil, fault(200, "proves nothing")},
		{"200 two documents", "ghp_", 200, js, `{"login":"a","id":1}{"login":"b","id":2}`, nil, fault(200, "proves nothing")},
		{"200 null", "ghp_", 200, js, `null`, nil, fault(200, "proves nothing")},
		{"200 installation list without total_count", "ghs_", 200, js, `{"repositories":[]}`, nil, fault(200, "proves nothing")},
		{"200 installation list without repositories", "ghs_", 200, js, `{"total_count":0}`, nil, fault(200, "proves nothing")},
		{"200 user document for an installation token", "ghs_", 200, js, `{"login":"octocat","id":1}`, nil, fault(200, "proves nothing")},
		{"200 HTML captive portal", "ghp_", 200, "text/html", `<html><body>Sign in to Wi-Fi</body></html>`, nil, fault(200, "HTML page")},
		{"200 too long", "ghp_", 200, js, `{"login":"octocat","id":1,"pad":"` + strings.Repeat("x", 70*1024) + `"}`, nil, fault(200, "read body")},
		{"401 HTML without a content type", "ghp_", 401, "", `<!DOCTYPE html><title>401</title>`, nil, fault(401, "HTML page")},
		{"401 empty", "ghp_", 401, "", ``, nil, fault(401, "JSON error")},
		{"401 plain text", "ghp_", 401, "text/plain", `Bad credentials`, nil, fault(401, "JSON error")},
		{"401 JSON without message", "ghp_", 401, js, `{"error":"bad credentials"}`, nil, fault(401, "JSON error")},
		{"401 JSON message not a string", "ghp_", 401, js, `{"message":401}`, nil, fault(401, "JSON error")},
		{"401 JSON array", "ghp_", 401, js, `[{"message":"Bad credentials"}]`, nil, fault(401, "JSON error")},
		{"403 lockout JSON", "ghp_", 403, js, `{"message":"Maximum number of login attempts exceeded. Please try again later.","documentation_url":"https://docs.github.com/rest"}`, nil, fault(403, "lockout")},
		{"403 without User-Agent (plain text)", "ghp_", 403, "text/plain", "Request forbidden by administrative rules. Please make sure your request has a User-Agent header", nil, fault(403, "no verdict")},
		{"403 SAML enforcement", "ghp_", 403, js, `{"message":"Resource protected by organization SAML enforcement. You must grant your Personal Access token access to this organization."}`, nil, fault(403, "no verdict")},
		{"403 restricted wording without JSON", "ghp_", 403, "text/plain", "Resource not accessible by personal access token", nil, fault(403, "no verdict")},
		{"404 Not Found (wrong base path)", "ghp_", 404, js, `{"message":"Not Found","documentation_url":"https://docs.github.com/rest"}`, nil, fault(404, "unexpected http status 404")},
		{"400 unknown API version", "ghp_", 400, js, `{"message":"Unsupported 'X-GitHub-Api-Version' header value"}`, nil, fault(400, "unexpected http status 400")},
		{"302 to elsewhere", "ghp_", 302, "", "", map[string]string{"Location": canary.URL + "/user"}, fault(302, "unexpected http status 302")},
		{"403 rate limit by x-ratelimit-remaining 0", "ghp_", 403, js, `{"message":"API rate limit exceeded"}`,
			map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": strconv.FormatInt(time.Now().Add(90*time.Second).Unix(), 10)},
			verifiertest.Want{Kind: verify.RateLimited, HTTPStatus: 403, RetryMin: 85 * time.Second, RetryMax: 91 * time.Second, Metrics: metrics.Summary{Requests: 1, RateLimitHits: 1}}},
		{"403 abuse detection (older wording), remaining > 0", "ghp_", 403, js, `{"message":"You have triggered an abuse detection mechanism."}`,
			map[string]string{"X-RateLimit-Remaining": "4000", "X-RateLimit-Reset": strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)},
			verifiertest.Want{Kind: verify.RateLimited, HTTPStatus: 403, RetryMin: time.Minute, RetryMax: time.Minute, Metrics: metrics.Summary{Requests: 1, RateLimitHits: 1}}},
		{"429 reset in the past: a minute", "ghp_", 429, js, `{"message":"API rate limit exceeded"}`,
			map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": strconv.FormatInt(time.Now().Add(-time.Minute).Unix(), 10)},
			verifiertest.Want{Kind: verify.RateLimited, HTTPStatus: 429, RetryMin: time.Minute, RetryMax: time.Minute, Metrics: metrics.Summary{Requests: 1, RateLimitHits: 1}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := partnertest.ServeAnswer(t, tc.status, tc.contentType, tc.body, tc.header)
			got := harness.Run(harness.NewVerifier(t, 0, nil, srv.URL), "", githubFinding(githubdouble.NewToken(tc.prefix)))
			harness.Check(t, got, tc.want)
		})
	}
}

// TestDetails reads GitHub's token headers: scopes as a list (junk and
// anything like the token dropped), the expiry as RFC 3339 in UTC, an
// unreadable expiry left out rather than failing a live token.
func TestDetails(t *testing.T) {
	tok := githubdouble.NewToken("ghp_")
	tests := []struct {
		name   string
		header map[string]string
		want   finding.Details
	}{
		{"no token headers", nil, finding.Details{githubpartner.DetailLogin: "octocat"}},
		{"scopes", map[string]string{"X-OAuth-Scopes": "repo, admin:org,  read:packages"},
			finding.Details{githubpartner.DetailLogin: "octocat", githubpartner.DetailScopes: []string{"repo", "admin:org", "read:packages"}}},
		{"junk in scopes dropped", map[string]string{"X-OAuth-Scopes": "repo, <script>, " + tok + ", Bad Scope"},
			finding.Details{githubpartner.DetailLogin: "octocat", githubpartner.DetailScopes: []string{"repo"}}},
		{"expiry in UTC", map[string]string{"GitHub-Authentication-Token-Expiration": "2021-10-07 19:07:53 UTC"},
			finding.Details{githubpartner.DetailLogin: "octocat", githubpartner.DetailExpiresAt: "2021-10-07T19:07:53Z"}},
		{"expiry with a numeric zone", map[string]string{"GitHub-Authentication-Token-Expiration": "2021-10-07 21:07:53 +0200"},
			finding.Details{githubpartner.DetailLogin: "octocat", githubpartner.DetailExpiresAt: "2021-10-07T19:07:53Z"}},
		{"expiry in an unknown zone dropped", map[string]string{"GitHub-Authentication-Token-Expiration": "2021-10-07 19:07:53 PDT"},
			finding.Details{githubpartner.DetailLogin: "octocat"}},
		{"unreadable expiry dropped", map[string]string{"GitHub-Authentication-Token-Expiration": "soon"},
			finding.Details{githubpartner.DetailLogin: "octocat"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				w.Header().Set("Content-Type", "application/json; charset=utf-8")
				// A person's e-mail in the document never reaches the details.
				_, _ = w.Write([]byte(`{"login":"octocat","id":1,"email":"octocat@example.com","name":"The Octocat"}`))
			}))
			defer srv.Close()
			got := harness.Run(harness.NewVerifier(t, 0, nil, srv.URL), "", githubFinding(tok))
			harness.Check(t, got, verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Details: tc.want, Metrics: metrics.Summary{Requests: 1}})
		})
	}
}

// recordingTransport passes requests on and remembers what they carried.
type recordingTransport struct {
	mu   sync.Mutex
	base http.RoundTripper
	reqs []*http.Request
}

func (rt *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rt.mu.Lock()
	rt.reqs = append(rt.reqs, req.Clone(req.Context()))
	rt.mu.Unlock()
	return rt.base.RoundTrip(req)
}

// TestRequestShape: the token travels only in the Authorization header, as
// a Bearer credential, with GitHub's media type, the pinned API version and
// our User-Agent, to /user (installation tokens: one repository of
// /installation/repositories).
func TestRequestShape(t *testing.T) {
	srv := partnertest.StartDouble(t, githubdouble.Start)
	rt := &recordingTransport{base: &http.Transport{}}
	v := harness.NewVerifier(t, 0, rt, srv.URL+"/")
	cases := []struct{ prefix, path, query string }{
		{"ghp_", "/user", ""}, {"github_pat_", "/user", ""}, {"gho_", "/user", ""}, {"ghu_", "/user", ""},
		{"ghs_", "/installation/repositories", "per_page=1"},
	}
	for i, c := range cases {
		tok := newToken(c.prefix)
		srv.AddToken(tok, githubdouble.Token{Login: "octocat", UserID: 9})
		if got := harness.Run(v, "", githubFinding(tok)); got.Verdict.Reason != finding.ReasonPartnerConfirmed {
			t.Fatalf("%s: Verify = %+v, %v", c.prefix, got.Verdict, got.Err)
		}
		r := rt.reqs[i]
		if r.Method != http.MethodGet || r.URL.Path != c.path || r.URL.RawQuery != c.query || r.Body != nil && r.Body != http.NoBody {
			t.Errorf("%s: %s %s?%s with a body %v", c.prefix, r.Method, r.URL.Path, r.URL.RawQuery, r.Body != nil)
		}
		if strings.Contains(r.URL.String(), tok) || strings.Contains(r.URL.String(), tok[len(c.prefix):]) {
			t.Errorf("%s: the token is in the URL", c.prefix)
		}
		for name, vs := range r.Header {
			for _, val := range vs {
				if strings.Contains(val, tok[len(c.prefix):]) && name != "Authorization" {
					t.Errorf("%s: the token is in header %s", c.prefix, name)
				}
			}
		}
		if got := r.Header.Get("Authorization"); got != "Bearer "+tok {
			t.Errorf("%s: Authorization does not carry the token as a Bearer credential", c.prefix)
		}
		if r.Header.Get("Accept") != "application/vnd.github+json" || r.Header.Get("X-GitHub-Api-Version") != githubpartner.APIVersion {
			t.Errorf("%s: Accept %q, X-GitHub-Api-Version %q", c.prefix, r.Header.Get("Accept"), r.Header.Get("X-GitHub-Api-Version"))
		}
		if r.Header.Get("User-Agent") != partnerhttp.UserAgent {
			t.Errorf("%s: User-Agent = %q", c.prefix, r.Header.Get("User-Agent"))
		}
		if srv.Controls.CountFor(tok) != 1 {
			t.Errorf("%s: double counted %d requests for the token", c.prefix, srv.Controls.CountFor(tok))
		}
	}
}

func TestConcurrentVerifications(t *testing.T) {
	srv := partnertest.StartDouble(t, githubdouble.Start)
	cases := make([]verifiertest.ConcurrentCase, 16)
	for i := range cases {
		tok := githubdouble.NewToken("ghp_")
		cases[i] = verifiertest.ConcurrentCase{Finding: githubFinding(tok), Want: finding.ReasonPartnerRejected}
		if i%2 == 0 {
			srv.AddToken(tok, githubdouble.Token{Login: "user-" + strconv.Itoa(i), UserID: 1000 + i})
			cases[i].Want, cases[i].Details = finding.ReasonPartnerConfirmed, finding.Details{githubpartner.DetailLogin: "user-" + strconv.Itoa(i)}
		}
	}
	harness.Concurrent(t, harness.NewVerifier(t, 0, nil, srv.URL), cases)
}

func TestCancelledContextIsAFault(t *testing.T) {
	srv := partnertest.StartDouble(t, githubdouble.Start)
	tok := githubdouble.NewToken("ghp_")
	srv.AddToken(tok, githubdouble.Token{})
	verifiertest.CancelledIsAFault(t, harness.NewVerifier(t, 0, nil, srv.URL), githubpartner.TokenPAT, githubFinding(tok))
}

// TestVerifyRefusesOtherTokenTypes: a refresh token or another partner's
// type reaching Verify (a routing bug) is unsupported, with no call.
func TestVerifyRefusesOtherTokenTypes(t *testing.T) {
	srv := partnertest.StartDouble(t, githubdouble.Start)
	v := harness.NewVerifier(t, 0, nil, srv.URL)
	for _, tt := range []finding.TokenType{githubpartner.TokenRefresh, finding.TokenPostmanAPIKey} {
		verdict, err := v.Verify(context.Background(), tt, githubFinding(githubdouble.NewToken("ghp_")))
		if err != nil || verdict.Reason != finding.ReasonUnsupportedTokenType {
			t.Errorf("%s: %+v, %v", tt, verdict, err)
		}
	}
	if srv.Controls.Requests() != 0 {
		t.Errorf("the double saw %d requests", srv.Controls.Requests())
	}
}

// TestCheckTypesByPrefix: whatever rule found it, a token is typed by its
// prefix; a wrong length is malformed, with a message that quotes nothing
// of the token.
func TestCheckTypesByPrefix(t *testing.T) {
	tests := []struct {
		rule, tok string
		tt        finding.TokenType
		reason    finding.Reason
	}{
		{"github-pat", githubdouble.NewToken("ghp_"), githubpartner.TokenPAT, ""},
		{"github-pat", githubdouble.NewToken("gho_"), githubpartner.TokenOAuth, ""},
		{"github-app-token", githubdouble.NewToken("ghu_"), githubpartner.TokenUser, ""},
		{"github-app-token", githubdouble.NewToken("ghs_"), githubpartner.TokenAppInstallation, ""},
		{"Github App Token", githubdouble.NewToken("ghs_") + strings.Repeat("A", 200), githubpartner.TokenAppInstallation, ""},
		{"Github Personal Access Token", githubdouble.NewFineGrainedToken(), githubpartner.TokenFineGrainedPAT, ""},
		{"GithubFineGrainedPersonalAccessToken", githubdouble.NewToken("ghp_"), githubpartner.TokenPAT, ""},
		{"github-refresh-token", githubdouble.NewToken("ghr_"), githubpartner.TokenRefresh, finding.ReasonUnsupportedTokenType},
		{"github-oauth", githubdouble.NewToken("ghr_"), githubpartner.TokenRefresh, finding.ReasonUnsupportedTokenType},
		{"github-pat", githubdouble.NewToken("ghp_") + "x", githubpartner.TokenPAT, finding.ReasonMalformedToken},
		{"github-pat", githubdouble.NewToken("ghp_")[:39] + "-", githubpartner.TokenPAT, finding.ReasonMalformedToken},
		{"github-fine-grained-pat", githubdouble.NewFineGrainedToken()[:80], githubpartner.TokenFineGrainedPAT, finding.ReasonMalformedToken},
		{"github-app-token", "ghs_" + strings.Repeat("a", 252), githubpartner.TokenAppInstallation, finding.ReasonMalformedToken},
		{"github-app-token", "ghs_short", githubpartner.TokenAppInstallation, finding.ReasonMalformedToken},
		{"github-oauth", "gh", githubpartner.TokenOAuth, finding.ReasonMalformedToken},
		{"github-oauth", "GHO_" + strings.Repeat("a", 36), githubpartner.TokenOAuth, finding.ReasonMalformedToken},
	}
	for _, tc := range tests {
		f := finding.Finding{ID: "f", RuleID: tc.rule, Token: finding.Secret(tc.tok)}
		rt, reason, msg := githubpartner.Definition.Examine(f)
		if rt.TokenType != tc.tt || reason != tc.reason {
			t.Errorf("%s, %d chars: %s %q (%s), want %s %q", tc.rule, len(tc.tok), rt.TokenType, reason, msg, tc.tt, tc.reason)
		}
		if len(tc.tok) > 8 && strings.Contains(msg, tc.tok[4:]) {
			t.Errorf("%s: message quotes the token", tc.rule)
		}
	}
}

// TestNoSecretLeaks runs every class of answer and checks that no verdict,
// error or log line of the outcomes carries the token or its body.
func TestNoSecretLeaks(t *testing.T) {
	srv := partnertest.StartDouble(t, githubdouble.Start)
	modes := []githubdouble.Mode{githubdouble.Live, githubdouble.Revoked, githubdouble.Restricted403, githubdouble.Restricted404,
		githubdouble.LockedOut, githubdouble.Primary403, githubdouble.Primary429, githubdouble.Secondary403RetryAfter,
		githubdouble.Secondary429RetryAfter, githubdouble.Secondary403, githubdouble.Secondary429}
	sweep := harness.LeakSweep(t, harness.NewVerifier(t, 300*time.Millisecond, nil, srv.URL))
	for _, prefix := range []string{"ghp_", "ghs_"} {
		for _, fl := range partnertest.Faults() {
			tok := newToken(prefix)
			srv.AddToken(tok, githubdouble.Token{Scopes: []string{"repo"}, Expires: expires})
			srv.Controls.Push(fl)
			sweep.Verify(fl.String(), "", githubFinding(tok))
		}
		for _, m := range modes {
			tok := newToken(prefix)
			srv.AddToken(tok, githubdouble.Token{Scopes: []string{"repo"}, Mode: m})
			sweep.Verify(m.String(), "", githubFinding(tok))
		}
	}
	// Malformed and refresh tokens never leave the process, but their
	// messages must not quote them either.
	for _, tok := range []string{githubdouble.NewToken("ghp_") + "Z", githubdouble.NewToken("ghr_"), "ghz_" + githubdouble.NewToken("ghp_")[4:]} {
		sweep.Verify("no call", "", githubFinding(tok))
	}
	sweep.Check([]string{`"reason":"partner_confirmed"`, "http 500", `"reason":"partner_rejected"`, "secondary rate limit"}, func(tok string) []string {
		body := tok[4:]
		return []string{body[:len(body)/2], body[len(body)/2:]}
	})
}

func TestNew(t *testing.T) {
	verifiertest.RefusesEndpoints(t, githubpartner.New, "github: new verifier:", githubpartner.DefaultEndpoint, "", "/user", "ftp://api.github.com", "https://api.github.com?x=1")
}

// TestEnterpriseBasePath: a GitHub Enterprise Server base URL keeps its
// /api/v3 path.
func TestEnterpriseBasePath(t *testing.T) {
	var path string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path = r.URL.Path
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"login":"ghe-user","id":3}`))
	}))
	defer srv.Close()
	got := harness.Run(harness.NewVerifier(t, 0, nil, srv.URL+"/api/v3/"), "", githubFinding(githubdouble.NewToken("ghp_")))
	harness.Check(t, got, verifiertest.Want{Reason: finding.ReasonPartnerConfirmed, Details: finding.Details{githubpartner.DetailLogin: "ghe-user"}, Metrics: metrics.Summary{Requests: 1}})
	if path != "/api/v3/user" {
		t.Errorf("path = %q, want /api/v3/user", path)
	}
}

// TestRateWithinLimit: the default rate of two instances (the least
// MaximumConcurrency) stays within the Limit, and so does their worst
// fixed hour, burst included.
func TestRateWithinLimit(t *testing.T) {
	r := githubpartner.Definition.Rate
	if 2*r.PerSecond > r.Limit {
		t.Errorf("2 x %v/s exceeds the limit %v/s", r.PerSecond, r.Limit)
	}
	if worst := 2 * (float64(r.Burst) + r.PerSecond*3600); worst > r.Limit*3600 {
		t.Errorf("two instances may send %v in an hour, over %v", worst, r.Limit*3600)
	}
	if !strings.HasPrefix(r.Source, "https://docs.github.com/") {
		t.Errorf("Source = %q, want GitHub's published limit", r.Source)
	}
}
