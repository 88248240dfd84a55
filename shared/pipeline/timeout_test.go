package pipeline

import (
	"testing"
	"time"
)

func TestPartnerTimeout(t *testing.T) {
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
			t.Setenv(EnvPartnerTimeout, tc.value)
			got, err := PartnerTimeout()
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("PartnerTimeout() with %q = %v, %v; want %v (error %v)", tc.value, got, err, tc.want, tc.wantErr)
			}
		})
	}
}
