// Package registry is the one list of partners. Adding a partner is one
// line here and one package under shared/partner (docs/adding-a-partner.md):
// routing, the partner function, the flag's partner names, the local stack
// and the documentation tables all read this list.
package registry

import (
	"fmt"
	"slices"
	"strings"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner"
	anthropicpartner "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/anthropic"
	awspartner "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/aws"
	gcppartner "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/gcp"
	githubpartner "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/github"
	gitlabpartner "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/gitlab"
	herokupartner "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/heroku"
	npmpartner "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/npm"
	openaipartner "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/openai"
	postmanpartner "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/postman"
	sendgridpartner "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/sendgrid"
	slackpartner "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/slack"
	stripepartner "gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/stripe"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partnerhttp"
)

// all is the list, in the order tables and summaries show partners.
var all = []partner.Definition{
	awspartner.Definition,
	gcppartner.Definition,
	postmanpartner.Definition,
	herokupartner.Definition,
	openaipartner.Definition,
	stripepartner.Definition,
	githubpartner.Definition,
	anthropicpartner.Definition,
	sendgridpartner.Definition,
	npmpartner.Definition,
	slackpartner.Definition,
	gitlabpartner.Definition,
}

// routes maps every rule id of every partner to its partner and token type.
var routes = func() map[string]route {
	m, err := buildRoutes(all)
	if err != nil {
		panic("registry: " + err.Error())
	}
	return m
}()

type route struct {
	def  *partner.Definition
	rule finding.TokenType
}

// buildRoutes indexes defs by rule id and rejects a list in which a name or
// a rule id appears twice, or a definition lacks what every partner needs.
func buildRoutes(defs []partner.Definition) (map[string]route, error) {
	m := map[string]route{}
	names := map[finding.Partner]bool{}
	for i := range defs {
		d := &defs[i]
		switch {
		case d.Name == "" || strings.ToLower(string(d.Name)) != string(d.Name):
			return nil, fmt.Errorf("partner %d: name %q must be lower case and not empty", i, d.Name)
		case names[d.Name]:
			return nil, fmt.Errorf("partner %s listed twice", d.Name)
		case d.Check == nil || d.New == nil || len(d.Rules) == 0 || len(d.Endpoints) == 0 || d.Rate.PerSecond <= 0 || d.Rate.Burst < 1:
			return nil, fmt.Errorf("partner %s: rules, endpoints, rate, Check and New are required", d.Name)
		}
		names[d.Name] = true
		for tt := range d.Details {
			if !slices.Contains(d.TokenTypes, tt) {
				return nil, fmt.Errorf("partner %s: Details declares token type %s, not in TokenTypes", d.Name, tt)
			}
		}
		for _, r := range d.Rules {
			if prev, ok := m[r.ID]; ok {
				return nil, fmt.Errorf("rule id %q routed to both %s and %s", r.ID, prev.def.Name, d.Name)
			}
			if !slices.Contains(d.TokenTypes, r.TokenType) {
				return nil, fmt.Errorf("partner %s: rule %q names token type %s, not in TokenTypes", d.Name, r.ID, r.TokenType)
			}
			m[r.ID] = route{def: d, rule: r.TokenType}
		}
	}
	return m, nil
}

// All returns every partner's definition, in the registry's order.
func All() []partner.Definition { return slices.Clone(all) }

// Names returns every partner's name, in the registry's order.
func Names() []finding.Partner {
	out := make([]finding.Partner, len(all))
	for i, d := range all {
		out[i] = d.Name
	}
	return out
}

// Lookup returns a partner's definition by name.
func Lookup(name string) (partner.Definition, bool) {
	for _, d := range all {
		if string(d.Name) == name {
			return d, true
		}
	}
	return partner.Definition{}, false
}

// Check is the gate every finding passes before any partner call, in the
// dispatcher and again in the partner function (a message put straight on
// a partner queue is held to the same rules). It returns the finding's
// route (zero when no partner verifies its rule) and, when the finding must
// not reach the partner, the terminal reason and a message that names the
// problem without quoting the token.
func Check(f finding.Finding) (finding.Route, finding.Reason, string) {
	r, ok := routes[f.RuleID]
	if !ok {
		if f.Problem != nil {
			return finding.Route{}, finding.ReasonMalformedToken, f.Problem.Error()
		}
		return finding.Route{}, finding.ReasonUnsupportedTokenType, "no partner verifies rule_id " + finding.QuoteRule(f.RuleID)
	}
	return r.def.Examine(f)
}

// Known returns the details of f that its route's partner knows without
// a call (partner.Definition.Known), for every result of f; nil when the
// route has no partner or the partner knows none.
func Known(rt finding.Route, f finding.Finding) finding.Details {
	d, ok := Lookup(string(rt.Partner))
	if !ok || d.Known == nil {
		return nil
	}
	return d.Known(f)
}

// Options reads a partner's endpoints from the environment (each
// PARTNER_ENDPOINT_… variable, or the partner's real URL when unset) into
// the options its verifier is built with.
func Options(d partner.Definition, getenv func(string) string) (partnerhttp.Options, error) {
	o := partnerhttp.Options{Partner: d.Name}
	for _, e := range d.Endpoints {
		u, err := partnerhttp.ParseEndpoint(e.Env, getenv(e.Env), e.Default)
		if err != nil {
			return partnerhttp.Options{}, err
		}
		o.Endpoints = append(o.Endpoints, u)
	}
	return o, nil
}
