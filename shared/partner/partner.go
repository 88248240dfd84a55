// Package partner says what makes a partner, in one value per partner: its
// name, the scanner rule ids it verifies (GitLab's and gitleaks'), its token
// types and their format checks, its endpoints, its default rate with the
// source of that figure, and its verifier. Each partner is a subpackage
// exporting one Definition; package registry lists them, and the
// dispatcher's routing, the partner function, the feature command, the
// local stack, the doubles and the documentation all follow from that list.
package partner

import (
	"fmt"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

// Definition is everything the rest of the system needs to know of one partner.
type Definition struct {
	// Name is the partner's name: function, queue, metric dimension and
	// flag key (PARTNER_QUEUE_URL_<NAME>, partners.<name>).
	Name finding.Partner
	// Title is the partner's name as people write it.
	Title string
	// Rules are the scanner rule ids this partner verifies.
	Rules []Rule
	// TokenTypes are every token type Check can return, for documentation
	// and for the tests that walk every type.
	TokenTypes []finding.TokenType
	// Check is the format gate: given the finding and its rule's token
	// type, it returns the token type to verify it as (a partner may type
	// tokens by prefix whatever the rule), or a terminal reason
	// (malformed_token, unsupported_token_type, missing_context) and a
	// message that names the problem without quoting the token.
	Check func(rule finding.TokenType, f finding.Finding) (finding.TokenType, finding.Reason, string)
	// Endpoints are the partner's base URLs, in the order its verifier
	// expects them in partnerhttp.Options.Endpoints.
	Endpoints []Endpoint
	// Rate is the default per-instance rate limit.
	Rate Rate
	// New builds the verifier; o.Endpoints follow Endpoints' order.
	New func(o partnerhttp.Options) (verify.Verifier, error)
	// Details declares, per token type, every details key a result of that
	// type can carry (what a live key reveals: scopes, expiry, owner or
	// account ids; and what is known without a call, such as AWS's
	// aws_account_id and canary). A token type with none has an empty
	// entry, so that every type is declared; the README's "What a live key
	// can do" table and the tests that hold every result to its
	// declaration read it.
	Details map[finding.TokenType][]string
	// Known returns the details a finding carries without any call (AWS:
	// the account its key id encodes), nil when there are none. They go on
	// every result of the finding, whatever its reason, and may hold no
	// credential material. Nil for partners that know nothing offline.
	Known func(f finding.Finding) finding.Details
}

// Scanner names the family of a rule id.
type Scanner string

// The scanners whose rule ids are routed.
const (
	GitLab   Scanner = "gitlab"
	Gitleaks Scanner = "gitleaks"
)

// Rule maps one scanner rule id to the token type it detects.
type Rule struct {
	ID        string
	Scanner   Scanner
	TokenType finding.TokenType
}

// Endpoint is one configurable base URL: env names the variable
// (PARTNER_ENDPOINT_…), Default the real partner's URL.
type Endpoint struct {
	Env     string
	Default string
}

// Rate is a per-instance request rate; the partner's global rate is the
// function's MaximumConcurrency times it, which must stay within Limit in
// every deployed environment (a test reads samconfig.toml to make sure).
type Rate struct {
	// PerSecond and Burst are one instance's default token bucket.
	PerSecond float64
	Burst     int
	// Limit is the most requests per second all instances together may
	// send: the partner's published limit for callers like us, or where the
	// partner publishes none that binds us, our own ceiling, said so.
	Limit float64
	// Source is where Limit comes from (a URL, or the reasoning).
	Source string
}

// Pass is what Check returns for a finding that may be sent to the partner.
func Pass(t finding.TokenType) (finding.TokenType, finding.Reason, string) { return t, "", "" }

// Malformed is what Check returns for a token that fails its format.
func Malformed(t finding.TokenType, msg string) (finding.TokenType, finding.Reason, string) {
	return t, finding.ReasonMalformedToken, msg
}

// Unsupported is what Check returns for a token form no call can judge.
func Unsupported(t finding.TokenType, msg string) (finding.TokenType, finding.Reason, string) {
	return t, finding.ReasonUnsupportedTokenType, msg
}

// MatchFormat checks a token against its format; the message names the
// expected form, never the token.
func MatchFormat(t finding.TokenType, re *Pattern, tok, form string) (finding.TokenType, finding.Reason, string) {
	if !re.MatchString(tok) {
		return Malformed(t, fmt.Sprintf("token is not %s", form))
	}
	return Pass(t)
}

// Examine is the gate a finding passes before this partner is asked: its
// rule must be one of the partner's, it must have no schema problem, and it
// must pass Check. It returns the finding's route and, when the finding must
// not be sent, the terminal reason and a message without the token.
// registry.Check calls it for the partner a rule routes to.
func (d Definition) Examine(f finding.Finding) (finding.Route, finding.Reason, string) {
	for _, r := range d.Rules {
		if r.ID != f.RuleID {
			continue
		}
		rt := finding.Route{Partner: d.Name, TokenType: r.TokenType}
		if f.Problem != nil {
			return rt, finding.ReasonMalformedToken, f.Problem.Error()
		}
		tt, reason, msg := d.Check(r.TokenType, f)
		rt.TokenType = tt
		return rt, reason, msg
	}
	return finding.Route{}, finding.ReasonUnsupportedTokenType, fmt.Sprintf("%s does not verify rule_id %s", d.Name, finding.QuoteRule(f.RuleID))
}
