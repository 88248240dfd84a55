package pipeline

import (
	"strings"
	"testing"
	"time"
)

// TestEnvDuration: one duration syntax and one error style for every
// duration a function reads (PARTNER_TIMEOUT, RETRY_BACKOFF_BASE, ...).
func TestEnvDuration(t *testing.T) {
	tests := []struct {
		value   string
		want    time.Duration
		wantErr bool
	}{
		{"", 0, false},
		{"  ", 0, false},
		{"10s", 10 * time.Second, false},
		{" 2500ms ", 2500 * time.Millisecond, false},
		{"10", 0, true},
		{"0s", 0, true},
		{"-1s", 0, true},
		{"soon", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.value, func(t *testing.T) {
			e := &env{getenv: func(string) string { return tc.value }}
			got := e.duration(EnvPartnerTimeout, 0)
			if (e.err != nil) != tc.wantErr || (!tc.wantErr && got != tc.want) {
				t.Fatalf("duration with %q = %v, %v; want %v (error %v)", tc.value, got, e.err, tc.want, tc.wantErr)
			}
			if e.err != nil && !strings.HasPrefix(e.err.Error(), "config: PARTNER_TIMEOUT=") || e.err != nil && !strings.Contains(e.err.Error(), ": want a positive Go duration") {
				t.Errorf("error %q is not in the form config: NAME=value: want ...", e.err)
			}
		})
	}
}
