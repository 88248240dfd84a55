package main

import (
	"strings"
	"testing"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/samtemplate"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
)

// TestTemplateBatches: the rate-bound rows run each partner at the batch
// size its event source has in template.yaml.
func TestTemplateBatches(t *testing.T) {
	root, err := samtemplate.FindRoot()
	if err != nil {
		t.Fatal(err)
	}
	got, err := templateBatches(root)
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := samtemplate.Load(root + "/" + samtemplate.FileName)
	if err != nil {
		t.Fatal(err)
	}
	for p, id := range map[finding.Partner]string{finding.PartnerAWS: "AwsFunction", finding.PartnerGCP: "GcpFunction", finding.PartnerPostman: "PostmanFunction"} {
		if want := tpl.Functions[id].SQSEvents[0].BatchSize; got[p] != want {
			t.Errorf("%s: batch %d, want %s's BatchSize %d", p, got[p], id, want)
		}
	}
}

func TestMissReason(t *testing.T) {
	o := options{latency: 100e6}
	r := row{bound: BoundConcurrency, throughput: 90}
	r.concurrent.handedBack = 3
	if got := missReason(r, o); got != "3 handed back, 0 failed without a delay, 0 429s" {
		t.Errorf("missReason = %q", got)
	}
	r.concurrent.handedBack = 0
	r.concurrent.partnerMS = []float64{110, 110}
	r.concurrent.slotUse = 0.99
	if got := missReason(r, o); !strings.Contains(got, "slower than -latency") {
		t.Errorf("missReason = %q, want the slow partner named", got)
	}
	r.concurrent.partnerMS = []float64{100, 100}
	r.concurrent.slotUse = 0.9
	if got := missReason(r, o); !strings.Contains(got, "slots idle") || !strings.Contains(got, "0.900 of concurrency ÷ the measured mean latency") {
		t.Errorf("missReason = %q, want idle slots and the measured ratio", got)
	}
}
