package awsmeter

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// fakeAWS answers ReceiveMessage with one message while it has one left,
// and everything else with {}; it records the requests it got.
type fakeAWS struct {
	mu     sync.Mutex
	left   int
	bodies []string
	paths  []string
}

func (f *fakeAWS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.bodies = append(f.bodies, string(b))
	f.paths = append(f.paths, r.URL.Path)
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	if r.Header.Get("X-Amz-Target") == "AmazonSQS.ReceiveMessage" && f.left > 0 {
		f.left--
		_, _ = w.Write([]byte(`{"Messages":[{"MessageId":"m1","Body":"{\"scan_id\":\"s\"}","Attributes":{"SentTimestamp":"1700000000123"}}]}`))
		return
	}
	_, _ = w.Write([]byte(`{}`))
}

func call(t *testing.T, base, target, service, body string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Amz-Target", target)
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=testing/20261206/us-east-1/"+service+"/aws4_request, SignedHeaders=host, Signature=x")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: status %d", target, resp.StatusCode)
	}
	return string(b)
}

func TestMeterCountsByCallerServiceAndOperation(t *testing.T) {
	fake := &fakeAWS{left: 1}
	backend := httptest.NewServer(fake)
	defer backend.Close()
	var mu sync.Mutex
	var calls []Call
	m, err := New(backend.URL, func(c Call) { mu.Lock(); calls = append(calls, c); mu.Unlock() })
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	scanner, err := m.Endpoint("scanner")
	if err != nil {
		t.Fatal(err)
	}
	pollers, err := m.Endpoint("pollers")
	if err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("x", BillingChunk+1)
	call(t, scanner, "AmazonSQS.SendMessage", "sqs", `{"QueueUrl":"q","MessageBody":"`+big+`"}`)
	call(t, scanner, "AmazonSQS.SendMessage", "sqs", `{"QueueUrl":"q","MessageBody":"small"}`)
	got := call(t, pollers, "AmazonSQS.ReceiveMessage", "sqs", `{"QueueUrl":"q"}`)
	if !strings.Contains(got, `"m1"`) {
		t.Fatalf("the answer was not passed back: %s", got)
	}
	call(t, pollers, "AmazonSQS.ReceiveMessage", "sqs", `{"QueueUrl":"q"}`)
	call(t, pollers, "AmazonSSM.GetParameter", "ssm", `{"Name":"/flag"}`)

	want := map[Key]Count{
		{"scanner", "sqs", "SendMessage"}:    {Requests: 2, Units: 3},
		{"pollers", "sqs", "ReceiveMessage"}: {Requests: 2, Empty: 1, Units: 2},
		{"pollers", "ssm", "GetParameter"}:   {Requests: 1, Units: 1},
	}
	counts := m.Counts()
	if len(counts) != len(want) {
		t.Errorf("counts %v, want %v", counts, want)
	}
	for k, w := range want {
		if counts[k] != w {
			t.Errorf("%+v: %+v, want %+v", k, counts[k], w)
		}
	}
	if len(fake.bodies) != 5 || fake.bodies[1] != `{"QueueUrl":"q","MessageBody":"small"}` {
		t.Errorf("the local AWS got %d requests, the second %q", len(fake.bodies), fake.bodies[1])
	}
	mu.Lock()
	defer mu.Unlock()
	if len(calls) != 5 {
		t.Fatalf("tap saw %d calls, want 5", len(calls))
	}
	c := calls[2]
	if c.Caller != "pollers" || c.Operation != "ReceiveMessage" || c.End.Before(c.Start) {
		t.Errorf("third call %+v", c.Key)
	}
	msgs := Messages(c.Response)
	if len(msgs) != 1 || msgs[0].Body != `{"scan_id":"s"}` || msgs[0].Attributes["SentTimestamp"] != "1700000000123" {
		t.Errorf("Messages: %+v", msgs)
	}
	m.Reset()
	if n := len(m.Counts()); n != 0 {
		t.Errorf("after Reset %d counts", n)
	}
}

func TestOperationAndService(t *testing.T) {
	for _, tc := range []struct {
		target, query, body, want string
	}{
		{"AmazonSQS.DeleteMessageBatch", "", "", "DeleteMessageBatch"},
		{"", "Action=GetCallerIdentity&Version=2011-06-15", "", "GetCallerIdentity"},
		{"", "", "Action=SendMessage&QueueUrl=q", "SendMessage"},
		{"", "", "", "POST /x"},
	} {
		r := httptest.NewRequest(http.MethodPost, "/x?"+tc.query, bytes.NewReader([]byte(tc.body)))
		if tc.target != "" {
			r.Header.Set("X-Amz-Target", tc.target)
		}
		if got := Operation(r, []byte(tc.body)); got != tc.want {
			t.Errorf("Operation(%q, %q, %q) = %q, want %q", tc.target, tc.query, tc.body, got, tc.want)
		}
	}
	for auth, want := range map[string]string{
		"AWS4-HMAC-SHA256 Credential=AKID/20261206/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=x": "sqs",
		"AWS4-HMAC-SHA256 Credential=AKID/20261206/eu-west-1/ssm/aws4_request":                                  "ssm",
		"":                                       "unknown",
		"AWS4-HMAC-SHA256 Credential=AKID/short": "unknown",
	} {
		if got := Service(auth); got != want {
			t.Errorf("Service(%q) = %q, want %q", auth, got, want)
		}
	}
}

func TestSent(t *testing.T) {
	q, bodies := Sent([]byte(`{"QueueUrl":"u","Entries":[{"Id":"0","MessageBody":"a"},{"Id":"1","MessageBody":"b"}]}`))
	if q != "u" || len(bodies) != 2 || bodies[0] != "a" || bodies[1] != "b" {
		t.Errorf("batch: %q %q", q, bodies)
	}
	q, bodies = Sent([]byte(`{"QueueUrl":"v","MessageBody":""}`))
	if q != "v" || len(bodies) != 1 || bodies[0] != "" {
		t.Errorf("single: %q %q", q, bodies)
	}
	if q, bodies := Sent([]byte(`not json`)); q != "" || bodies != nil {
		t.Errorf("garbage: %q %q", q, bodies)
	}
}
