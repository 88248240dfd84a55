package featureflag

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/textfit"

	featureflags "gitlab.com/gitlab-org/secret-detection/partner-token-verification/config/feature_flags"
)

// StoreAPI is the part of the SSM client the store uses.
type StoreAPI interface {
	GetParameterAPI
	PutParameter(ctx context.Context, in *ssm.PutParameterInput, optFns ...func(*ssm.Options)) (*ssm.PutParameterOutput, error)
}

// Store reads and writes flag parameters for the `feature` command and other
// operator tooling. Every write goes through SSM's own version history.
type Store struct {
	api StoreAPI
	now func() time.Time
}

// NewStore returns a store over an SSM client; now is the clock of
// updated_at (nil means time.Now).
func NewStore(api StoreAPI, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{api: api, now: now}
}

// State is a flag's parameter as found in one environment.
type State struct {
	Flag      string `json:"flag"`
	Parameter string `json:"parameter"`
	// Found is false when the parameter is absent; Value is then the
	// definition's default.
	Found        bool      `json:"found"`
	Version      int64     `json:"version,omitempty"`
	LastModified time.Time `json:"last_modified,omitzero"`
	Value        Value     `json:"value"`
	// Raw is the stored text, kept so an invalid value can be shown.
	Raw string `json:"raw,omitempty"`
	// Invalid says why the stored text is not a valid value; Value is then zero.
	Invalid string `json:"invalid,omitempty"`
}

// Get reads a flag's parameter. The flag must have a definition, since an
// absent parameter means its default. An invalid stored value is not an
// error here: the state says so, and Set can still roll it back.
func (s *Store) Get(ctx context.Context, flag, parameter string) (State, error) {
	def, err := definition(flag)
	if err != nil {
		return State{}, fmt.Errorf("get feature flag: %w", err)
	}
	st, err := ReadParameter(ctx, s.api, flag, parameter)
	if err != nil {
		return State{}, err
	}
	if !st.Found {
		st.Value = Value{Enabled: def.DefaultEnabled, Flag: flag}
	}
	return st, nil
}

// ReadParameter reads a flag's SSM parameter as it is stored: the one
// decoding of a parameter that the cached Reader, the Store and the rollout
// tool share. An absent parameter is no error: the state says Found false
// and leaves Value zero, for the caller to fill with the default it knows
// (the definition's, or none once the definition is gone). A stored text
// that is not a valid value is no error either: Invalid says why and Raw
// keeps the text. An error means SSM could not be read; it names the
// parameter.
func ReadParameter(ctx context.Context, api GetParameterAPI, flag, parameter string) (State, error) {
	st := State{Flag: flag, Parameter: parameter}
	out, err := api.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(parameter)})
	var notFound *types.ParameterNotFound
	switch {
	case errors.As(err, &notFound):
		return st, nil
	case err != nil:
		return State{}, fmt.Errorf("get feature flag parameter %s: %w", parameter, err)
	case out.Parameter == nil:
		return State{}, fmt.Errorf("get feature flag parameter %s: SSM returned no parameter", parameter)
	}
	st.Found = true
	st.Version = out.Parameter.Version
	st.LastModified = aws.ToTime(out.Parameter.LastModifiedDate)
	st.Raw = aws.ToString(out.Parameter.Value)
	if v, err := Decode(flag, []byte(st.Raw)); err != nil {
		st.Invalid = err.Error()
	} else {
		st.Value = v
	}
	return st, nil
}

// Meta is what a write records about itself.
type Meta struct {
	By     string
	Reason string
}

// Update is the outcome of one Set in one environment.
type Update struct {
	Before State `json:"before"`
	After  State `json:"after"`
	// Changed is false when the change leaves the gates as they were; an
	// existing parameter is then not written again.
	Changed bool `json:"changed"`
	// Written is true when a new parameter version was stored.
	Written bool `json:"written"`
	// Concurrent is true when SSM's new version is not the one after
	// Before's: someone else wrote in between, and their write was replaced.
	Concurrent bool `json:"concurrent,omitempty"`
}

// Set applies a change to a flag's parameter and writes the result as a new
// version with updated_at and updated_by, unless dryRun is set or nothing
// changes. An absent parameter is always written, so that "off" holds even
// once the definition's default becomes "on".
func (s *Store) Set(ctx context.Context, flag, parameter string, c Change, meta Meta, dryRun bool) (Update, error) {
	if err := c.Validate(); err != nil {
		return Update{}, fmt.Errorf("set feature flag %s: %w", flag, err)
	}
	if strings.TrimSpace(meta.By) == "" {
		return Update{}, fmt.Errorf("set feature flag %s: updated_by is empty", flag)
	}
	before, err := s.Get(ctx, flag, parameter)
	if err != nil {
		return Update{}, err
	}
	base := before.Value
	if before.Invalid != "" {
		if !c.IsRollback() {
			return Update{Before: before}, fmt.Errorf("set feature flag %s: parameter %s version %d holds an invalid value (%s); only `false` with no option (everything off) can replace it",
				flag, parameter, before.Version, before.Invalid)
		}
		base = Value{Flag: flag}
	}
	after := c.Apply(base)
	after.Flag = flag
	u := Update{Before: before, After: before, Changed: before.Invalid != "" || !before.Found || !after.SameGates(before.Value)}
	if !u.Changed {
		return u, nil
	}
	after.UpdatedAt = s.now().UTC().Truncate(time.Second)
	after.UpdatedBy = meta.By
	after.Reason = meta.Reason
	if err := after.Validate(); err != nil {
		return Update{Before: before}, fmt.Errorf("set feature flag %s: %w", flag, err)
	}
	u.After = State{Flag: flag, Parameter: parameter, Found: true, Value: after}
	if dryRun {
		return u, nil
	}
	data, err := after.MarshalJSON()
	if err != nil {
		return Update{Before: before}, fmt.Errorf("set feature flag %s: encode value: %w", flag, err)
	}
	in := &ssm.PutParameterInput{
		Name:      aws.String(parameter),
		Value:     aws.String(string(data)),
		Type:      types.ParameterTypeString,
		Overwrite: aws.Bool(true),
	}
	if !before.Found {
		if def, ok := featureflags.Lookup(flag); ok {
			in.Description = aws.String(description(def))
		}
	}
	out, err := s.api.PutParameter(ctx, in)
	if err != nil {
		return Update{Before: before}, fmt.Errorf("put feature flag parameter %s: %w", parameter, err)
	}
	u.Written = true
	u.After.Version = out.Version
	u.After.Raw = string(data)
	u.Concurrent = before.Found && out.Version != before.Version+1
	return u, nil
}

// description is the parameter's SSM description, which points a person who
// finds it in the console to the flag's rollout issue.
func description(def featureflags.Definition) string {
	d := "Feature flag " + def.Name + ", written by the feature command; rollout: " + def.RolloutIssueURL
	return textfit.Fit(d, 1024)
}
