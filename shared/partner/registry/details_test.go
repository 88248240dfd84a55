package registry

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
)

// contractDetails are the details keys CONTRACT.md §7 names per partner's
// token type: each must be declared (a partner may declare more).
var contractDetails = map[finding.Partner]map[finding.TokenType][]string{
	"aws":      {"aws_access_key": {"aws_account_id", "canary"}},
	"gcp":      {"gcp_service_account_key": {"gcp_client_email"}},
	"github":   {"github_pat": {"github_login", "scopes"}},
	"gitlab":   {"gitlab_personal_access_token": {"scopes", "expires_at"}},
	"heroku":   {"heroku_api_key": {"heroku_account_id"}},
	"sendgrid": {"sendgrid_api_key": {"scopes"}},
	"slack":    {"slack_bot_token": {"slack_team_id", "slack_user_id"}, "slack_user_token": {"slack_team_id", "slack_user_id"}},
	"npm":      {"npm_access_token": {"npm_username"}},
}

// declaration is the Go a partner's Definition needs for its Details, to
// quote in a failure message.
func declaration(name finding.Partner, types []finding.TokenType) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Details: map[finding.TokenType][]string{")
	for _, tt := range types {
		keys := contractDetails[name][tt]
		quoted := make([]string, len(keys))
		for i, k := range keys {
			quoted[i] = fmt.Sprintf("%q", k)
		}
		fmt.Fprintf(&b, "%q: {%s}, ", tt, strings.Join(quoted, ", "))
	}
	return strings.TrimSuffix(b.String(), ", ") + "}"
}

// TestEveryTokenTypeDeclaresItsDetails: every token type of every partner
// has a Details entry (empty when it carries none), holding at least the
// keys the contract names for it.
func TestEveryTokenTypeDeclaresItsDetails(t *testing.T) {
	for _, d := range All() {
		var missing []finding.TokenType
		for _, tt := range d.TokenTypes {
			if _, ok := d.Details[tt]; !ok {
				missing = append(missing, tt)
			}
		}
		if len(missing) > 0 {
			t.Errorf("partner %s declares no details for %v: add to its Definition (shared/partner/%s/definition.go)\n\t%s\n"+
				"with the details keys its verifier sets ({} for a type that carries none), and a row per token type to README's \"What a live key can do\" table",
				d.Name, missing, d.Name, declaration(d.Name, missing))
		}
		for tt, keys := range contractDetails[d.Name] {
			for _, k := range keys {
				if !slices.Contains(d.Details[tt], k) {
					t.Errorf("partner %s: the contract gives %s results details.%s: add %q to Details[%q]", d.Name, tt, k, k, tt)
				}
			}
		}
	}
}

// TestREADMEDetailsTable: README's "What a live key can do" table has one
// row per token type of the registry, naming exactly its declared keys.
func TestREADMEDetailsTable(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(raw), "## What a live key can do\n")
	if !ok {
		t.Fatal(`README has no "## What a live key can do" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	row := regexp.MustCompile("(?m)^\\| `([a-z0-9_]+)` \\| (.*) \\|$")
	code := regexp.MustCompile("`([a-z0-9_]+)`")
	rows := map[finding.TokenType][]string{}
	for _, m := range row.FindAllStringSubmatch(section, -1) {
		keys := []string{}
		for _, k := range code.FindAllStringSubmatch(m[2], -1) {
			keys = append(keys, k[1])
		}
		rows[finding.TokenType(m[1])] = keys
	}
	seen := map[finding.TokenType]bool{}
	for _, d := range All() {
		for _, tt := range d.TokenTypes {
			seen[tt] = true
			got, ok := rows[tt]
			want := slices.Sorted(slices.Values(d.Details[tt]))
			slices.Sort(got)
			switch {
			case !ok:
				t.Errorf("README's \"What a live key can do\" table has no row for %s (%s): add | `%s` | %s |", tt, d.Name, tt, cell(want))
			case !slices.Equal(got, want):
				t.Errorf("README's row for %s names %v, the registry declares %v: make it | `%s` | %s |", tt, got, want, tt, cell(want))
			}
		}
	}
	for tt := range rows {
		if !seen[tt] {
			t.Errorf("README's \"What a live key can do\" table has a row for %s, which no partner verifies", tt)
		}
	}
}

// cell is a README details cell for keys.
func cell(keys []string) string {
	if len(keys) == 0 {
		return "none"
	}
	quoted := make([]string, len(keys))
	for i, k := range keys {
		quoted[i] = "`" + k + "`"
	}
	return strings.Join(quoted, ", ")
}
