package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/postmandouble"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/sandbox"
)

// TestRegisterCredentials posts credentials to the admin handler: a good
// body makes the Postman key live, bad bodies are refused without echoing them.
func TestRegisterCredentials(t *testing.T) {
	s, err := sandbox.Start(sandbox.Addrs{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	admin := httptest.NewServer(adminHandler(s))
	defer admin.Close()
	key := postmandouble.NewAPIKey()

	meStatus := func() int {
		req, _ := http.NewRequest(http.MethodGet, s.Postman.URL+"/me", nil)
		req.Header.Set("X-API-Key", key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	tests := []struct {
		name      string
		body      string
		want      int
		wantMeNow int
	}{
		{"not JSON", "postman_api_keys=" + key, http.StatusBadRequest, http.StatusUnauthorized},
		{"unknown partner", `{"nosuchpartner":[{"token":"` + key + `"}]}`, http.StatusBadRequest, http.StatusUnauthorized},
		{"unknown field", `{"postman":[{"tokens":"` + key + `"}]}`, http.StatusBadRequest, http.StatusUnauthorized},
		{"empty key", `{"postman":[{"token":"` + key + `"},{"token":""}]}`, http.StatusBadRequest, http.StatusUnauthorized},
		{"registered", `{"postman":[{"rule_id":"Postman API token","token":"` + key + `"}]}`, http.StatusNoContent, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := http.Post(admin.URL+"/credentials", "application/json", strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			answer, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("POST /credentials = %d, want %d", resp.StatusCode, tt.want)
			}
			if strings.Contains(string(answer), key) {
				t.Fatal("answer echoes the key")
			}
			if got := meStatus(); got != tt.wantMeNow {
				t.Fatalf("GET /me with the key = %d, want %d", got, tt.wantMeNow)
			}
		})
	}
}
