package main

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/sandbox"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/registry"
)

func runSmoke(t *testing.T, environ []string, args ...string) (int, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, environ, &out, &errOut)
	return code, out.String() + errOut.String()
}

// TestNoCredentials: run where no operator gave anything, it exits 0 and
// says, for every partner of the registry, what it would check.
func TestNoCredentials(t *testing.T) {
	code, out := runSmoke(t, nil)
	if code != 0 {
		t.Fatalf("exit %d, want 0:\n%s", code, out)
	}
	for _, def := range registry.All() {
		want := "no " + EnvPrefix(def.Name) + "LIVE/REVOKED given: would check a live and a revoked " + string(def.Rules[0].TokenType)
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
		for _, e := range def.Endpoints {
			if !strings.Contains(out, e.Default) {
				t.Errorf("%s: output does not name the endpoint %s", def.Name, e.Default)
			}
		}
	}
	if strings.Contains(out, "127.0.0.1") {
		t.Errorf("the calls are named at the doubles' addresses, not the real ones:\n%s", out)
	}
}

// realSide is a second sandbox standing in for the real partners: the
// environment points every PARTNER_ENDPOINT_* at it and gives, per
// partner, a credential registered there (live) and one that is not
// (revoked). It returns the environment and every secret value in it.
func realSide(t *testing.T) (*sandbox.Sandbox, []string, []string) {
	t.Helper()
	sb, err := sandbox.Start(sandbox.Addrs{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	var env, secrets []string
	for k, v := range sb.Env() {
		env = append(env, k+"="+v)
	}
	for _, def := range registry.All() {
		fs, creds, err := sandbox.LiveFindings(def.Name, 2, 1)
		if err != nil {
			t.Fatal(err)
		}
		if err := sb.Register(sandbox.Credentials{string(def.Name): creds[string(def.Name)][:1]}); err != nil {
			t.Fatal(err)
		}
		pre := EnvPrefix(def.Name)
		env = append(env, pre+"RULE_ID="+fs[0].RuleID)
		for i, kind := range []string{"LIVE", "REVOKED"} {
			env = append(env, pre+kind+"="+fs[i].Token.Reveal())
			secrets = append(secrets, fs[i].Token.Reveal())
			for k, v := range fs[i].Context {
				env = append(env, pre+kind+"_CONTEXT_"+k+"="+v.Reveal())
				secrets = append(secrets, v.Reveal())
			}
		}
	}
	return sb, env, secrets
}

// TestAgreeingPartners: when the "real" partners answer as the doubles do,
// every verdict meets its expectation, every shape is reported the same,
// the run exits 0, and no credential appears in the output.
func TestAgreeingPartners(t *testing.T) {
	_, env, secrets := realSide(t)
	code, out := runSmoke(t, env)
	if code != 0 {
		t.Fatalf("exit %d, want 0:\n%s", code, out)
	}
	for _, def := range registry.All() {
		if !strings.Contains(out, string(def.Name)+" (") {
			t.Errorf("output does not name %s", def.Name)
		}
	}
	if n, want := strings.Count(out, "same shape as the double's answer"), 2*len(registry.All()); n != want {
		t.Errorf("%d answers of the same shape, want %d:\n%s", n, want, out)
	}
	if strings.Contains(out, "FAIL") {
		t.Errorf("a failure reported:\n%s", out)
	}
	assertNoSecret(t, out, secrets)
}

func assertNoSecret(t *testing.T, out string, secrets []string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Fatalf("the output quotes a credential or context value")
		}
		if len(s) > 12 && strings.Contains(out, s[len(s)-12:]) {
			t.Fatalf("the output quotes part of a credential or context value")
		}
	}
}

// TestDisagreeingPartner: a "real" Postman that answers differently from
// its double (a proxy's HTML page, or a revoked key that still works) is
// reported with why, and the run exits 1, still quoting no credential.
func TestDisagreeingPartner(t *testing.T) {
	tests := []struct {
		name  string
		setup func(sb *sandbox.Sandbox, env []string) []string
		want  []string
	}{
		{
			name: "html 401 instead of the user document",
			setup: func(sb *sandbox.Sandbox, env []string) []string {
				sb.Postman.Controls.Push(partnertest.FaultHTML401) // the live key's request
				return env
			},
			want: []string{
				"live (rule \"Postman API token\", postman_api_key): real unknown/partner_error",
				"status: real 401, double 200",
				"body format: real html, double json",
				"body keys only the double sends: operations, operations[].limit",
				"FAIL: want active; the double answers in another shape",
			},
		},
		{
			name: "revoked key still live",
			setup: func(sb *sandbox.Sandbox, env []string) []string {
				for _, kv := range env {
					if k, v, _ := strings.Cut(kv, "="); k == "SMOKE_POSTMAN_REVOKED" {
						sb.Postman.AddKey(v, 1)
					}
				}
				return env
			},
			want: []string{
				"revoked (rule \"Postman API token\", postman_api_key): real active/partner_confirmed (http 200), double inactive/partner_rejected (http 401)",
				"status: real 200, double 401",
				"body keys only the real partner sends: operations",
				"FAIL: want inactive",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sb, env, secrets := realSide(t)
			env = tt.setup(sb, env)
			code, out := runSmoke(t, env, "-partner", "postman")
			if code != 1 {
				t.Fatalf("exit %d, want 1:\n%s", code, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			if strings.Contains(out, "aws (") {
				t.Errorf("-partner postman checked aws too")
			}
			assertNoSecret(t, out, secrets)
		})
	}
}

// TestOnlyOneKindGiven: a partner with only a live credential is checked
// for that one and the missing one is named.
func TestOnlyOneKindGiven(t *testing.T) {
	_, env, _ := realSide(t)
	env = slices.DeleteFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "SMOKE_POSTMAN_REVOKED=") })
	code, out := runSmoke(t, env, "-partner", "postman")
	if code != 0 || !strings.Contains(out, "revoked: no SMOKE_POSTMAN_REVOKED given") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}

func TestBadFlags(t *testing.T) {
	if code, _ := runSmoke(t, nil, "-partner", "nosuch"); code != 2 {
		t.Errorf("unknown partner: exit %d, want 2", code)
	}
}

func TestEnvPrefix(t *testing.T) {
	for in, want := range map[finding.Partner]string{"aws": "SMOKE_AWS_", "gitlab": "SMOKE_GITLAB_", "x-y.z": "SMOKE_X_Y_Z_"} {
		if got := EnvPrefix(in); got != want {
			t.Errorf("EnvPrefix(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestGivenContext: shared context values reach both findings, a kind's
// own value wins, and the rule id defaults to the partner's first.
func TestGivenContext(t *testing.T) {
	def, _ := registry.Lookup("aws")
	env := map[string]string{
		"SMOKE_AWS_LIVE": "AKIA1", "SMOKE_AWS_REVOKED": "AKIA2",
		"SMOKE_AWS_CONTEXT_aws_secret_access_key":         "shared",
		"SMOKE_AWS_REVOKED_CONTEXT_aws_secret_access_key": "own",
	}
	live, _ := given(def, env, "LIVE")
	revoked, _ := given(def, env, "REVOKED")
	if live.RuleID != def.Rules[0].ID || live.ContextValue("aws_secret_access_key") != "shared" || revoked.ContextValue("aws_secret_access_key") != "own" {
		t.Errorf("live %s %q, revoked %q", live.RuleID, live.ContextValue("aws_secret_access_key"), revoked.ContextValue("aws_secret_access_key"))
	}
	if _, ok := given(def, map[string]string{}, "LIVE"); ok {
		t.Error("a credential given from an empty environment")
	}
}

func shape(status int, format string, headers, keys []string) []*Shape {
	return []*Shape{{Status: status, Format: format, Headers: headers, Keys: keys}}
}

// TestCompare: which differences fail the run (status class, format, body
// keys, number of requests) and which are only shown (headers, a status
// within the same class).
func TestCompare(t *testing.T) {
	base := shape(401, "json", []string{"Content-Type", "Date"}, []string{"error", "error.message"})
	tests := []struct {
		name         string
		real         []*Shape
		matters, emp bool
	}{
		{"same", shape(401, "json", []string{"Content-Type", "Server"}, []string{"error", "error.message"}), false, true},
		{"extra header", shape(401, "json", []string{"Content-Type", "X-Ratelimit-Remaining"}, []string{"error", "error.message"}), false, false},
		{"status in class", shape(403, "json", []string{"Content-Type"}, []string{"error", "error.message"}), false, false},
		{"status class", shape(200, "json", []string{"Content-Type"}, []string{"error", "error.message"}), true, false},
		{"format", shape(401, "html", []string{"Content-Type"}, nil), true, false},
		{"keys", shape(401, "json", []string{"Content-Type"}, []string{"error", "error.code", "error.message"}), true, false},
		{"count", append(shape(0, "", nil, nil), base...), true, false},
	}
	for _, tt := range tests {
		d := compare(tt.real, base)
		if d.Matters() != tt.matters || d.Empty() != tt.emp {
			t.Errorf("%s: matters %v empty %v, want %v %v (%v)", tt.name, d.Matters(), d.Empty(), tt.matters, tt.emp, d.Lines())
		}
	}
}

// TestShapeKeepsNoValue: the recorded shape of a JSON and an XML answer
// holds key paths and header names only.
func TestShapeKeepsNoValue(t *testing.T) {
	tests := []struct {
		ct, body string
		want     []string
	}{
		{"application/json", `{"user":{"id":7,"email":"VALUE1"},"operations":[{"name":"VALUE2"}]}`,
			[]string{"operations", "operations[].name", "user", "user.email", "user.id"}},
		{"text/xml", `<?xml version="1.0"?><ErrorResponse><Error><Code>VALUE1</Code></Error><RequestId>VALUE2</RequestId></ErrorResponse>`,
			[]string{"ErrorResponse", "ErrorResponse.Error", "ErrorResponse.Error.Code", "ErrorResponse.RequestId"}},
	}
	for _, tt := range tests {
		s := &Shape{Format: contentFormat(tt.ct)}
		s.body.WriteString(tt.body)
		s.finish()
		if !slices.Equal(s.Keys, tt.want) {
			t.Errorf("%s: keys %v, want %v", tt.ct, s.Keys, tt.want)
		}
		if strings.Contains(strings.Join(s.Keys, " "), "VALUE") {
			t.Errorf("%s: a value among the keys", tt.ct)
		}
	}
	if got := contentFormat("text/html; charset=utf-8"); got != "html" {
		t.Errorf("html content type read as %s", got)
	}
}
