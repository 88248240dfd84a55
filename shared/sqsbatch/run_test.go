package sqsbatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

func eventOf(ids ...string) events.SQSEvent {
	var ev events.SQSEvent
	for _, id := range ids {
		ev.Records = append(ev.Records, events.SQSMessage{MessageId: id, Body: "body of " + id})
	}
	return ev
}

func failureIDs(resp events.SQSEventResponse) []string {
	ids := []string{}
	for _, f := range resp.BatchItemFailures {
		ids = append(ids, f.ItemIdentifier)
	}
	return ids
}

// freshOptions gives a test its own record of completed ids.
func freshOptions() Options {
	log, _ := testLogger()
	return Options{Completed: NewCompleted(100), Logger: log}
}

func TestRunReportsExactlyTheFailedRecords(t *testing.T) {
	tests := []struct {
		name    string
		records []string
		fail    map[string]string // id -> "error" or "panic"
		want    []string
	}{
		{name: "empty event", want: []string{}},
		{name: "all succeed", records: []string{"a", "b", "c"}, want: []string{}},
		{name: "one error", records: []string{"a", "b", "c"}, fail: map[string]string{"b": "error"}, want: []string{"b"}},
		{name: "error and panic", records: []string{"a", "b", "c", "d"}, fail: map[string]string{"a": "panic", "d": "error"}, want: []string{"a", "d"}},
		{name: "all fail", records: []string{"a", "b"}, fail: map[string]string{"a": "error", "b": "panic"}, want: []string{"a", "b"}},
		{name: "duplicate id in the batch fails once", records: []string{"a", "b", "a"}, fail: map[string]string{"a": "error"}, want: []string{"a"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			calls := map[string]int{}
			resp := Run(context.Background(), eventOf(tc.records...), freshOptions(), func(ctx context.Context, rec events.SQSMessage) error {
				mu.Lock()
				calls[rec.MessageId]++
				mu.Unlock()
				switch tc.fail[rec.MessageId] {
				case "error":
					return errors.New("transient")
				case "panic":
					panic("boom")
				}
				return nil
			})
			if got := failureIDs(resp); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("failures = %v, want %v", got, tc.want)
			}
			for id, n := range calls {
				if n != 1 {
					t.Errorf("record %s processed %d times", id, n)
				}
			}
			js, _ := json.Marshal(resp)
			if !strings.Contains(string(js), `"batchItemFailures":[`) {
				t.Errorf("response JSON %s: want a batchItemFailures list", js)
			}
		})
	}
}

func TestRunPanicIsReportedWithoutItsValue(t *testing.T) {
	secret := randomToken()
	tests := []struct {
		name     string
		doPanic  func()
		wantType string
		wantFunc string // the function the location must name
	}{
		{name: "string", doPanic: func() { panic(secret) }, wantType: "string", wantFunc: "TestRunPanicIsReportedWithoutItsValue"},
		{name: "error", doPanic: func() { panic(fmt.Errorf("leaked %s: %w", secret, context.Canceled)) }, wantType: "*fmt.wrapError", wantFunc: "TestRunPanicIsReportedWithoutItsValue"},
		{name: "nil dereference", doPanic: func() { _ = secret + deref(nil) }, wantType: "runtime.", wantFunc: "sqsbatch.deref"},
		{name: "index", doPanic: func() { _ = []string{secret}[len(secret)] }, wantType: "runtime.boundsError", wantFunc: "TestRunPanicIsReportedWithoutItsValue"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			log, buf := testLogger()
			opts := freshOptions()
			opts.Logger = log
			resp := Run(context.Background(), eventOf("p1", "ok"), opts, func(ctx context.Context, rec events.SQSMessage) error {
				if rec.MessageId == "p1" {
					tc.doPanic()
				}
				return nil
			})
			if got := failureIDs(resp); !reflect.DeepEqual(got, []string{"p1"}) {
				t.Errorf("failures = %v, want [p1]", got)
			}
			out := buf.String()
			if strings.Contains(out, secret) {
				t.Fatalf("log carries the panic value: %s", out)
			}
			var line struct {
				Msg      string   `json:"msg"`
				ID       string   `json:"message_id"`
				Type     string   `json:"panic_type"`
				Location string   `json:"panic_location"`
				Stack    []string `json:"stack"`
			}
			if err := json.Unmarshal([]byte(strings.SplitN(out, "\n", 2)[0]), &line); err != nil {
				t.Fatalf("log line is not JSON: %v: %s", err, out)
			}
			if line.ID != "p1" || !strings.Contains(line.Type, tc.wantType) {
				t.Errorf("logged id %q type %q, want p1 and %q", line.ID, line.Type, tc.wantType)
			}
			if !strings.Contains(line.Location, "run_test.go") || !strings.Contains(line.Location, tc.wantFunc) {
				t.Errorf("panic location %q does not point at the panicking line", line.Location)
			}
			if len(line.Stack) == 0 {
				t.Error("no stack logged")
			}
		})
	}
}

// deref is a nil dereference the compiler and linters cannot see coming.
func deref(p *string) string { return *p }

func TestRunRespectsConcurrency(t *testing.T) {
	tests := []struct {
		name        string
		concurrency int
		want        int
	}{
		{name: "serial", concurrency: 1, want: 1},
		{name: "three", concurrency: 3, want: 3},
		{name: "default", concurrency: 0, want: DefaultConcurrency},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var inFlight, peak atomic.Int32
			opts := freshOptions()
			opts.Concurrency = tc.concurrency
			ids := make([]string, 3*DefaultConcurrency)
			for i := range ids {
				ids[i] = fmt.Sprintf("m%d", i)
			}
			resp := Run(context.Background(), eventOf(ids...), opts, func(ctx context.Context, rec events.SQSMessage) error {
				n := inFlight.Add(1)
				defer inFlight.Add(-1)
				for {
					p := peak.Load()
					if n <= p || peak.CompareAndSwap(p, n) {
						break
					}
				}
				// Hold the slot until the bound is reached (or a while
				// passes), so that a broken bound shows as a higher peak.
				deadline := time.Now().Add(200 * time.Millisecond)
				for inFlight.Load() < int32(tc.want) && time.Now().Before(deadline) {
					time.Sleep(time.Millisecond)
				}
				time.Sleep(2 * time.Millisecond)
				return nil
			})
			if len(resp.BatchItemFailures) != 0 {
				t.Fatalf("failures: %v", failureIDs(resp))
			}
			if got := int(peak.Load()); got != tc.want {
				t.Errorf("peak concurrency = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestRunDeadline(t *testing.T) {
	t.Run("unstarted records are reported", func(t *testing.T) {
		log, buf := testLogger()
		opts := freshOptions()
		opts.Logger = log
		opts.Concurrency = 1
		opts.DeadlineMargin = time.Second
		ctx, cancel := context.WithTimeout(context.Background(), 1300*time.Millisecond)
		defer cancel()
		var started []string
		resp := Run(ctx, eventOf("a", "b", "c", "d"), opts, func(ctx context.Context, rec events.SQSMessage) error {
			started = append(started, rec.MessageId) // Concurrency 1: no race
			if rec.MessageId == "a" {
				time.Sleep(400 * time.Millisecond) // eats into the margin
			}
			return nil
		})
		if !reflect.DeepEqual(started, []string{"a"}) {
			t.Errorf("started %v, want only a", started)
		}
		if got := failureIDs(resp); !reflect.DeepEqual(got, []string{"b", "c", "d"}) {
			t.Errorf("failures = %v, want the unstarted b c d", got)
		}
		if !strings.Contains(buf.String(), `"unstarted":3`) {
			t.Errorf("log does not say how many were left: %s", buf.String())
		}
	})
	t.Run("too little time from the start", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		calls := 0
		resp := Run(ctx, eventOf("a", "b"), freshOptions(), func(context.Context, events.SQSMessage) error {
			calls++
			return nil
		})
		if calls != 0 || !reflect.DeepEqual(failureIDs(resp), []string{"a", "b"}) {
			t.Errorf("calls %d, failures %v; want none started, both reported", calls, failureIDs(resp))
		}
	})
	t.Run("cancelled context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		resp := Run(ctx, eventOf("a", "b"), freshOptions(), func(context.Context, events.SQSMessage) error {
			t.Error("a record was started after cancellation")
			return nil
		})
		if !reflect.DeepEqual(failureIDs(resp), []string{"a", "b"}) {
			t.Errorf("failures = %v", failureIDs(resp))
		}
	})
	t.Run("process context ends before the deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		lambdaDeadline, _ := ctx.Deadline()
		opts := freshOptions()
		opts.cancelMargin = 700 * time.Millisecond
		var got time.Time
		Run(ctx, eventOf("a"), opts, func(ctx context.Context, rec events.SQSMessage) error {
			got, _ = ctx.Deadline()
			return nil
		})
		if want := lambdaDeadline.Add(-700 * time.Millisecond); !got.Equal(want) {
			t.Errorf("process deadline %v, want %v", got, want)
		}
	})
	t.Run("a cancel margin above the deadline margin is reduced", func(t *testing.T) {
		o := Options{DeadlineMargin: time.Second, cancelMargin: 3 * time.Second}.withDefaults()
		if o.cancelMargin >= o.DeadlineMargin {
			t.Errorf("cancelMargin %v not below DeadlineMargin %v", o.cancelMargin, o.DeadlineMargin)
		}
	})
}

func TestRunSkipsCompletedMessages(t *testing.T) {
	log, buf := testLogger()
	completed := NewCompleted(10)
	opts := Options{Completed: completed, Logger: log}
	var mu sync.Mutex
	processed := map[string]int{}
	process := func(_ context.Context, rec events.SQSMessage) error {
		mu.Lock()
		processed[rec.MessageId]++
		mu.Unlock()
		if rec.MessageId == "bad" {
			return errors.New("transient")
		}
		return nil
	}
	Run(context.Background(), eventOf("a", "bad", "b"), opts, process)
	resp := Run(context.Background(), eventOf("a", "bad", "c"), opts, process)
	if got := failureIDs(resp); !reflect.DeepEqual(got, []string{"bad"}) {
		t.Errorf("failures = %v, want [bad]", got)
	}
	want := map[string]int{"a": 1, "bad": 2, "b": 1, "c": 1}
	if !reflect.DeepEqual(processed, want) {
		t.Errorf("processed %v, want %v (a redelivered success skipped, the failure retried)", processed, want)
	}
	if !strings.Contains(buf.String(), `"message_id":"a"`) {
		t.Errorf("skip not logged: %s", buf.String())
	}
	if !completed.contains("c") || completed.contains("bad") || completed.contains("") {
		t.Error("the record does not track exactly the successes")
	}

	opts.Completed = nil
	Run(context.Background(), eventOf("a"), opts, process)
	if processed["a"] != 2 {
		t.Errorf("without a record a was processed %d times, want 2", processed["a"])
	}
}

func TestCompletedIsBounded(t *testing.T) {
	c := NewCompleted(3)
	for _, id := range []string{"a", "b", "c", "d"} {
		c.add(id)
	}
	if c.cache.Len() != 3 || c.contains("a") || !c.contains("d") {
		t.Errorf("len %d, a=%v d=%v: want the oldest evicted", c.cache.Len(), c.contains("a"), c.contains("d"))
	}
	if NewCompleted(0).cache == nil {
		t.Error("size 0 gave no cache")
	}
}

func TestRunRecordsAreNotShared(t *testing.T) {
	log, _ := testLogger()
	a := Options{Completed: NewCompleted(10), Logger: log}
	b := Options{Completed: NewCompleted(10), Logger: log}
	calls := 0
	process := func(context.Context, events.SQSMessage) error { calls++; return nil }
	Run(context.Background(), eventOf("m"), a, process)
	Run(context.Background(), eventOf("m"), b, process)
	Run(context.Background(), eventOf("m"), a, process)
	if calls != 2 {
		t.Errorf("calls = %d, want 2: each record skips only its own completed ids", calls)
	}
}

// TestRunRefillsSlots: a slot takes the next record as soon as its record
// ends. With two slots and one record that does not end until the other
// four have, the other four must all pass through the second slot; records
// started in groups of two would wait for the stuck one and never finish.
func TestRunRefillsSlots(t *testing.T) {
	opts := freshOptions()
	opts.Concurrency = 2
	others := make(chan string, 4)
	release := make(chan struct{})
	go func() {
		for range 4 {
			<-others
		}
		close(release)
	}()
	refilled := true
	resp := Run(context.Background(), eventOf("slow", "b", "c", "d", "e"), opts, func(ctx context.Context, rec events.SQSMessage) error {
		if rec.MessageId != "slow" {
			others <- rec.MessageId
			return nil
		}
		select {
		case <-release:
		case <-time.After(10 * time.Second): // only a guard against hanging
			refilled = false
		}
		return nil
	})
	if !refilled {
		t.Error("the other records did not all run while the first one was in flight: slots are not refilled")
	}
	if got := failureIDs(resp); len(got) != 0 {
		t.Errorf("failures = %v, want none", got)
	}
}

func withReceiveCount(ev events.SQSEvent, counts map[string]string) events.SQSEvent {
	for i, rec := range ev.Records {
		if c, ok := counts[rec.MessageId]; ok {
			ev.Records[i].Attributes = map[string]string{"ApproximateReceiveCount": c}
		}
	}
	return ev
}

func TestStartOrder(t *testing.T) {
	ev := withReceiveCount(eventOf("a", "b", "c", "d", "e"), map[string]string{"b": "2", "c": "junk", "d": "4", "e": "2"})
	var got []string
	for _, i := range StartOrder(ev.Records) {
		got = append(got, ev.Records[i].MessageId)
	}
	if want := []string{"d", "b", "e", "a", "c"}; !reflect.DeepEqual(got, want) {
		t.Errorf("start order %v, want %v (most received first, the event's order among equals)", got, want)
	}
}

// TestRunStartsRedeliveredRecordsFirst: a record that an earlier invocation
// left unstarted (so SQS delivered it again) starts before fresh records,
// and is not the one left unstarted again when time runs short.
func TestRunStartsRedeliveredRecordsFirst(t *testing.T) {
	t.Run("order", func(t *testing.T) {
		opts := freshOptions()
		opts.Concurrency = 1
		var started []string
		ev := withReceiveCount(eventOf("a", "b", "c"), map[string]string{"c": "3"})
		Run(context.Background(), ev, opts, func(ctx context.Context, rec events.SQSMessage) error {
			started = append(started, rec.MessageId) // Concurrency 1: no race
			return nil
		})
		if want := []string{"c", "a", "b"}; !reflect.DeepEqual(started, want) {
			t.Errorf("started %v, want %v", started, want)
		}
	})
	t.Run("time runs short", func(t *testing.T) {
		opts := freshOptions()
		opts.Concurrency = 1
		opts.DeadlineMargin = time.Minute
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var started []string
		ev := withReceiveCount(eventOf("a", "b", "c"), map[string]string{"c": "2"})
		resp := Run(ctx, ev, opts, func(ctx context.Context, rec events.SQSMessage) error {
			started = append(started, rec.MessageId)
			cancel() // the invocation's time is up after the first record
			return nil
		})
		if !reflect.DeepEqual(started, []string{"c"}) {
			t.Errorf("started %v, want only c, the redelivered one", started)
		}
		if got := failureIDs(resp); !reflect.DeepEqual(got, []string{"a", "b"}) {
			t.Errorf("failures = %v, want the fresh a b handed back", got)
		}
	})
}
