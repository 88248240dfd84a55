package pipeline

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestEnvDuration: one duration syntax for every duration a function reads
// (a Go duration or whole seconds) and one error style.
func TestEnvDuration(t *testing.T) {
	tests := []struct {
		value   string
		zeroOff bool
		want    time.Duration
		wantErr bool
	}{
		{"", false, 0, false},
		{"  ", false, 0, false},
		{"10s", false, 10 * time.Second, false},
		{" 2500ms ", false, 2500 * time.Millisecond, false},
		{"30", false, 30 * time.Second, false},
		{"15m", false, 15 * time.Minute, false},
		{"0s", false, 0, true},
		{"0", false, 0, true},
		{"0", true, -1, false},
		{"0s", true, -1, false},
		{"-1s", false, 0, true},
		{"-1m", true, 0, true},
		{"soon", false, 0, true},
		{"0.5", false, 0, true},
		{"99999999999", true, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.value, func(t *testing.T) {
			e := &env{getenv: func(string) string { return tc.value }}
			got := e.duration(EnvPartnerTimeout, 0, tc.zeroOff)
			if (e.err != nil) != tc.wantErr || (!tc.wantErr && got != tc.want) {
				t.Fatalf("duration(%q, zeroOff %v) = %v, %v; want %v (error %v)", tc.value, tc.zeroOff, got, e.err, tc.want, tc.wantErr)
			}
			if e.err != nil && (!strings.HasPrefix(e.err.Error(), "config: PARTNER_TIMEOUT=") || !strings.Contains(e.err.Error(), ": want ")) {
				t.Errorf("error %q is not in the form config: NAME=value: want ...", e.err)
			}
		})
	}
}

// TestEnvFirstErrorWins: a loader reads straight through; the first bad
// variable is the one reported, and later reads do not replace it.
func TestEnvFirstErrorWins(t *testing.T) {
	vals := map[string]string{"A": "x", "B": "-3"}
	e := &env{getenv: func(k string) string { return vals[k] }}
	e.positiveInt("A", 1)
	e.positiveInt("B", 1)
	e.required("C")
	if e.err == nil || !strings.Contains(e.err.Error(), "config: A=") {
		t.Fatalf("err = %v, want A's", e.err)
	}
}

// TestPartnerWorkerFromEnv: the partner function's loader names the
// variable that is wrong, for each variable it reads, and starts with a
// good environment.
func TestPartnerWorkerFromEnv(t *testing.T) {
	good := map[string]string{
		EnvPartner: "postman", EnvResultsQueue: "http://127.0.0.1:1/000000000000/results",
		"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x",
	}
	bad := []struct{ name, value, want string }{
		{EnvPartner, "nosuchpartner", "want one of"},
		{EnvResultsQueue, "", "is not set"},
		{EnvPartnerTimeout, "fast", "want a positive Go duration"},
		{EnvRatePerSecond, "-1", "want a positive number"},
		{EnvRateBurst, "0", "want a whole number from 1"},
		{EnvBackoffBase, "0", "want a positive Go duration"},
		{EnvMaxAttempts, "1000", "want a whole number from 1 to 999"},
		{EnvCacheSize, "-1", "want a whole number from 0"},
		{EnvCacheTTLActive, "-5m", "0 for off"},
		{EnvSendLinger, "soon", "0 for off"},
		{EnvConcurrency, "0", "want a whole number from 1"},
		{"FEATURE_FLAG_CACHE_TTL", "0", "want a positive Go duration"},
		{EnvLogLevel, "loud", "want debug, info, warn or error"},
		{"PARTNER_ENDPOINT_POSTMAN", "ftp://example.test", "PARTNER_ENDPOINT_POSTMAN"},
	}
	set := func(m map[string]string) {
		for _, k := range []string{EnvPartner, EnvResultsQueue, EnvPartnerTimeout, EnvRatePerSecond, EnvRateBurst, EnvBackoffBase,
			EnvMaxAttempts, EnvCacheSize, EnvCacheTTLActive, EnvSendLinger, EnvConcurrency, "FEATURE_FLAG_CACHE_TTL", EnvLogLevel,
			"PARTNER_ENDPOINT_POSTMAN", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
			t.Setenv(k, m[k])
		}
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			m := map[string]string{}
			for k, v := range good {
				m[k] = v
			}
			m[tc.name] = tc.value
			set(m)
			_, err := PartnerWorkerFromEnv(context.Background())
			if err == nil || !strings.Contains(err.Error(), tc.name) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%s=%q: err = %v, want one naming it and %q", tc.name, tc.value, err, tc.want)
			}
		})
	}
	t.Run("good", func(t *testing.T) {
		m := map[string]string{EnvMaxAttempts: "3", EnvRateBurst: "2", EnvCacheSize: "0", EnvCacheTTLActive: "0"}
		for k, v := range good {
			m[k] = v
		}
		set(m)
		w, err := PartnerWorkerFromEnv(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if w.cfg.Partner != "postman" || w.cfg.MaxAttempts != 3 {
			t.Errorf("worker = %s, max attempts %d", w.cfg.Partner, w.cfg.MaxAttempts)
		}
	})
}
