// Command smoke-live is the operators' live check (make smoke-live; never
// part of make test or CI): for every partner of the registry whose test
// credentials are given in the environment, it runs the real verifier
// against the real endpoint and prints the verdict beside what the partner's
// double says for the same kind of credential, and the answer's shape
// (status, header names, body keys; never a value) where it differs from
// the double's. The doubles are the only partners the tests ever meet, so
// this is how an operator learns that a double has drifted from the real
// API before it turns into wrong verdicts.
//
// Credentials, per partner (NAME is the partner's name upper-cased: AWS,
// GCP, POSTMAN, GITHUB, ...):
//
//	SMOKE_<NAME>_LIVE                    a credential that is live (want active)
//	SMOKE_<NAME>_REVOKED                 a credential that was revoked (want inactive)
//	SMOKE_<NAME>_RULE_ID                 the rule id to present them under (default: the partner's first rule)
//	SMOKE_<NAME>_CONTEXT_<key>           a context value of both findings
//	SMOKE_<NAME>_LIVE_CONTEXT_<key>      a context value of the live finding only (likewise _REVOKED_)
//
// e.g. SMOKE_AWS_LIVE_CONTEXT_aws_secret_access_key. Endpoints are the real
// ones unless PARTNER_ENDPOINT_* says otherwise. It exits 1 when a given
// credential's verdict contradicts its expectation or the real answer's
// shape differs from the double's in a way that could change a verdict
// (status class, body format or keys), 2 on a usage error, else 0.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/sandbox"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/registry"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// config is one run's settings.
type config struct {
	timeout  time.Duration
	partners []string // only these, when set
	env      map[string]string
}

func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("smoke-live", flag.ContinueOnError)
	fs.SetOutput(stderr)
	timeout := fs.Duration("timeout", 10*time.Second, "one partner request's timeout")
	only := fs.String("partner", "", "check only these partners (comma-separated names)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg := config{timeout: *timeout, env: map[string]string{}}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			cfg.env[k] = v
		}
	}
	if *only != "" {
		for _, p := range strings.Split(*only, ",") {
			p = strings.TrimSpace(p)
			if _, ok := registry.Lookup(p); !ok {
				fmt.Fprintf(stderr, "smoke-live: -partner: no partner %q in the registry\n", p)
				return 2
			}
			cfg.partners = append(cfg.partners, p)
		}
	}

	// The doubles run in this process on free loopback ports: the
	// reference each real answer is held against.
	sb, sbErr := sandbox.Start(sandbox.Addrs{})
	if sbErr == nil {
		defer sb.Close()
	}
	var out strings.Builder
	secrets := secretValues(cfg.env)
	failed := false
	for _, def := range registry.All() {
		if len(cfg.partners) > 0 && !slices.Contains(cfg.partners, string(def.Name)) {
			continue
		}
		p := check{def: def, cfg: cfg, sb: sb, sbErr: sbErr}
		if p.run(ctx, &out) {
			failed = true
		}
		secrets = append(secrets, p.doubleSecrets...)
	}
	// The verdict lines hold no credential by construction; scrubbing the
	// whole report again is the belt to those braces.
	_, _ = io.WriteString(stdout, finding.Scrub(out.String(), secrets...))
	if failed {
		fmt.Fprintln(stderr, "smoke-live: FAILED: a real partner contradicts a verdict or its double (see above)")
		return 1
	}
	return 0
}

// EnvPrefix is the prefix of a partner's SMOKE_ variables: SMOKE_ and the
// partner's name upper-cased, any character outside A-Z0-9 as _.
func EnvPrefix(p finding.Partner) string {
	b := []byte(strings.ToUpper(string(p)))
	for i, c := range b {
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			b[i] = '_'
		}
	}
	return "SMOKE_" + string(b) + "_"
}

// secretValues are every credential and context value of the SMOKE_
// variables, scrubbed from the report.
func secretValues(env map[string]string) []string {
	var out []string
	for k, v := range env {
		if strings.HasPrefix(k, "SMOKE_") && (strings.HasSuffix(k, "_LIVE") || strings.HasSuffix(k, "_REVOKED") || strings.Contains(k, "_CONTEXT_")) {
			out = append(out, v)
		}
	}
	return out
}

// kinds are the two credentials an operator gives per partner, each with
// the status a healthy partner must answer and the double's counterpart.
var kinds = []struct {
	name   string // LIVE, REVOKED
	want   finding.Status
	double string // what the double is asked with
}{
	{"LIVE", finding.StatusActive, "registered"},
	{"REVOKED", finding.StatusInactive, "unregistered"},
}

// given builds the finding of one kind from the environment, or reports
// that its credential was not given.
func given(def partner.Definition, env map[string]string, kind string) (finding.Finding, bool) {
	pre := EnvPrefix(def.Name)
	tok := env[pre+kind]
	if tok == "" {
		return finding.Finding{}, false
	}
	rule := env[pre+"RULE_ID"]
	if rule == "" {
		rule = def.Rules[0].ID
	}
	f := finding.Finding{ID: "smoke-" + strings.ToLower(kind), RuleID: rule, Token: finding.Secret(tok)}
	add := func(prefix string) {
		for k, v := range env {
			if key, ok := strings.CutPrefix(k, prefix); ok && key != "" {
				if f.Context == nil {
					f.Context = map[string]finding.Secret{}
				}
				f.Context[key] = finding.Secret(v)
			}
		}
	}
	add(pre + "CONTEXT_")
	add(pre + kind + "_CONTEXT_") // the kind's own values win
	return f, true
}

// outcome is what one verification came to.
type outcome struct {
	tokenType finding.TokenType
	status    finding.Status
	verdict   string // status/reason, and why when not a partner's verdict
	shapes    []*Shape
}

// check is one partner's part of the run.
type check struct {
	def   partner.Definition
	cfg   config
	sb    *sandbox.Sandbox
	sbErr error

	doubleSecrets []string
}

// run prints the partner's section and says whether it failed.
func (c *check) run(ctx context.Context, w *strings.Builder) bool {
	def := c.def
	pre := EnvPrefix(def.Name)
	fmt.Fprintf(w, "%s (%s): token types %s\n", def.Name, def.Title, joinTypes(def.TokenTypes))
	real, err := registry.Options(def, func(k string) string { return c.cfg.env[k] })
	if err != nil {
		fmt.Fprintf(w, "  FAIL: %v\n\n", err)
		return true
	}
	var eps []string
	for i, e := range def.Endpoints {
		eps = append(eps, fmt.Sprintf("%s (%s)", real.Endpoints[i], e.Env))
	}
	fmt.Fprintf(w, "  endpoints: %s\n", strings.Join(eps, ", "))
	dbl, calls, err := c.doubleSide(ctx, real)
	if err != nil {
		fmt.Fprintf(w, "  double: unavailable: %v\n", err)
	} else {
		fmt.Fprintf(w, "  double (%s): %s → %s; %s → %s; calls %s\n", dbl[0].tokenType,
			kinds[0].double, describe(dbl[0]), kinds[1].double, describe(dbl[1]), strings.Join(calls, "; "))
	}
	var fs [2]*finding.Finding
	for i, k := range kinds {
		if f, ok := given(def, c.cfg.env, k.name); ok {
			fs[i] = &f
		}
	}
	if fs[0] == nil && fs[1] == nil {
		rule := def.Rules[0]
		what := fmt.Sprintf("a live and a revoked %s (rule %s", rule.TokenType, finding.QuoteRule(rule.ID))
		if len(def.TokenTypes) > 1 {
			what += fmt.Sprintf("; %sRULE_ID for %s", pre, joinTypes(def.TokenTypes))
		}
		what += ")"
		if dbl != nil && dbl[0].tokenType == rule.TokenType {
			what += " with " + strings.Join(calls, "; ")
		} else {
			what += " at " + strings.Join(eps, ", ")
		}
		fmt.Fprintf(w, "  no %sLIVE/REVOKED given: would check %s\n\n", pre, what)
		return false
	}
	real.Timeout = c.cfg.timeout
	rec := &recorder{base: partnerhttp.NewTransport(c.cfg.timeout)}
	real.Transport = rec
	v, err := def.New(real)
	if err != nil {
		fmt.Fprintf(w, "  FAIL: real verifier: %v\n\n", err)
		return true
	}
	failed := false
	for i, k := range kinds {
		if fs[i] == nil {
			fmt.Fprintf(w, "  %s: no %s%s given\n", strings.ToLower(k.name), pre, k.name)
			continue
		}
		got := verifyOne(ctx, def, v, rec, *fs[i])
		fmt.Fprintf(w, "  %s (rule %s, %s): real %s", strings.ToLower(k.name), finding.QuoteRule(fs[i].RuleID), got.tokenType, describe(got))
		var bad []string
		if got.status != k.want {
			bad = append(bad, fmt.Sprintf("want %s", k.want))
		}
		switch {
		case dbl == nil:
			fmt.Fprintln(w)
		case dbl[i].tokenType != got.tokenType:
			fmt.Fprintf(w, "\n    the double's kit makes %s, not %s: shapes not compared\n", dbl[i].tokenType, got.tokenType)
		default:
			fmt.Fprintf(w, ", double %s\n", describe(dbl[i]))
			d := compare(got.shapes, dbl[i].shapes)
			if d.Empty() {
				fmt.Fprintf(w, "    same shape as the double's answer\n")
			} else {
				fmt.Fprintf(w, "    shape differs from the double's answer:\n")
				for _, l := range d.Lines() {
					fmt.Fprintf(w, "      %s\n", l)
				}
			}
			if d.Matters() {
				bad = append(bad, "the double answers in another shape (status class, body format or keys): fix the double, then the verifier")
			}
		}
		if len(bad) > 0 {
			failed = true
			fmt.Fprintf(w, "    FAIL: %s\n", strings.Join(bad, "; "))
		}
	}
	fmt.Fprintln(w)
	return failed
}

// doubleSide asks the partner's double about a fresh registered credential
// of the kit's kind and an unregistered one, and names the calls made, at
// the real endpoints' addresses.
func (c *check) doubleSide(ctx context.Context, real partnerhttp.Options) ([]outcome, []string, error) {
	if c.sbErr != nil {
		return nil, nil, c.sbErr
	}
	p := c.def.Name
	fs, creds, err := sandbox.LiveFindings(p, 2, 1)
	if err != nil {
		return nil, nil, err
	}
	for _, f := range fs {
		c.doubleSecrets = append(c.doubleSecrets, f.Token.Reveal())
		for _, v := range f.Context {
			c.doubleSecrets = append(c.doubleSecrets, v.Reveal())
		}
	}
	if err := c.sb.Register(sandbox.Credentials{string(p): creds[string(p)][:1]}); err != nil {
		return nil, nil, err
	}
	env := c.sb.Env()
	o, err := registry.Options(c.def, func(k string) string { return env[k] })
	if err != nil {
		return nil, nil, err
	}
	rec := &recorder{base: partnerhttp.NewTransport(c.cfg.timeout)}
	o.Timeout, o.Transport = c.cfg.timeout, rec
	v, err := c.def.New(o)
	if err != nil {
		return nil, nil, err
	}
	out := []outcome{verifyOne(ctx, c.def, v, rec, fs[0]), verifyOne(ctx, c.def, v, rec, fs[1])}
	// Name each call at the real endpoint it stands for.
	hosts := map[string]string{}
	for i, u := range c.sb.Double(p).URLs() {
		if pu, err := url.Parse(u); err == nil && i < len(real.Endpoints) {
			hosts[pu.Host] = fmt.Sprintf("%s (%s)", real.Endpoints[i], c.def.Endpoints[i].Env)
		}
	}
	var calls []string
	for _, o := range out {
		for _, s := range o.shapes {
			call := s.Method + " " + s.Path + " at " + hosts[s.Host]
			if !slices.Contains(calls, call) {
				calls = append(calls, call)
			}
		}
	}
	return out, calls, nil
}

// verifyOne passes f through the registry's gate, as the functions do, and
// asks v; a fault is an outcome too (unknown), never an error of the run.
func verifyOne(ctx context.Context, def partner.Definition, v verify.Verifier, rec *recorder, f finding.Finding) outcome {
	rt, reason, msg := registry.Check(f)
	if reason != "" {
		return outcome{tokenType: rt.TokenType, status: finding.StatusOf(reason), verdict: fmt.Sprintf("%s/%s, no call: %s", finding.StatusOf(reason), reason, msg)}
	}
	if rt.Partner != def.Name {
		return outcome{tokenType: rt.TokenType, status: finding.StatusUnknown,
			verdict: fmt.Sprintf("unknown, no call: rule %s belongs to %s", finding.QuoteRule(f.RuleID), rt.Partner)}
	}
	got, err := v.Verify(ctx, rt.TokenType, f)
	o := outcome{tokenType: rt.TokenType, shapes: rec.take()}
	if err != nil {
		kind := verify.PartnerError
		if fault, ok := verify.AsFault(err); ok {
			kind = fault.Kind
		}
		o.status = finding.StatusUnknown
		// One attempt, no retry: a fault here is what the function would retry,
		// and what it would end in once retries were spent.
		o.verdict = fmt.Sprintf("%s/%s, a fault (%v)", finding.StatusUnknown, kind.Reason(), err)
		return o
	}
	o.status = got.Status()
	o.verdict = fmt.Sprintf("%s/%s", got.Status(), got.Reason)
	return o
}

// describe is an outcome as the report shows it: verdict and the statuses
// the partner answered with.
func describe(o outcome) string {
	var st []string
	for _, s := range o.shapes {
		st = append(st, statusText(s.Status))
	}
	if len(st) == 0 {
		return o.verdict
	}
	return fmt.Sprintf("%s (http %s)", o.verdict, strings.Join(st, ", "))
}

func joinTypes(ts []finding.TokenType) string {
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = string(t)
	}
	return strings.Join(s, ", ")
}
