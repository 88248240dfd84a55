package main

import (
	"encoding/json"
	"net/http"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/sandbox"
)

// maxCredentialsBody bounds a POST /credentials body (about 100 bytes per credential).
const maxCredentialsBody = 16 << 20

// registerCredentials serves POST /credentials: a JSON sandbox.Credentials
// whose entries become live, so that a benchmark can verify many distinct
// generated tokens. Answers never echo the body.
func registerCredentials(s *sandbox.Sandbox) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var c sandbox.Credentials
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxCredentialsBody))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			http.Error(w, "credentials: want a JSON object of partner name -> [{rule_id, token, context}]", http.StatusBadRequest)
			return
		}
		if err := s.Register(c); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}
