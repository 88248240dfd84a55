package scanreport

import (
	"regexp"
	"strings"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/registry"
)

// truffleHogRules maps TruffleHog detector names to rule ids of contract
// §7. The names are TruffleHog's DetectorType enum
// (proto/detectors.proto of github.com/trufflesecurity/trufflehog/v3),
// which its --json output prints as DetectorName; each detector lives in
// pkg/detectors/<name>/. Where §7 has a gitleaks rule id of the same token
// type it is used; Slack's detector finds bot and user tokens alike, so it
// takes GitLab's one rule id for both.
var truffleHogRules = map[string]string{
	"AWS":          "aws-access-token",             // pkg/detectors/aws/access_keys: Raw = key id, RawV2 = key id ":" secret
	"GCP":          "Google (GCP) Service-account", // pkg/detectors/gcp: a service-account key file
	"GoogleOauth2": "GCP OAuth access token",       // pkg/detectors/googleoauth2: ya29. access tokens
	"Postman":      "postman-api-token",            // pkg/detectors/postman: PMAK- keys
	"Github":       "github-pat",                   // pkg/detectors/github: ghp_/gho_/ghu_/ghs_/ghr_/github_pat_ (typed by prefix)
	"Gitlab":       "gitlab-pat",                   // pkg/detectors/gitlab: glpat- tokens
	"OpenAI":       "openai-api-key",               // pkg/detectors/openai
	"Anthropic":    "anthropic-api-key",            // pkg/detectors/anthropic: sk-ant-api03- keys
	"Heroku":       "heroku-api-key",               // pkg/detectors/heroku: UUID keys next to "heroku"
	"Stripe":       "stripe-access-token",          // pkg/detectors/stripe: sk_live_/rk_live_ keys
	"SendGrid":     "sendgrid-api-token",           // pkg/detectors/sendgrid: SG. keys
	"Slack":        "Slack token",                  // pkg/detectors/slack: xoxb-/xoxp-/… tokens
	"NpmToken":     "npm-access-token",             // pkg/detectors/npmtoken: npm_ tokens
}

// unmappedPrefix starts the rule id of a TruffleHog detector without a §7
// rule id, so that its name can never be taken for a routed rule id.
const unmappedPrefix = "trufflehog:"

// TruffleHogRule returns the rule id a TruffleHog detector's finding is
// sent under, and whether the detector has a rule id of §7.
func TruffleHogRule(detector string) (string, bool) {
	if r, ok := truffleHogRules[detector]; ok {
		return r, true
	}
	return unmappedPrefix + detector, false
}

// routed is every rule id some partner verifies.
var routed = func() map[string]finding.Partner {
	m := map[string]finding.Partner{}
	for _, d := range registry.All() {
		for _, r := range d.Rules {
			m[r.ID] = d.Name
		}
	}
	return m
}()

// PartnerOf returns the partner that verifies a rule id ("" when none does:
// such a finding comes back unsupported_token_type).
func PartnerOf(rule string) finding.Partner { return routed[rule] }

// awsSecret is the form of an AWS secret access key.
var awsSecret = regexp.MustCompile(`^[A-Za-z0-9/+=]{40}$`)

// awsPair splits TruffleHog's AWS RawV2 into key id and secret: current
// releases write id ":" secret, older ones id and secret run together.
func awsPair(rule, raw, rawV2 string) (id, secret string, ok bool) {
	if routed[rule] != finding.PartnerAWS || raw == "" || !strings.HasPrefix(rawV2, raw) {
		return "", "", false
	}
	rest := strings.TrimPrefix(strings.TrimPrefix(rawV2, raw), ":")
	if !awsSecret.MatchString(rest) {
		return "", "", false
	}
	return raw, rest, true
}

// pairGitleaksAWS gives each AWS key id of a gitleaks report the secret
// access key found beside it: gitleaks has no rule for the secret alone,
// but its generic-api-key rule (or a custom one) reports
// `aws_secret_access_key = …` as a finding of its own. A candidate is a
// finding in the same file and commit whose secret has the form of an AWS
// secret key and whose match or rule names a secret; the nearest line
// wins. Without one, the key id is sent alone and the AWS function checks
// it with its probe signature.
func pairGitleaksAWS(es []Entry, found []gitleaksFinding) int {
	paired := 0
	for i := range es {
		if routed[es[i].Finding.RuleID] != finding.PartnerAWS {
			continue
		}
		best, dist := -1, 0
		for j, g := range found {
			if j == i || g.File != es[i].File || g.Commit != es[i].Commit || !awsSecret.MatchString(g.Secret) {
				continue
			}
			if !strings.Contains(strings.ToLower(g.Match), "secret") && !strings.Contains(strings.ToLower(g.RuleID), "secret") {
				continue
			}
			d := g.StartLine - es[i].Line
			if d < 0 {
				d = -d
			}
			if best < 0 || d < dist {
				best, dist = j, d
			}
		}
		if best >= 0 {
			es[i].Finding.Context = map[string]finding.Secret{finding.ContextAWSSecretAccessKey: finding.Secret(found[best].Secret)}
			paired++
		}
	}
	return paired
}
