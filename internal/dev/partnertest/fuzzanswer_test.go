package partnertest

import (
	"errors"
	"io"
	"net/http"
	"reflect"
	"testing"
)

func TestNewFuzzAnswer(t *testing.T) {
	cases := []struct {
		name         string
		mode         byte
		status       int
		header       string
		body         string
		placeholders []string
		want         FuzzAnswer
	}{
		{name: "normal", mode: 0, status: 403, body: "b",
			want: FuzzAnswer{Status: 403, Header: http.Header{}, Body: []byte("b")}},
		{name: "mode 3 is normal", mode: 3, status: 200,
			want: FuzzAnswer{Status: 200, Header: http.Header{}, Body: []byte{}}},
		{name: "dropped", mode: 1, status: 200,
			want: FuzzAnswer{Status: 0, Header: http.Header{}, Body: []byte{}}},
		{name: "truncated", mode: 2, status: 500, body: "half",
			want: FuzzAnswer{Status: 500, Header: http.Header{}, Body: []byte("half"), Truncate: true}},
		{name: "high mode bits are the caller's", mode: 4 | 2, status: 200,
			want: FuzzAnswer{Status: 200, Header: http.Header{}, Body: []byte{}, Truncate: true}},
		{name: "status below 200 drops", status: 199,
			want: FuzzAnswer{Status: 0, Header: http.Header{}, Body: []byte{}}},
		{name: "status above 999 drops", status: 1000,
			want: FuzzAnswer{Status: 0, Header: http.Header{}, Body: []byte{}}},
		{name: "status 999 is sent", status: 999,
			want: FuzzAnswer{Status: 999, Header: http.Header{}, Body: []byte{}}},
		{name: "header filtering", status: 200,
			header: "X-Echo: {{TOKEN}}\nContent-Length: 1\ntransfer-encoding: chunked\nConnection: close\nTrailer: X\nContent-Encoding: gzip\n" +
				"bad header\nBad Name: v\nX-Cr: a\rb\nX-Nul: a\x00b\nX-Nl: {{SECRET}}\n X-Spaced :  v  \nX-Echo: again",
			placeholders: []string{"{{TOKEN}}", "tok", "{{SECRET}}", "a\nb"},
			want:         FuzzAnswer{Status: 200, Header: http.Header{"X-Echo": {"tok", "again"}, "X-Spaced": {"v"}}, Body: []byte{}}},
		{name: "placeholders in the body", status: 200, body: "{{TOKEN}}/{{SECRET}}/{{OTHER}}",
			placeholders: []string{"{{TOKEN}}", "tok", "{{SECRET}}", ""},
			want:         FuzzAnswer{Status: 200, Header: http.Header{}, Body: []byte("tok//{{OTHER}}")}},
		{name: "placeholders replaced in order", status: 200, body: "{{A}}",
			placeholders: []string{"{{A}}", "{{B}}", "{{B}}", "b"},
			want:         FuzzAnswer{Status: 200, Header: http.Header{}, Body: []byte("b")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := NewFuzzAnswer(tc.mode, tc.status, tc.header, []byte(tc.body), tc.placeholders...)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("NewFuzzAnswer = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestNewFuzzAnswerOddPlaceholders(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("an odd number of placeholder arguments did not panic")
		}
	}()
	//lint:ignore SA5012 the odd count is what this test is about
	NewFuzzAnswer(0, 200, "", nil, "{{TOKEN}}")
}

func TestFuzzServer(t *testing.T) {
	cases := []struct {
		name       string
		set        bool
		mode       byte
		status     int
		header     string
		body       string
		wantErr    bool // no answer at all
		wantStatus int
		wantBody   string
		wantEOF    bool // the body ends before its Content-Length
	}{
		{name: "before Set", wantErr: true},
		{name: "normal", set: true, status: 201, header: "X-Echo: {{TOKEN}}", body: "hello {{TOKEN}}",
			wantStatus: 201, wantBody: "hello tok"},
		{name: "dropped", set: true, mode: 1, status: 200, body: "never sent", wantErr: true},
		{name: "bad status drops", set: true, status: 42, wantErr: true},
		{name: "truncated", set: true, mode: 2, status: 200, header: "X-Echo: {{TOKEN}}", body: `{"user":`,
			wantStatus: 200, wantBody: `{"user":`, wantEOF: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := NewFuzzServer(t)
			if tc.set {
				srv.Set(NewFuzzAnswer(tc.mode, tc.status, tc.header, []byte(tc.body), "{{TOKEN}}", "tok"))
			}
			resp, err := srv.Client().Post(srv.Endpoint().JoinPath("any", "path").String(), "text/plain", nil)
			if tc.wantErr {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("got http %d, want a dropped connection", resp.StatusCode)
				}
				return
			}
			if err != nil {
				t.Fatalf("post: %v", err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if tc.wantEOF != errors.Is(err, io.ErrUnexpectedEOF) || (!tc.wantEOF && err != nil) {
				t.Fatalf("read body: %v, want unexpected EOF: %v", err, tc.wantEOF)
			}
			if resp.StatusCode != tc.wantStatus || string(body) != tc.wantBody || resp.Header.Get("X-Echo") != "tok" {
				t.Fatalf("got http %d, X-Echo %q, body %q; want http %d, X-Echo %q, body %q",
					resp.StatusCode, resp.Header.Get("X-Echo"), body, tc.wantStatus, "tok", tc.wantBody)
			}
			if tc.wantEOF && resp.ContentLength != int64(len(tc.body)+16) {
				t.Fatalf("Content-Length %d, want %d", resp.ContentLength, len(tc.body)+16)
			}
		})
	}
}
