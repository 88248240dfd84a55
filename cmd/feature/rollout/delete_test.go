package rollout

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/awstest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/featureflag"
)

func TestDeleteOnMoto(t *testing.T) {
	api := ssm.NewFromConfig(awstest.Shared(t).Config())
	ctx := context.Background()
	param := "/test/TestDeleteOnMoto/" + flag
	now := func() time.Time { return time.Date(2026, 11, 20, 9, 30, 0, 0, time.UTC) }
	if _, err := featureflag.NewStore(api, now).Set(ctx, flag, param, featureflag.Change{Enable: true}, featureflag.Meta{By: "alice"}, false); err != nil {
		t.Fatal(err)
	}

	d, err := Delete(ctx, api, flag, param, true)
	if err != nil || d.Deleted || !d.Before.Found || DescribeState(d.Before) != "on globally" {
		t.Fatalf("dry-run Delete = %+v (%s), %v", d, DescribeState(d.Before), err)
	}
	if st, _ := featureflag.ReadParameter(ctx, api, flag, param); !st.Found {
		t.Fatal("dry-run Delete deleted")
	}
	d, err = Delete(ctx, api, flag, param, false)
	if err != nil || !d.Deleted || d.Before.Version != 1 {
		t.Fatalf("Delete = %+v, %v", d, err)
	}
	if st, _ := featureflag.ReadParameter(ctx, api, flag, param); st.Found {
		t.Fatal("parameter still there after Delete")
	}
	d, err = Delete(ctx, api, flag, param, false)
	if err != nil || d.Deleted || d.Before.Found {
		t.Fatalf("Delete of an absent parameter = %+v, %v", d, err)
	}
	if _, err := Delete(ctx, api, "../etc", param, false); err == nil {
		t.Error("Delete accepted a name that is not a flag name")
	}
	// The plan's last step runs after the definition is gone.
	if _, err := api.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(param + "_removed"), Value: aws.String(`{}`), Type: types.ParameterTypeString}); err != nil {
		t.Fatal(err)
	}
	if d, err := Delete(ctx, api, "removed_flag", param+"_removed", false); err != nil || !d.Deleted {
		t.Errorf("Delete of a flag without definition = %+v, %v", d, err)
	}
}

func TestDescribeState(t *testing.T) {
	for _, tt := range []struct {
		st   featureflag.State
		want string
	}{
		{featureflag.State{}, "absent, definition default: off"},
		{featureflag.State{Found: true, Invalid: "not JSON"}, "INVALID value (functions fail until it is fixed): not JSON"},
		{featureflag.State{Found: true, Value: featureflag.Value{Enabled: true}}, "on globally"},
	} {
		if got := DescribeState(tt.st); !strings.HasPrefix(got, tt.want) {
			t.Errorf("DescribeState(%+v) = %q, want %q", tt.st, got, tt.want)
		}
	}
}
