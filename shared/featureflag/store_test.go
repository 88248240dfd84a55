package featureflag

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/awstest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
)

func TestMain(m *testing.M) { awstest.Main(m) }

// motoSSM returns an SSM client on the shared moto_server and a parameter
// name of the test's own, so tests sharing the server keep apart.
func motoSSM(t *testing.T) (*ssm.Client, string) {
	t.Helper()
	m := awstest.Shared(t)
	name := strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
	return ssm.NewFromConfig(m.Config()), "/test/" + name + "/" + flagName
}

var fixedNow = time.Date(2026, 11, 20, 9, 30, 0, 0, time.UTC)

func TestStoreLifecycleOnMoto(t *testing.T) {
	api, param := motoSSM(t)
	ctx := context.Background()
	s := NewStore(api, func() time.Time { return fixedNow })
	by := Meta{By: "alice"}

	st, err := s.Get(ctx, flagName, param)
	if err != nil || st.Found || st.Value.Enabled || st.Value.Describe() != "off" {
		t.Fatalf("Get absent = %+v, %v", st, err)
	}

	// Each step: the change, dry run or not, and the version and value the
	// parameter must hold afterwards.
	steps := []struct {
		name        string
		change      Change
		dryRun      bool
		wantChanged bool
		wantVersion int64
		wantJSON    string
	}{
		{"dry run on absent writes nothing", Change{Enable: true}, true, true, 0, ""},
		{"groups on production", Change{Enable: true, Groups: []string{"gitlab-org", "gitlab-com"}}, false, true, 1,
			`{"enabled":false,"groups":["gitlab-org","gitlab-com"],"projects":[],"percentage_of_actors":0,"updated_at":"2026-11-20T09:30:00Z","updated_by":"alice"}`},
		{"same groups again is not written", Change{Enable: true, Groups: []string{"gitlab-com"}}, false, false, 1, ""},
		{"global on", Change{Enable: true}, false, true, 2,
			`{"enabled":true,"groups":["gitlab-org","gitlab-com"],"projects":[],"percentage_of_actors":0,"updated_at":"2026-11-20T09:30:00Z","updated_by":"alice"}`},
		{"kill switch", Change{Partners: []finding.Partner{finding.PartnerPostman}}, false, true, 3,
			`{"enabled":true,"groups":["gitlab-org","gitlab-com"],"projects":[],"percentage_of_actors":0,"partners":{"postman":false},"updated_at":"2026-11-20T09:30:00Z","updated_by":"alice"}`},
		{"dry-run rollback writes nothing", Change{}, true, true, 3, ""},
		{"rollback", Change{}, false, true, 4,
			`{"enabled":false,"groups":[],"projects":[],"percentage_of_actors":0,"partners":{"postman":false},"updated_at":"2026-11-20T09:30:00Z","updated_by":"alice"}`},
		{"rollback again is not written", Change{}, false, false, 4, ""},
	}
	for _, step := range steps {
		u, err := s.Set(ctx, flagName, param, step.change, by, step.dryRun)
		if err != nil {
			t.Fatalf("%s: Set: %v", step.name, err)
		}
		if u.Changed != step.wantChanged || u.Written != (step.wantChanged && !step.dryRun) || u.Concurrent {
			t.Fatalf("%s: update %+v", step.name, u)
		}
		got, err := s.Get(ctx, flagName, param)
		if err != nil {
			t.Fatalf("%s: Get: %v", step.name, err)
		}
		if got.Version != step.wantVersion {
			t.Fatalf("%s: version %d, want %d", step.name, got.Version, step.wantVersion)
		}
		if u.Written {
			if u.After.Version != step.wantVersion || got.Raw != step.wantJSON || u.After.Raw != step.wantJSON {
				t.Fatalf("%s: stored %s (update says v%d %s)\nwant %s", step.name, got.Raw, u.After.Version, u.After.Raw, step.wantJSON)
			}
			if u.Before.Version != step.wantVersion-1 {
				t.Fatalf("%s: before version %d", step.name, u.Before.Version)
			}
		}
	}

	// The first write gave the parameter a description pointing at the rollout.
	desc, err := api.DescribeParameters(ctx, &ssm.DescribeParametersInput{
		ParameterFilters: []types.ParameterStringFilter{{Key: aws.String("Name"), Values: []string{param}}},
	})
	if err != nil || len(desc.Parameters) != 1 || !strings.Contains(aws.ToString(desc.Parameters[0].Description), "rollout: https://") {
		t.Errorf("DescribeParameters = %+v, %v", desc, err)
	}
	hist, err := api.GetParameterHistory(ctx, &ssm.GetParameterHistoryInput{Name: aws.String(param)})
	if err != nil || len(hist.Parameters) != 4 {
		t.Errorf("history has %d versions, want 4 (%v)", len(hist.Parameters), err)
	}
}

func TestStoreInvalidStoredValueOnMoto(t *testing.T) {
	api, param := motoSSM(t)
	ctx := context.Background()
	if _, err := api.PutParameter(ctx, &ssm.PutParameterInput{
		Name: aws.String(param), Value: aws.String(`{"enabled": yes}`), Type: types.ParameterTypeString,
	}); err != nil {
		t.Fatal(err)
	}
	s := NewStore(api, nil)
	st, err := s.Get(ctx, flagName, param)
	if err != nil || !st.Found || st.Invalid == "" || st.Raw != `{"enabled": yes}` {
		t.Fatalf("Get = %+v, %v", st, err)
	}
	// Anything but the full rollback refuses to build on a value it cannot read.
	_, err = s.Set(ctx, flagName, param, Change{Enable: true, Groups: []string{"gitlab-org"}}, Meta{By: "bob"}, false)
	if err == nil || !strings.Contains(err.Error(), "version 1 holds an invalid value") {
		t.Fatalf("Set on invalid = %v", err)
	}
	if st, _ := s.Get(ctx, flagName, param); st.Version != 1 {
		t.Fatalf("a refused Set wrote version %d", st.Version)
	}
	u, err := s.Set(ctx, flagName, param, Change{}, Meta{By: "bob", Reason: "broken value"}, false)
	if err != nil || !u.Written || u.After.Version != 2 {
		t.Fatalf("rollback over invalid = %+v, %v", u, err)
	}
	st, _ = s.Get(ctx, flagName, param)
	if st.Invalid != "" || !st.Value.Off() || st.Value.Reason != "broken value" {
		t.Fatalf("after rollback: %+v", st)
	}
}

// racingAPI writes another version just before the store's own write, as a
// second operator would.
type racingAPI struct {
	*ssm.Client
	raced bool
}

func (r *racingAPI) PutParameter(ctx context.Context, in *ssm.PutParameterInput, optFns ...func(*ssm.Options)) (*ssm.PutParameterOutput, error) {
	if !r.raced {
		r.raced = true
		other := *in
		other.Value = aws.String(`{"enabled": false, "projects": [9]}`)
		if _, err := r.Client.PutParameter(ctx, &other, optFns...); err != nil {
			return nil, err
		}
	}
	return r.Client.PutParameter(ctx, in, optFns...)
}

func TestStoreReportsConcurrentWriteOnMoto(t *testing.T) {
	api, param := motoSSM(t)
	ctx := context.Background()
	if _, err := NewStore(api, nil).Set(ctx, flagName, param, Change{}, Meta{By: "a"}, false); err != nil {
		t.Fatal(err)
	}
	u, err := NewStore(&racingAPI{Client: api}, nil).Set(ctx, flagName, param, Change{Enable: true}, Meta{By: "b"}, false)
	if err != nil || !u.Concurrent || u.Before.Version != 1 || u.After.Version != 3 {
		t.Fatalf("Set = %+v, %v; want a concurrent write reported", u, err)
	}
}

func TestStoreRefusesUndefinedFlagsAndEmptyAuthor(t *testing.T) {
	api, param := motoSSM(t)
	ctx := context.Background()
	s := NewStore(api, nil)
	if _, err := s.Get(ctx, "no_such_flag", param); err == nil || !strings.Contains(err.Error(), "has no definition") {
		t.Errorf("Get undefined = %v", err)
	}
	if _, err := s.Set(ctx, "no_such_flag", param, Change{Enable: true}, Meta{By: "a"}, false); err == nil || !strings.Contains(err.Error(), "has no definition") {
		t.Errorf("Set undefined = %v", err)
	}
	if _, err := s.Set(ctx, flagName, param, Change{Enable: true}, Meta{By: " "}, false); err == nil || !strings.Contains(err.Error(), "updated_by is empty") {
		t.Errorf("Set without author = %v", err)
	}
	if _, err := s.Set(ctx, flagName, param, Change{Enable: true, SetPercentage: true, Percentage: 200}, Meta{By: "a"}, false); err == nil {
		t.Error("Set accepted 200%")
	}
	if st, err := s.Get(ctx, flagName, param); err != nil || st.Found {
		t.Fatalf("a refused call wrote the parameter: %+v, %v", st, err)
	}
}

func TestReaderOnMoto(t *testing.T) {
	api, param := motoSSM(t)
	ctx := context.Background()
	tests := []struct {
		name    string
		put     string // "" deletes the parameter
		wantOn  bool
		wantErr string
	}{
		{"absent is the default", "", false, ""},
		{"group gate", `{"enabled": false, "groups": ["gitlab-org"]}`, true, ""},
		{"kill switch", `{"enabled": true, "partners": {"aws": false}}`, false, ""},
		{"not JSON names the parameter and version", `on`, false, param + " version 3: invalid value"},
	}
	for _, tt := range tests {
		if tt.put == "" {
			_, _ = api.DeleteParameter(ctx, &ssm.DeleteParameterInput{Name: aws.String(param)})
		} else if _, err := api.PutParameter(ctx, &ssm.PutParameterInput{
			Name: aws.String(param), Value: aws.String(tt.put), Type: types.ParameterTypeString, Overwrite: aws.Bool(true),
		}); err != nil {
			t.Fatal(err)
		}
		r, err := NewReader(api, flagName, ReaderOptions{Parameter: param})
		if err != nil {
			t.Fatal(err)
		}
		on, err := r.EnabledFor(ctx, anyProject, finding.PartnerAWS)
		if tt.wantErr != "" {
			var iv *InvalidValueError
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.As(err, &iv) {
				t.Errorf("%s: err = %v, want %q", tt.name, err, tt.wantErr)
			}
			continue
		}
		if err != nil || on != tt.wantOn {
			t.Errorf("%s: EnabledFor = %v, %v; want %v", tt.name, on, err, tt.wantOn)
		}
	}
}

// TestRollbackBoundOnMoto is the rollback bound at this level: with the real
// clock and a 100ms TTL, a reader that saw the flag on says off once the TTL
// has passed after the rollback write.
func TestRollbackBoundOnMoto(t *testing.T) {
	api, param := motoSSM(t)
	ctx := context.Background()
	s := NewStore(api, nil)
	if _, err := s.Set(ctx, flagName, param, Change{Enable: true}, Meta{By: "t"}, false); err != nil {
		t.Fatal(err)
	}
	const ttl = 100 * time.Millisecond
	r, err := NewReader(api, flagName, ReaderOptions{Parameter: param, TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	if on, err := r.EnabledFor(ctx, anyProject, finding.PartnerGCP); err != nil || !on {
		t.Fatalf("before rollback: %v, %v", on, err)
	}
	if _, err := s.Set(ctx, flagName, param, Change{}, Meta{By: "t"}, false); err != nil {
		t.Fatal(err)
	}
	rolledBack := time.Now()
	time.Sleep(ttl)
	on, err := r.EnabledFor(ctx, anyProject, finding.PartnerGCP)
	if err != nil || on {
		t.Fatalf("%v after the rollback (TTL %v): enabled = %v, %v", time.Since(rolledBack), ttl, on, err)
	}
}
