package main

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/sandbox"
)

func TestParseRates(t *testing.T) {
	tests := []struct {
		in      string
		want    map[string]float64
		wantErr bool
	}{
		{"", map[string]float64{}, false},
		{"postman=3,aws=50", map[string]float64{"postman": 3, "aws": 50}, false},
		{"nosuchpartner=3", nil, true},
		{"postman", nil, true},
		{"postman=-1", nil, true},
		{"postman=x", nil, true},
	}
	for _, tt := range tests {
		got, err := parseRates(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("parseRates(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		for k, v := range tt.want {
			if got[k] != v {
				t.Errorf("parseRates(%q)[%s] = %v, want %v", tt.in, k, got[k], v)
			}
		}
	}
}

// TestSandboxServesSamplesAndEnforcesRate runs the real binary: the Postman
// double answers the sample key, enforces -rate with 429s and reports both
// on /stats.
func TestSandboxServesSamplesAndEnforcesRate(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "partner-sandbox")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-rate", "postman=1", "-env-file", "", "-admin", "127.0.0.1:0")
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }()
	env := map[string]string{}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		k, v, _ := strings.Cut(strings.TrimPrefix(sc.Text(), "export "), "=")
		env[k] = v
		if k == "PARTNER_SANDBOX_ADMIN" {
			break
		}
	}
	for _, k := range []string{"PARTNER_ENDPOINT_AWS_STS", "PARTNER_ENDPOINT_GCP_DISCOVERY", "PARTNER_ENDPOINT_GCP_OAUTH", "PARTNER_ENDPOINT_POSTMAN"} {
		if !strings.HasPrefix(env[k], "http://127.0.0.1:") {
			t.Fatalf("%s = %q, want a loopback URL", k, env[k])
		}
	}
	statuses := map[int]int{}
	for range 5 {
		req, _ := http.NewRequest(http.MethodGet, env["PARTNER_ENDPOINT_POSTMAN"]+"/me", nil)
		req.Header.Set("X-API-Key", sandbox.SamplePostmanKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		statuses[resp.StatusCode]++
	}
	if statuses[200] < 1 || statuses[429] < 1 {
		t.Fatalf("statuses = %v, want the sample accepted and the rate enforced", statuses)
	}
	var st Stats
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get(env["PARTNER_SANDBOX_ADMIN"] + "/stats")
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
		}
		if err == nil || time.Now().After(deadline) {
			break
		}
	}
	if st.Requests["postman"] != 5 || st.RateLimited["postman"] != int64(statuses[429]) {
		t.Fatalf("stats = %+v, want 5 postman requests and %d rate-limited", st, statuses[429])
	}
}
