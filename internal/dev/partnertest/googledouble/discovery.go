package googledouble

import (
	"encoding/json"
	"net/http"
	"strings"
)

// DiscoveryPath is the API-key probe's path on the discovery endpoint.
const DiscoveryPath = "/discovery/v1/apis"

// googleError is Google's JSON error envelope (google.rpc.Status over HTTP).
type googleError struct {
	Error googleErrorBody `json:"error"`
}

type googleErrorBody struct {
	Code    int           `json:"code"`
	Message string        `json:"message"`
	Errors  []legacyError `json:"errors,omitempty"`
	Status  string        `json:"status"`
	Details []any         `json:"details,omitempty"`
}

// legacyError is the v1 "errors" array Google still sends next to details.
type legacyError struct {
	Message string `json:"message"`
	Domain  string `json:"domain"`
	Reason  string `json:"reason"`
}

type errorInfo struct {
	Type     string            `json:"@type"`
	Reason   string            `json:"reason"`
	Domain   string            `json:"domain"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

type localizedMessage struct {
	Type    string `json:"@type"`
	Locale  string `json:"locale"`
	Message string `json:"message"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.Header().Set("Vary", "Origin, X-Origin, Referer")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeGoogleError answers in Google's API error format
// (https://cloud.google.com/apis/design/errors: code, message, status,
// details with google.rpc.ErrorInfo; the v1 "errors" array is still sent by
// googleapis.com, as observed). reason "" leaves out the ErrorInfo detail,
// as some of Google's errors do. ../shared/PARTNERS.md has no Google section.
func writeGoogleError(w http.ResponseWriter, code int, status, legacyReason, reason, msg string, meta map[string]string) {
	body := googleErrorBody{
		Code:    code,
		Message: msg,
		Errors:  []legacyError{{Message: msg, Domain: "global", Reason: legacyReason}},
		Status:  status,
	}
	if reason != "" {
		body.Details = []any{
			errorInfo{Type: "type.googleapis.com/google.rpc.ErrorInfo", Reason: reason, Domain: "googleapis.com", Metadata: meta},
			localizedMessage{Type: "type.googleapis.com/google.rpc.LocalizedMessage", Locale: "en-US", Message: msg},
		}
	}
	writeJSON(w, code, googleError{Error: body})
}

// writeAPIError is the discovery server's partnertest.ErrorWriter: injected
// 500/503/429 faults in Google's API error format. 429 is RESOURCE_EXHAUSTED
// with reason RATE_LIMIT_EXCEEDED (cloud.google.com/apis/design/errors);
// Google documents no Retry-After or reset header for it, so the wait is
// whatever the fault layer sets, else the verifier's backoff.
func writeAPIError(w http.ResponseWriter, code int, _, _ string) {
	switch code {
	case http.StatusTooManyRequests:
		writeGoogleError(w, code, "RESOURCE_EXHAUSTED", "rateLimitExceeded", "RATE_LIMIT_EXCEEDED",
			"Quota exceeded for quota metric 'Queries' and limit 'Queries per minute' of service 'discovery.googleapis.com'.",
			map[string]string{"service": "discovery.googleapis.com"})
	case http.StatusServiceUnavailable:
		writeGoogleError(w, code, "UNAVAILABLE", "backendError", "", "The service is currently unavailable.", nil)
	default:
		writeGoogleError(w, code, "INTERNAL", "backendError", "", "Internal error encountered.", nil)
	}
}

const discoveryService = "discovery.googleapis.com"

func (d *Double) discoveryHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(DiscoveryPath, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			writeGoogleError(w, http.StatusMethodNotAllowed, "INVALID_ARGUMENT", "badRequest", "", "Method not allowed.", nil)
			return
		}
		q := r.URL.Query()
		// The key travels in X-Goog-Api-Key
		// (https://cloud.google.com/docs/authentication/api-keys-use). Without
		// it the public directory answers anyway (below).
		key := r.Header.Get("X-Goog-Api-Key")
		if qk := q.Get("key"); qk != "" {
			d.urlLeaks.Add(1)
			if key == "" {
				key = qk
			}
		}
		if key == "" {
			// The directory is public: without a key Google answers it anyway,
			// which is why a verifier that forgets to send the key learns nothing.
			d.writeDirectory(w, q.Get("name"), q.Get("preferred") == "true")
			return
		}
		d.Discovery.Controls.CountKey(key)
		mode, ok := d.apiKey(key)
		if !ok {
			// 400 INVALID_ARGUMENT, ErrorInfo reason API_KEY_INVALID, "API key
			// not valid. Please pass a valid API key." (observed in many public
			// issues, e.g. continuedev/continue#11759, micr0-dev/lexido#54).
			// Google does not say whether a deleted key and a never-issued one
			// answer alike; the double treats them alike.
			writeGoogleError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "badRequest", "API_KEY_INVALID",
				"API key not valid. Please pass a valid API key.", map[string]string{"service": discoveryService})
			return
		}
		// The "valid but restricted" answers: 403 PERMISSION_DENIED with
		// ErrorInfo reasons SERVICE_DISABLED, API_KEY_SERVICE_BLOCKED,
		// API_KEY_HTTP_REFERRER_BLOCKED, API_KEY_IP_ADDRESS_BLOCKED
		// (cloud.google.com/apis/design/errors lists the reasons; the API
		// keys docs describe the restrictions). CONSUMER_SUSPENDED quoting the
		// key is observed, not documented. Which of them the discovery API
		// itself answers (it is a public API) no source says: the double
		// serves each so the verifier's table covers each.
		project := map[string]string{"consumer": "projects/123456789012", "service": discoveryService}
		switch mode {
		case APIKeyValid:
			d.writeDirectory(w, q.Get("name"), q.Get("preferred") == "true")
		case APIKeyServiceDisabled:
			writeGoogleError(w, http.StatusForbidden, "PERMISSION_DENIED", "accessNotConfigured", "SERVICE_DISABLED",
				"API Discovery Service has not been used in project 123456789012 before or it is disabled. Enable it by visiting https://console.developers.google.com/apis/api/discovery.googleapis.com/overview?project=123456789012 then retry.",
				project)
		case APIKeyServiceBlocked:
			writeGoogleError(w, http.StatusForbidden, "PERMISSION_DENIED", "forbidden", "API_KEY_SERVICE_BLOCKED",
				"Requests to this API discovery.googleapis.com method google.discovery.Discovery.ListApis are blocked.", project)
		case APIKeyReferrerBlocked:
			writeGoogleError(w, http.StatusForbidden, "PERMISSION_DENIED", "forbidden", "API_KEY_HTTP_REFERRER_BLOCKED",
				"Requests from referer <empty> are blocked.", project)
		case APIKeyIPBlocked:
			writeGoogleError(w, http.StatusForbidden, "PERMISSION_DENIED", "forbidden", "API_KEY_IP_ADDRESS_BLOCKED",
				"The IP address "+remoteIP(r)+" is not allowed to use this API key.", project)
		case APIKeyConsumerSuspended:
			writeGoogleError(w, http.StatusForbidden, "PERMISSION_DENIED", "forbidden", "CONSUMER_SUSPENDED",
				"Permission denied: Consumer 'api_key:"+key+"' has been suspended.",
				map[string]string{"consumer": "projects/123456789012", "service": discoveryService})
		case APIKeyBadRequest:
			writeGoogleError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "badRequest", "", "Request contains an invalid argument.", nil)
		}
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeGoogleError(w, http.StatusNotFound, "NOT_FOUND", "notFound", "", "Requested entity was not found.", nil)
	})
	return mux
}

func remoteIP(r *http.Request) string {
	host := r.RemoteAddr
	if i := strings.LastIndexByte(host, ':'); i > 0 {
		host = host[:i]
	}
	return strings.Trim(host, "[]")
}

type directoryItem struct {
	Kind              string `json:"kind"`
	ID                string `json:"id"`
	Name              string `json:"name"`
	Version           string `json:"version"`
	Title             string `json:"title"`
	Description       string `json:"description"`
	DiscoveryRestURL  string `json:"discoveryRestUrl"`
	DocumentationLink string `json:"documentationLink"`
	Preferred         bool   `json:"preferred"`
}

type directoryList struct {
	Kind             string          `json:"kind"`
	DiscoveryVersion string          `json:"discoveryVersion"`
	Items            []directoryItem `json:"items,omitempty"`
}

// writeDirectory answers the directory list, filtered by name and
// preferred as the real endpoint does: kind discovery#directoryList,
// discoveryVersion, items[] of discovery#directoryItem
// (https://developers.google.com/discovery/v1/reference/apis/list).
func (d *Double) writeDirectory(w http.ResponseWriter, name string, preferred bool) {
	all := []directoryItem{
		{Kind: "discovery#directoryItem", ID: "discovery:v1", Name: "discovery", Version: "v1",
			Title: "API Discovery Service", Description: "Provides information about other Google APIs, such as what APIs are available, the resource, and method details for each API.",
			DiscoveryRestURL: "https://discovery.googleapis.com/$discovery/rest?version=v1", DocumentationLink: "https://developers.google.com/discovery/", Preferred: true},
		{Kind: "discovery#directoryItem", ID: "oauth2:v2", Name: "oauth2", Version: "v2",
			Title: "Google OAuth2 API", Description: "Obtains end-user authorization grants for use with other Google APIs.",
			DiscoveryRestURL: "https://www.googleapis.com/discovery/v1/apis/oauth2/v2/rest", DocumentationLink: "https://developers.google.com/identity/protocols/oauth2/", Preferred: true},
	}
	list := directoryList{Kind: "discovery#directoryList", DiscoveryVersion: "v1"}
	for _, it := range all {
		if (name == "" || it.Name == name) && (!preferred || it.Preferred) {
			list.Items = append(list.Items, it)
		}
	}
	writeJSON(w, http.StatusOK, list)
}
