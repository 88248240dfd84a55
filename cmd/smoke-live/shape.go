package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Caps on what one recorded answer keeps: enough to compare shapes, never
// enough to hold a whole partner document in memory.
const (
	maxShapeBody  = 64 * 1024
	maxShapeKeys  = 200
	maxShapeDepth = 6
)

// Shape is what smoke-live keeps of one exchange: the request line and the
// answer's status, header names and body key paths. It holds no header
// value and no body value, so printing it cannot leak a token.
type Shape struct {
	Method string
	Host   string
	Path   string
	// Status is the HTTP status, 0 when no response arrived.
	Status int
	// Headers are the answer's canonical header names, sorted.
	Headers []string
	// Format is json, xml, html, text or empty.
	Format string
	// Keys are the body's key paths (a.b, items[].id for JSON; element
	// paths for XML), sorted and capped.
	Keys []string

	body bytes.Buffer
}

// recorder is a RoundTripper that keeps the shape of every exchange sent
// through it; it sits under partnerhttp's own transport, so it sees
// exactly what the verifier's client sees.
type recorder struct {
	base http.RoundTripper

	mu     sync.Mutex
	shapes []*Shape
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	s := &Shape{Method: req.Method, Host: req.URL.Host, Path: req.URL.Path}
	r.mu.Lock()
	r.shapes = append(r.shapes, s)
	r.mu.Unlock()
	resp, err := r.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	s.Status = resp.StatusCode
	for k := range resp.Header {
		s.Headers = append(s.Headers, http.CanonicalHeaderKey(k))
	}
	slices.Sort(s.Headers)
	s.Format = contentFormat(resp.Header.Get("Content-Type"))
	resp.Body = &teeBody{rc: resp.Body, s: s, r: r}
	return resp, nil
}

// take returns the exchanges recorded since the last call, with their
// body keys worked out, and forgets them.
func (r *recorder) take() []*Shape {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.shapes
	r.shapes = nil
	for _, s := range out {
		s.finish()
	}
	return out
}

// teeBody copies up to maxShapeBody bytes of the body aside while the
// verifier's client reads it.
type teeBody struct {
	rc io.ReadCloser
	s  *Shape
	r  *recorder
}

func (t *teeBody) Read(p []byte) (int, error) {
	n, err := t.rc.Read(p)
	t.r.mu.Lock()
	if room := maxShapeBody - t.s.body.Len(); room > 0 {
		t.s.body.Write(p[:min(n, room)])
	}
	t.r.mu.Unlock()
	return n, err
}

func (t *teeBody) Close() error { return t.rc.Close() }

func contentFormat(ct string) string {
	mt, _, _ := mime.ParseMediaType(ct)
	switch {
	case strings.HasSuffix(mt, "json"):
		return "json"
	case strings.HasSuffix(mt, "xml"):
		return "xml"
	case mt == "text/html":
		return "html"
	}
	return "text"
}

// finish derives Keys from the copied body and drops the body itself.
func (s *Shape) finish() {
	b := bytes.TrimSpace(s.body.Bytes())
	s.body = bytes.Buffer{}
	if len(b) == 0 {
		s.Format = "empty"
		return
	}
	keys := map[string]bool{}
	switch {
	case b[0] == '{' || b[0] == '[':
		var v any
		if json.Unmarshal(b, &v) == nil {
			s.Format = "json"
			jsonKeys(v, "", 0, keys)
		}
	case b[0] == '<' && s.Format != "html":
		if xmlKeys(b, keys) == nil {
			s.Format = "xml"
		}
	}
	for k := range keys {
		s.Keys = append(s.Keys, k)
	}
	slices.Sort(s.Keys)
	if len(s.Keys) > maxShapeKeys {
		s.Keys = s.Keys[:maxShapeKeys]
	}
}

// jsonKeys collects the key paths of a JSON document: object keys joined
// by dots, array elements as []. Values are never kept.
func jsonKeys(v any, prefix string, depth int, out map[string]bool) {
	if depth >= maxShapeDepth || len(out) > maxShapeKeys {
		return
	}
	switch t := v.(type) {
	case map[string]any:
		for k, sub := range t {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			out[p] = true
			jsonKeys(sub, p, depth+1, out)
		}
	case []any:
		for _, sub := range t {
			jsonKeys(sub, prefix+"[]", depth+1, out)
		}
	}
}

// xmlKeys collects the element paths of an XML document (STS answers in XML).
func xmlKeys(b []byte, out map[string]bool) error {
	d := xml.NewDecoder(bytes.NewReader(b))
	var path []string
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			path = append(path, t.Name.Local)
			if len(path) <= maxShapeDepth && len(out) <= maxShapeKeys {
				out[strings.Join(path, ".")] = true
			}
		case xml.EndElement:
			if len(path) > 0 {
				path = path[:len(path)-1]
			}
		}
	}
}

// noiseHeaders are set by transports, CDNs and load balancers, not by the
// partner's protocol: their presence says nothing about the double.
var noiseHeaders = map[string]bool{
	"Date": true, "Content-Length": true, "Connection": true, "Keep-Alive": true,
	"Transfer-Encoding": true, "Server": true, "Via": true, "Alt-Svc": true,
	"Strict-Transport-Security": true, "Age": true, "Etag": true,
}

// Diff is how a real answer's shape differs from the double's for the
// same kind of credential.
type Diff struct {
	// Count is set when the two sides made a different number of requests.
	Count string
	// Status is set when the status classes (2xx, 4xx, ...) differ.
	Status string
	// StatusCode is set when the statuses differ within one class (shown,
	// not failing: the verdicts beside it say whether it mattered).
	StatusCode string
	// Format is set when the body formats differ.
	Format string
	// OnlyReal and OnlyDouble are body key paths one side has and the other lacks.
	OnlyReal, OnlyDouble []string
	// HeadersOnlyReal and HeadersOnlyDouble are header names likewise.
	HeadersOnlyReal, HeadersOnlyDouble []string
}

// Matters says whether the difference could change a verdict: the double
// would then be wrong about the partner. Header names alone do not (the
// verifiers read rate-limit headers only on answers the status already
// classifies), so they are shown but do not fail the run.
func (d Diff) Matters() bool {
	return d.Count != "" || d.Status != "" || d.Format != "" || len(d.OnlyReal) > 0 || len(d.OnlyDouble) > 0
}

// Empty says whether the shapes agree entirely (noise headers aside).
func (d Diff) Empty() bool {
	return !d.Matters() && d.StatusCode == "" && len(d.HeadersOnlyReal) == 0 && len(d.HeadersOnlyDouble) == 0
}

// Lines describe the difference, one aspect a line.
func (d Diff) Lines() []string {
	var out []string
	add := func(cond bool, s string) {
		if cond {
			out = append(out, s)
		}
	}
	add(d.Count != "", "requests: "+d.Count)
	add(d.Status != "", "status: "+d.Status)
	add(d.StatusCode != "", "status: "+d.StatusCode)
	add(d.Format != "", "body format: "+d.Format)
	add(len(d.OnlyReal) > 0, "body keys only the real partner sends: "+strings.Join(d.OnlyReal, ", "))
	add(len(d.OnlyDouble) > 0, "body keys only the double sends: "+strings.Join(d.OnlyDouble, ", "))
	add(len(d.HeadersOnlyReal) > 0, "headers only the real partner sends: "+strings.Join(d.HeadersOnlyReal, ", "))
	add(len(d.HeadersOnlyDouble) > 0, "headers only the double sends: "+strings.Join(d.HeadersOnlyDouble, ", "))
	return out
}

// compare compares the last exchange of each side (earlier ones, if any,
// were network retries of the same call) and their number.
func compare(real, double []*Shape) Diff {
	var d Diff
	if len(real) != len(double) {
		d.Count = strconv.Itoa(len(real)) + " real, " + strconv.Itoa(len(double)) + " to the double"
	}
	if len(real) == 0 || len(double) == 0 {
		return d
	}
	r, o := real[len(real)-1], double[len(double)-1]
	if statusClass(r.Status) != statusClass(o.Status) {
		d.Status = "real " + statusText(r.Status) + ", double " + statusText(o.Status)
	} else if r.Status != o.Status {
		d.StatusCode = "real " + statusText(r.Status) + ", double " + statusText(o.Status)
	}
	if r.Format != o.Format {
		d.Format = "real " + r.Format + ", double " + o.Format
	}
	d.OnlyReal, d.OnlyDouble = setDiff(r.Keys, o.Keys), setDiff(o.Keys, r.Keys)
	d.HeadersOnlyReal = dropNoise(setDiff(r.Headers, o.Headers))
	d.HeadersOnlyDouble = dropNoise(setDiff(o.Headers, r.Headers))
	return d
}

func statusClass(s int) int { return s / 100 }

func statusText(s int) string {
	if s == 0 {
		return "no response"
	}
	return strconv.Itoa(s)
}

// setDiff is a minus b, both sorted.
func setDiff(a, b []string) []string {
	var out []string
	for _, x := range a {
		if _, found := slices.BinarySearch(b, x); !found {
			out = append(out, x)
		}
	}
	return out
}

func dropNoise(hs []string) []string {
	return slices.DeleteFunc(hs, func(h string) bool { return noiseHeaders[h] })
}
