package finding

import (
	"encoding/json"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
)

func TestStatusOf(t *testing.T) {
	want := map[Reason]Status{
		ReasonPartnerConfirmed:     StatusActive,
		ReasonPartnerRejected:      StatusInactive,
		ReasonUnsupportedTokenType: StatusUnknown,
		ReasonMalformedToken:       StatusUnknown,
		ReasonMissingContext:       StatusUnknown,
		ReasonFeatureDisabled:      StatusUnknown,
		ReasonRateLimited:          StatusUnknown,
		ReasonPartnerError:         StatusUnknown,
		Reason("something_new"):    StatusUnknown,
	}
	for r, s := range want {
		if got := StatusOf(r); got != s {
			t.Errorf("StatusOf(%q) = %q, want %q", r, got, s)
		}
	}
}

func TestResultJSON(t *testing.T) {
	zone := time.FixedZone("CET", 3600)
	now := time.Date(2026, 11, 25, 19, 35, 16, 987654321, zone) // 18:35:16.98 UTC
	b := Batch{Version: 1, ScanID: "pipeline-88213", Project: Project{ID: 278964, FullPath: "gitlab-org/gitlab"}}
	tests := []struct {
		name     string
		f        Finding
		reason   Reason
		rt       Route
		mut      func(*Result)
		wantKeys []string
		want     map[string]any
	}{
		{
			name: "contract example",
			f:    Finding{ID: "f-1", RuleID: "AWS", Token: "test"}, rt: Route{PartnerAWS, TokenAWSAccessKey},
			reason: ReasonPartnerConfirmed,
			mut:    func(r *Result) { r.Details = Details{"aws_account_id": "123456789012"} },
			wantKeys: []string{"cached", "checked_at", "details", "finding_id", "fingerprint", "partner",
				"project_id", "reason", "rule_id", "scan_id", "status", "token_type", "version"},
			want: map[string]any{
				"version": 1.0, "scan_id": "pipeline-88213", "project_id": 278964.0, "finding_id": "f-1",
				"rule_id": "AWS", "partner": "aws", "token_type": "aws_access_key", "status": "active",
				"reason": "partner_confirmed", "cached": false, "checked_at": "2026-11-25T18:35:16Z",
				"fingerprint": "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
				"details":     map[string]any{"aws_account_id": "123456789012"},
			},
		},
		{
			name:   "unrouted rule omits partner and token_type",
			f:      Finding{ID: "f-2", RuleID: "Slack token", Token: "test"},
			reason: ReasonUnsupportedTokenType,
			mut:    func(r *Result) { r.Message = "no partner verifies rule_id" },
			wantKeys: []string{"cached", "checked_at", "finding_id", "fingerprint", "message",
				"project_id", "reason", "rule_id", "scan_id", "status", "version"},
			want: map[string]any{"status": "unknown", "reason": "unsupported_token_type", "message": "no partner verifies rule_id"},
		},
		{
			name: "cached inactive",
			f:    Finding{ID: "f-3", RuleID: "Postman API token", Token: "test"}, rt: Route{PartnerPostman, TokenPostmanAPIKey},
			reason: ReasonPartnerRejected,
			mut:    func(r *Result) { r.Cached = true },
			wantKeys: []string{"cached", "checked_at", "finding_id", "fingerprint", "partner",
				"project_id", "reason", "rule_id", "scan_id", "status", "token_type", "version"},
			want: map[string]any{"status": "inactive", "partner": "postman", "token_type": "postman_api_key", "cached": true},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := NewResult(b, tc.f, tc.rt, tc.reason, now)
			if tc.mut != nil {
				tc.mut(&r)
			}
			if !r.CheckedAt.Equal(time.Date(2026, 11, 25, 18, 35, 16, 0, time.UTC)) || r.CheckedAt.Location() != time.UTC {
				t.Errorf("CheckedAt = %v, want UTC truncated to the second", r.CheckedAt)
			}
			raw, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(raw), `"test"`) {
				t.Errorf("result JSON contains the token: %s", raw)
			}
			var got map[string]any
			if err := json.Unmarshal(raw, &got); err != nil {
				t.Fatal(err)
			}
			keys := make([]string, 0, len(got))
			for k := range got {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			if !reflect.DeepEqual(keys, tc.wantKeys) {
				t.Errorf("keys = %v\nwant   %v", keys, tc.wantKeys)
			}
			for k, v := range tc.want {
				if !reflect.DeepEqual(got[k], v) {
					t.Errorf("%s = %#v, want %#v", k, got[k], v)
				}
			}
			if got["checked_at"] != "2026-11-25T18:35:16Z" {
				t.Errorf("checked_at = %v", got["checked_at"])
			}
		})
	}
}

func TestResultJSONRoundTrip(t *testing.T) {
	r := NewResult(Batch{ScanID: "s", Project: Project{ID: 5}}, Finding{ID: "f", RuleID: "GCP API key", Token: "t0ken"}, Route{PartnerGCP, TokenGCPAPIKey}, ReasonRateLimited, time.Unix(1_800_000_000, 0))
	raw, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back Result
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatalf("a consumer cannot decode the result: %v", err)
	}
	if !back.CheckedAt.Equal(r.CheckedAt) || back.Status != StatusUnknown || back.Partner != PartnerGCP || back.Fingerprint != Fingerprint("t0ken") {
		t.Errorf("round trip = %+v", back)
	}
}
