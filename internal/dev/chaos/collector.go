package chaos

import (
	"context"
	"fmt"
	"sync"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/esm"
)

// CollectorBatch is the most results the background collector takes off
// the results queue in one pass before it hands them over.
const CollectorBatch = 200

// Collector takes results off the results queue while a long run goes on,
// as the consumer would. moto_server's SQS spends time in proportion to a
// queue's length on every message sent, received or deleted (each one
// recomputes the queue's message counts), so a results queue left to grow
// to thousands between two collections made the local AWS CPU-bound, every
// call slow, and the functions' invocations outlast their timeouts.
type Collector struct {
	e      *Env
	stop   chan struct{}
	done   chan struct{}
	mu     sync.Mutex
	bodies []string
	errs   []string
}

// StartCollector drains the results queue in the background, pausing for
// idle when it finds it empty, until Stop.
func (e *Env) StartCollector(idle time.Duration) *Collector {
	c := &Collector{e: e, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for {
			select {
			case <-c.stop:
				return
			default:
			}
			bodies, err := e.Stack.DrainUpTo(context.WithoutCancel(e.Ctx), "ResultsQueue", CollectorBatch)
			c.mu.Lock()
			c.bodies = append(c.bodies, bodies...)
			if err != nil {
				// A failed receive or delete leaves the messages on the
				// queue, to be read again: a result may then be counted
				// twice, which the invariants allow; none is lost.
				c.errs = append(c.errs, err.Error())
			}
			c.mu.Unlock()
			if len(bodies) == 0 || err != nil {
				select {
				case <-c.stop:
					return
				case <-time.After(idle):
				}
			}
		}
	}()
	return c
}

// Take records into the observation what the collector has read so far;
// the scenario calls it from its own goroutine, which owns the observation.
func (c *Collector) Take() {
	c.mu.Lock()
	bodies := c.bodies
	c.bodies = nil
	c.mu.Unlock()
	c.e.record(bodies)
}

// Stop ends the collector and records what it read last. It returns the
// drain errors it met (each retried), for the run's report.
func (c *Collector) Stop() []string {
	select {
	case <-c.stop:
	default:
		close(c.stop)
	}
	<-c.done
	c.Take()
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.errs
}

// Backlog is how much waits in the stack's queues: the visible messages of
// the ingress queue, of the fullest partner queue and of the results queue.
type Backlog struct {
	Ingress, Partner, Results int
	PartnerQueue              string
}

// BacklogLimits are the most visible messages a Backlog may hold.
type BacklogLimits struct{ Ingress, Partner, Results int }

// backlog reads the visible depth of every source queue and of the results queue.
func (e *Env) backlog() (Backlog, error) {
	var b Backlog
	if q, ok := e.Stack.Local.Queues["ResultsQueue"]; ok {
		v, _, _, err := esm.QueueDepth(e.Ctx, e.Stack.SQS, q.URL)
		if err != nil {
			return b, err
		}
		b.Results = v
	}
	for _, m := range e.Stack.Mappings {
		v, _, _, err := esm.QueueDepth(e.Ctx, e.Stack.SQS, m.QueueURL)
		if err != nil {
			return b, err
		}
		switch {
		case m.Name == "DispatcherFunction":
			b.Ingress = v
		case v > b.Partner:
			b.Partner, b.PartnerQueue = v, m.Name
		}
	}
	return b, nil
}

// Over reports whether a backlog exceeds the limits, with why.
func (b Backlog) Over(l BacklogLimits) (string, bool) {
	switch {
	case b.Ingress > l.Ingress:
		return fmt.Sprintf("ingress queue %d visible", b.Ingress), true
	case b.Partner > l.Partner:
		return fmt.Sprintf("%s queue %d visible", b.PartnerQueue, b.Partner), true
	case b.Results > l.Results:
		return fmt.Sprintf("results queue %d visible", b.Results), true
	}
	return "", false
}
