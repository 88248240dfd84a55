package finding

import (
	"encoding/json"
	"fmt"
	"regexp"
	"time"
)

// Status is a result's verdict (contract §3).
type Status string

// The statuses of contract §3.
const (
	StatusActive   Status = "active"
	StatusInactive Status = "inactive"
	StatusUnknown  Status = "unknown"
)

// Reason explains a status (contract §3).
type Reason string

// The reasons of contract §3.
const (
	ReasonPartnerConfirmed     Reason = "partner_confirmed"
	ReasonPartnerRejected      Reason = "partner_rejected"
	ReasonUnsupportedTokenType Reason = "unsupported_token_type"
	ReasonMalformedToken       Reason = "malformed_token"
	ReasonMissingContext       Reason = "missing_context"
	ReasonFeatureDisabled      Reason = "feature_disabled"
	ReasonRateLimited          Reason = "rate_limited"
	ReasonCanaryToken          Reason = "canary_token"
	ReasonPartnerError         Reason = "partner_error"
)

// known reports whether r is one of the reasons of contract §3.
func (r Reason) known() bool {
	switch r {
	case ReasonPartnerConfirmed, ReasonPartnerRejected, ReasonUnsupportedTokenType, ReasonMalformedToken,
		ReasonMissingContext, ReasonFeatureDisabled, ReasonRateLimited, ReasonCanaryToken, ReasonPartnerError:
		return true
	}
	return false
}

// StatusOf is the status each reason implies; the contract fixes the pairing.
func StatusOf(r Reason) Status {
	switch r {
	case ReasonPartnerConfirmed:
		return StatusActive
	case ReasonPartnerRejected:
		return StatusInactive
	default:
		return StatusUnknown
	}
}

// Result is the one terminal outcome of a finding (contract §3).
type Result struct {
	Version     int       `json:"version"`
	ScanID      string    `json:"scan_id"`
	ProjectID   int64     `json:"project_id"`
	FindingID   string    `json:"finding_id"`
	RuleID      string    `json:"rule_id"`
	Partner     Partner   `json:"partner,omitempty"`
	TokenType   TokenType `json:"token_type,omitempty"`
	Status      Status    `json:"status"`
	Reason      Reason    `json:"reason"`
	Fingerprint string    `json:"fingerprint"`
	CheckedAt   time.Time `json:"checked_at"`
	Cached      bool      `json:"cached"`
	Details     Details   `json:"details,omitempty"`
	// Message says, for a person, why an unknown result was reached (the
	// validation error, the last partner fault). It never holds secrets.
	Message string `json:"message,omitempty"`
}

// NewResult starts the result of finding f from batch b on its route (the
// zero Route when no partner verifies its rule_id).
func NewResult(b Batch, f Finding, rt Route, reason Reason, now time.Time) Result {
	r := Result{
		Version:     1,
		ScanID:      b.ScanID,
		ProjectID:   b.Project.ID,
		FindingID:   f.ID,
		RuleID:      f.RuleID,
		Status:      StatusOf(reason),
		Reason:      reason,
		Fingerprint: f.Fingerprint(),
		CheckedAt:   now.UTC().Truncate(time.Second),
		Partner:     rt.Partner,
		TokenType:   rt.TokenType,
	}
	return r
}

// MarshalJSON writes checked_at as RFC 3339 UTC with seconds, as the contract
// shows. It refuses a result outside the contract (an unknown reason, a
// status the reason does not imply, an id the batch schema would refuse), so
// that a bug becomes a retried record, never a message the results consumer
// misreads.
func (r Result) MarshalJSON() ([]byte, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	type plain Result
	return json.Marshal(struct {
		plain
		CheckedAt string `json:"checked_at"`
	}{plain(r), r.CheckedAt.UTC().Format(time.RFC3339)})
}

// Details is a result's non-secret metadata (contract §3): strings such as
// an account id or a login, a list of strings for scopes, a boolean such as
// canary. Never a person's e-mail, never credential material.
type Details map[string]any

// ResultError says how a result breaks contract §3; it names fields and
// the contract's own words, never a value from a message.
type ResultError struct {
	Field string
	Msg   string
}

// Error names the field and what is wrong with it.
func (e *ResultError) Error() string { return "result: " + e.Field + ": " + e.Msg }

func (r Result) check() error {
	switch {
	case r.Version != 1:
		return &ResultError{"version", fmt.Sprintf("%d, want 1", r.Version)}
	case !r.Reason.known():
		return &ResultError{"reason", "not a reason of the contract"}
	case r.Status != StatusOf(r.Reason):
		return &ResultError{"status", fmt.Sprintf("must be %s for reason %s", StatusOf(r.Reason), r.Reason)}
	case r.ScanID == "" || checkID(r.ScanID) != "":
		return &ResultError{"scan_id", "empty, too long or with a control character"}
	case r.FindingID == "" || checkID(r.FindingID) != "":
		return &ResultError{"finding_id", "empty, too long or with a control character"}
	case r.ProjectID <= 0:
		return &ResultError{"project_id", "not a positive integer"}
	case !fingerprintRE.MatchString(r.Fingerprint):
		return &ResultError{"fingerprint", "not sha256: and 64 lowercase hex digits"}
	}
	return nil
}

var fingerprintRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
