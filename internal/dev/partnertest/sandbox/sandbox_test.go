package sandbox

import (
	"context"
	"encoding/json"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/registry"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

// TestEventsAgreeWithSamples runs every finding of events/ through the real
// verifiers against the sandbox: findings named "...inactive..." must come
// back inactive and "...active..." active, so the sample events and the
// sandbox's registered credentials cannot drift apart. Findings named
// "...canary..." must be refused as canary_token before any call, although
// the double holds them live (the verifier, asked anyway, says active).
func TestEventsAgreeWithSamples(t *testing.T) {
	s, err := Start(Addrs{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.RegisterSamples(); err != nil {
		t.Fatal(err)
	}
	verifiers := newVerifiers(t, s)

	files, err := filepath.Glob(filepath.Join("..", "..", "..", "..", "events", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no events found: %v", err)
	}
	checked := map[finding.TokenType]int{}
	unsupported := map[finding.TokenType]bool{}
	canaries := 0
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var ev struct {
			Records []struct {
				Body string `json:"body"`
			} `json:"Records"`
		}
		if err := json.Unmarshal(raw, &ev); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		for _, rec := range ev.Records {
			b, err := finding.Parse([]byte(rec.Body))
			if err != nil {
				continue // the unparseable sample
			}
			for _, f := range b.Findings {
				want := finding.StatusActive
				switch {
				case strings.Contains(f.ID, "canary"):
					rt, reason, _ := registry.Check(f)
					known := registry.Known(rt, f)
					if reason != finding.ReasonCanaryToken || known["canary"] != true || known["aws_account_id"] == nil {
						t.Errorf("%s: %s: %s, details %v; want canary_token, canary and account", filepath.Base(file), f.ID, reason, known)
						continue
					}
					if v, err := verifiers[rt.Partner].Verify(context.Background(), rt.TokenType, f); err != nil || v.Status() != finding.StatusActive {
						t.Errorf("%s: %s: the double does not hold the canary live (%s, %v): the sample proves nothing", filepath.Base(file), f.ID, v.Reason, err)
					}
					canaries++
					continue
				case strings.Contains(f.ID, "unsupported"):
					// A token type no call can judge (GitHub's ghr_ refresh
					// tokens): its sample must be refused before any call.
					if rt, reason, _ := registry.Check(f); reason == finding.ReasonUnsupportedTokenType {
						unsupported[rt.TokenType] = true
					}
					continue
				case strings.Contains(f.ID, "inactive"):
					want = finding.StatusInactive
				case !strings.Contains(f.ID, "active"):
					continue // samples of other outcomes (malformed, unsupported, ...)
				}
				rt, reason, msg := registry.Check(f)
				if rt.Partner == "" {
					t.Fatalf("%s: %s: no route", file, f.ID)
				}
				if reason != "" {
					t.Errorf("%s: %s: %s: %s", filepath.Base(file), f.ID, reason, msg)
					continue
				}
				v, err := verifiers[rt.Partner].Verify(context.Background(), rt.TokenType, f)
				if err != nil {
					t.Errorf("%s: %s: %v", filepath.Base(file), f.ID, err)
					continue
				}
				if v.Status() != want {
					t.Errorf("%s: %s = %s (%s), want %s", filepath.Base(file), f.ID, v.Status(), v.Reason, want)
				}
				checked[rt.TokenType]++
			}
		}
	}
	if canaries == 0 {
		t.Error("events/ has no canary sample")
	}
	for _, d := range registry.All() {
		for _, tt := range d.TokenTypes {
			if checked[tt] < 2 && !unsupported[tt] {
				t.Errorf("events/ has %d active/inactive samples of %s (%s), want both", checked[tt], tt, d.Name)
			}
		}
	}
}

// newVerifiers returns the real verifier of every partner of the
// registry, pointed at s: a partner without a double in the sandbox has no
// endpoint in s.Env() and fails here.
func newVerifiers(t *testing.T, s *Sandbox) map[finding.Partner]verify.Verifier {
	t.Helper()
	env := s.Env()
	out := map[finding.Partner]verify.Verifier{}
	for _, d := range registry.All() {
		for _, e := range d.Endpoints {
			if env[e.Env] == "" {
				t.Fatalf("the sandbox has no double for %s (%s)", d.Name, e.Env)
			}
		}
		o, err := registry.Options(d, func(k string) string { return env[k] })
		if err != nil {
			t.Fatal(err)
		}
		if out[d.Name], err = d.New(o); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestEnvJSONNamesEveryEndpoint: the shipped env.json (make invoke's
// fallback, pointing at bin/partner-sandbox's fixed ports) names every
// endpoint variable of every partner, and the sandbox's controls cover
// every partner.
func TestEnvJSONNamesEveryEndpoint(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "env.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct{ Parameters map[string]string }
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	s, err := Start(Addrs{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	controls := s.Controls()
	for _, d := range registry.All() {
		for _, e := range d.Endpoints {
			if doc.Parameters[e.Env] == "" {
				t.Errorf("env.json lacks %s (%s)", e.Env, d.Name)
			}
		}
		if len(controls[string(d.Name)]) == 0 {
			t.Errorf("the sandbox has no fault controls for %s", d.Name)
		}
	}
}

// eventFindings are the findings of every parseable record of events/.
func eventFindings(t *testing.T) []finding.Finding {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "..", "..", "..", "events", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no events found: %v", err)
	}
	var out []finding.Finding
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var ev struct {
			Records []struct {
				Body string `json:"body"`
			} `json:"Records"`
		}
		if err := json.Unmarshal(raw, &ev); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		for _, rec := range ev.Records {
			if b, err := finding.Parse([]byte(rec.Body)); err == nil {
				out = append(out, b.Findings...)
			}
		}
	}
	return out
}
