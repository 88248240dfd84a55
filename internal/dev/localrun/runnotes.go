package localrun

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/samtemplate"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
)

// DeadLetterVerdict is one dead-letter queue after a run, held against
// the template's alarm on it.
type DeadLetterVerdict struct {
	// Queue is the DLQ's logical id, Alarm the logical id of the alarm that
	// watches it ("" when none does).
	Queue, Alarm string
	// Alert is the alert name the alarm's name begins with.
	Alert string
	// Count is what the queue holds; Expected what the run's samples put
	// there on purpose, and Why says which samples those are.
	Count, Expected int
	Why             string
	// InAlarm says the alarm would page with this count.
	InAlarm bool
}

// deadLetterMetric is the SQS metric a DLQ alarm watches.
const deadLetterMetric = "ApproximateNumberOfMessagesVisible"

// AddDeadLetters holds the template's dead-letter queue alarms (an AWS/SQS
// ApproximateNumberOfMessagesVisible alarm on a queue whose logical id
// ends in DeadLetterQueue) against the run's DLQ counts, by logical id.
// scope resolves the alarms' queue names to the local queues. expected and
// why say which samples are meant to end there: a DLQ alarm pages on one
// message, even an intended one, and the summary says so.
func (s *Summary) AddDeadLetters(tpl *samtemplate.Template, scope samtemplate.Scope, counts, expected map[string]int, why map[string]string) {
	byName := map[string]string{}
	for id := range tpl.Queues {
		if scope.Resource == nil {
			break
		}
		if name, err := scope.Resource(id, "QueueName"); err == nil {
			byName[name] = id
		}
	}
	watched := map[string]*samtemplate.Alarm{}
	alarmIDs := map[string]string{}
	for id, a := range tpl.Alarms {
		for _, m := range a.AllMetrics() {
			if m.Namespace != "AWS/SQS" || m.MetricName != deadLetterMetric {
				continue
			}
			for _, d := range m.Dimensions {
				name, err := d.Value.Resolve(scope)
				if q, ok := byName[name]; err == nil && ok && d.Name == "QueueName" && strings.HasSuffix(q, "DeadLetterQueue") {
					watched[q], alarmIDs[q] = a, id
				}
			}
		}
	}
	ids := make([]string, 0, len(counts))
	for id := range counts {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, q := range ids {
		v := DeadLetterVerdict{Queue: q, Count: counts[q], Expected: expected[q], Why: why[q]}
		if a, ok := watched[q]; ok {
			v.Alarm, v.Alert = alarmIDs[q], alarmIDs[q]
			if n, err := a.NameIn(scope); err == nil {
				v.Alert, _, _ = strings.Cut(n, "-")
			}
			v.InAlarm = a.Exceeds(float64(v.Count))
		}
		s.DeadLetters = append(s.DeadLetters, v)
	}
}

// AddResults takes the run's results, for what the metrics alone cannot
// say: how many verdicts each partner gave without its cache.
func (s *Summary) AddResults(results []finding.Result) {
	if s.uncached == nil {
		s.uncached = map[string]int{}
	}
	for _, r := range results {
		if r.Partner != "" && !r.Cached && (r.Reason == finding.ReasonPartnerConfirmed || r.Reason == finding.ReasonPartnerRejected) {
			s.uncached[string(r.Partner)]++
		}
	}
}

// writeDeadLetters prints the DLQ alarms that would page, and says which
// of them the samples set off on purpose.
func (s Summary) writeDeadLetters(b *strings.Builder) {
	var firing []DeadLetterVerdict
	watched := 0
	for _, d := range s.DeadLetters {
		if d.Alarm != "" {
			watched++
		}
		if d.InAlarm {
			firing = append(firing, d)
		}
	}
	fmt.Fprintf(b, "Dead-letter queue alarms in ALARM with these counts (they page on one message): %d of %d\n", len(firing), watched)
	for _, d := range firing {
		note := "not expected: look at the queue"
		if d.Count <= d.Expected {
			note = "expected: " + d.Why
		}
		fmt.Fprintf(b, "  %s (%s): %d > 0, %s\n", d.Alert, d.Queue, d.Count, note)
	}
}

// writeRequestNotes explains a partner with fewer requests than verdicts
// reached without the cache.
func (s Summary) writeRequestNotes(b *strings.Builder) {
	for _, p := range s.Partners {
		if n := s.uncached[p.Partner]; n > p.Requests {
			fmt.Fprintf(b, "  %s: %d requests for %d uncached verdicts: findings with the same credential in flight at once share one call (in-flight dedupe, as singleflight)\n",
				p.Partner, p.Requests, n)
		}
	}
}

// ResultNotes explains the results table of a run: what its MS column
// holds for a rate-limited partner, and each unknown result's message.
// rates are the partners' per-instance limiter rates (requests a second).
func ResultNotes(results []finding.Result, rates map[string]float64) []string {
	var notes []string
	seen := map[string]bool{}
	for _, r := range results {
		if r.Partner != "" && r.Reason != finding.ReasonMalformedToken && r.Reason != finding.ReasonFeatureDisabled {
			seen[string(r.Partner)] = true
		}
	}
	var limited []string
	for p, rate := range rates {
		if seen[p] && rate > 0 && !math.IsInf(rate, 1) {
			limited = append(limited, fmt.Sprintf("%s %s/s (%s between calls)", p, strconv.FormatFloat(rate, 'f', -1, 64), secondsBetween(rate)))
		}
	}
	sort.Strings(limited)
	if len(limited) > 0 {
		notes = append(notes, "MS is each finding's time from receipt to result (its outcome log's latency_ms); it includes the wait for its partner's rate limiter, "+
			"one function instance per partner here, so after the burst each call waits its turn: "+strings.Join(limited, ", "))
	}
	sorted := append([]finding.Result(nil), results...)
	sort.Slice(sorted, func(i, j int) bool {
		if sorted[i].ScanID != sorted[j].ScanID {
			return sorted[i].ScanID < sorted[j].ScanID
		}
		return sorted[i].FindingID < sorted[j].FindingID
	})
	for _, r := range sorted {
		if r.Status != finding.StatusUnknown {
			continue
		}
		msg := r.Message
		if msg == "" {
			msg = "(no message)"
		}
		notes = append(notes, fmt.Sprintf("unknown %s %s (%s): %s", r.ScanID, r.FindingID, r.Reason, msg))
	}
	return notes
}

func secondsBetween(rate float64) string {
	return strconv.FormatFloat(math.Round(1/rate*100)/100, 'f', -1, 64) + "s"
}
