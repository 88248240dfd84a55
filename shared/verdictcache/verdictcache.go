// Package verdictcache saves partner calls: identical findings verified at
// the same time share one call (golang.org/x/sync/singleflight), and
// conclusive verdicts are kept per function instance in a bounded LRU
// (github.com/hashicorp/golang-lru/v2/expirable) for a while.
//
// # Key
//
// An entry is keyed by partner, token type, the token's contract
// fingerprint (SHA-256) and a SHA-256 of the context values (sorted by
// name, each name and value length-prefixed). The cache never holds a raw
// token or companion secret: only their digests.
//
// # What is cached, and for how long
//
// Only verdicts the partner gave are cached: active (partner_confirmed) for
// ActiveTTL, default 15 minutes, because a live credential is the one most
// likely to be revoked soon after the leak is reported and a stale "active"
// would hide that; inactive (partner_rejected) for InactiveTTL, default 1
// hour, because a revoked or deleted credential does not come back.
// Faults are never cached. Unknown verdicts (malformed, unsupported, missing
// context) are not cached either: verifiers decide them from the token's
// form without a partner call, so a cache entry would save nothing and take
// the place of a verdict that does. A newer verdict that is not cached still
// removes the older cached one for its key.
//
// expirable has one TTL per cache. Rather than two caches (two size bounds
// to tune, two sweeping goroutines), one LRU bounded by Size holds both
// kinds, and each entry carries its own expiry, checked on every lookup
// against Options.Clock (which tests inject). The LRU's own TTL is the
// longer of the two, so its background sweep still drops every entry,
// fingerprint included, once it can no longer be served.
//
// # Recheck
//
// A finding with Recheck set skips the cache, does not join an ordinary
// call in flight (whose answer may have been asked for before the recheck
// was), and stores its fresh verdict in place of the cached one. Rechecks of
// the same token in flight at once share one call. A verdict is stored only
// if its call started after the one already stored, so a slow ordinary call
// cannot overwrite a newer recheck.
//
// # Cancellation
//
// The shared call runs on a context detached from its first caller's
// cancellation (context.WithoutCancel) that keeps that caller's deadline, or
// CallTimeout when it has none. A caller whose context ends stops waiting
// and returns its context's error; the call goes on for the others and may
// still fill the cache. A caller that joined a call whose deadline ran out
// while its own has not tries once more with its own.
//
// Wrap the cache around the rate limiter (throttle), so that hits and shared
// calls cost no tokens.
package verdictcache

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
	"golang.org/x/sync/singleflight"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/verify"
)

// Defaults of Options.
const (
	DefaultSize        = 10000
	DefaultActiveTTL   = 15 * time.Minute
	DefaultInactiveTTL = time.Hour
	// DefaultCallTimeout bounds a shared call whose first caller had no
	// deadline; Lambda contexts always have one.
	DefaultCallTimeout = 30 * time.Second
)

// maxJoins bounds how often a caller re-joins after shared calls ran out of time.
const maxJoins = 3

// Options configures a cache; zero fields take the defaults.
type Options struct {
	// Size bounds the number of cached verdicts; 0 means DefaultSize, a
	// negative value disables caching (in-flight sharing remains).
	Size int
	// ActiveTTL is how long an active verdict is served; 0 means
	// DefaultActiveTTL, a negative value does not cache active verdicts.
	ActiveTTL time.Duration
	// InactiveTTL is how long an inactive verdict is served; 0 means
	// DefaultInactiveTTL, a negative value does not cache inactive verdicts.
	InactiveTTL time.Duration
	// CallTimeout bounds a shared call whose first caller had no deadline;
	// 0 means DefaultCallTimeout.
	CallTimeout time.Duration
	// Clock returns the current time; nil means time.Now. Tests inject one.
	Clock func() time.Time
}

// Stats counts what the cache did, for tests and the benchmark report.
type Stats struct {
	// Hits are verdicts served from the cache.
	Hits int64
	// Calls are calls made to the inner verifier.
	Calls int64
	// Joined are verifications that waited for another finding's call.
	Joined int64
}

// key identifies a cached verdict without holding credential material.
type key struct {
	partner     finding.Partner
	tokenType   finding.TokenType
	fingerprint string
	context     [sha256.Size]byte
}

// flightKey names the in-flight call for k; rechecks fly separately.
func (k key) flightKey(recheck bool) string {
	kind := "check"
	if recheck {
		kind = "recheck"
	}
	return kind + "\x00" + string(k.partner) + "\x00" + string(k.tokenType) + "\x00" + k.fingerprint + "\x00" + hex.EncodeToString(k.context[:])
}

// entry is a cached verdict with its own expiry (see the package doc).
type entry struct {
	verdict verify.Verdict
	started time.Time // when the call that produced it began
	expires time.Time
}

// outcome is what a shared call hands to everyone waiting for it.
type outcome struct {
	verdict verify.Verdict
	err     error
	// fromCache is true when the flight found the verdict in the cache.
	fromCache bool
	// timedOut is true when the call's own deadline ended it.
	timedOut bool
	deadline time.Time
}

// Verifier is a verify.Verifier that shares in-flight calls and caches
// conclusive verdicts. It is safe for concurrent use; build one per partner
// per instance.
type Verifier struct {
	inner       verify.Verifier
	partner     finding.Partner
	activeTTL   time.Duration
	inactiveTTL time.Duration
	callTimeout time.Duration
	now         func() time.Time
	lru         *expirable.LRU[key, entry] // nil when caching is off
	group       singleflight.Group
	// mu orders a store's check of the newer entry against its write.
	mu                  sync.Mutex
	hits, calls, joined atomic.Int64
	// afterJoin, when set by a test, runs once a caller is registered with
	// a flight, so tests can release a blocked call only after all joined.
	afterJoin func()
}

var _ verify.Verifier = (*Verifier)(nil)

// New wraps inner in an in-flight dedupe and a verdict cache for partner.
func New(inner verify.Verifier, partner finding.Partner, o Options) *Verifier {
	if o.Size == 0 {
		o.Size = DefaultSize
	}
	if o.ActiveTTL == 0 {
		o.ActiveTTL = DefaultActiveTTL
	}
	if o.InactiveTTL == 0 {
		o.InactiveTTL = DefaultInactiveTTL
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = DefaultCallTimeout
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	v := &Verifier{
		inner:       inner,
		partner:     partner,
		activeTTL:   o.ActiveTTL,
		inactiveTTL: o.InactiveTTL,
		callTimeout: o.CallTimeout,
		now:         o.Clock,
	}
	if longest := max(o.ActiveTTL, o.InactiveTTL); o.Size > 0 && longest > 0 {
		v.lru = expirable.NewLRU[key, entry](o.Size, nil, longest)
	}
	return v
}

// Verify serves a cached verdict (Cached set), or shares the call of an
// identical finding in flight, or calls the inner verifier.
func (v *Verifier) Verify(ctx context.Context, tokenType finding.TokenType, f finding.Finding) (verify.Verdict, error) {
	k := v.keyOf(tokenType, f)
	if !f.Recheck {
		if verdict, ok := v.lookup(k); ok {
			v.hits.Add(1)
			return verdict, nil
		}
	}
	flight := k.flightKey(f.Recheck)
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return verify.Verdict{}, fmt.Errorf("verdictcache: %s: verify: %w", v.partner, err)
		}
		led := false
		ch := v.group.DoChan(flight, func() (any, error) {
			led = true
			// A flight that ended between this caller's lookup and its
			// DoChan has filled the cache: look again before calling.
			if !f.Recheck {
				if verdict, ok := v.lookup(k); ok {
					return outcome{verdict: verdict, fromCache: true}, nil
				}
			}
			return v.call(ctx, k, tokenType, f), nil
		})
		if v.afterJoin != nil {
			v.afterJoin()
		}
		var out outcome
		select {
		case r := <-ch:
			out = r.Val.(outcome)
		case <-ctx.Done():
			return verify.Verdict{}, fmt.Errorf("verdictcache: %s: wait for a partner call: %w", v.partner, ctx.Err())
		}
		switch {
		case led && out.fromCache:
			v.hits.Add(1)
		case !led:
			v.joined.Add(1)
			if out.timedOut && attempt < maxJoins && ctx.Err() == nil && outlives(ctx, out.deadline) {
				continue
			}
		}
		if out.err != nil {
			return verify.Verdict{}, out.err
		}
		return copyVerdict(out.verdict, out.fromCache), nil
	}
}

// Stats returns the counts so far.
func (v *Verifier) Stats() Stats {
	return Stats{Hits: v.hits.Load(), Calls: v.calls.Load(), Joined: v.joined.Load()}
}

// call runs the inner verifier for the whole flight and stores a cacheable
// verdict before the flight ends, so a finding arriving after it hits the cache.
func (v *Verifier) call(ctx context.Context, k key, tokenType finding.TokenType, f finding.Finding) (out outcome) {
	v.calls.Add(1)
	started := v.now()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(v.callTimeout)
	}
	defer func() {
		// This runs on singleflight's goroutine (DoChan), where a panic
		// would end the process and fail every record of the batch with it:
		// it becomes this finding's fault, without its value.
		if p := recover(); p != nil {
			out = outcome{err: verify.Panicked(v.partner, p), deadline: deadline}
		}
	}()
	detached, cancel := context.WithDeadline(context.WithoutCancel(ctx), deadline)
	defer cancel()
	verdict, err := v.inner.Verify(detached, tokenType, f)
	out = outcome{verdict: verdict, err: err, deadline: deadline}
	if err != nil {
		out.timedOut = detached.Err() != nil
		return out
	}
	v.store(k, verdict, started)
	return out
}

func (v *Verifier) lookup(k key) (verify.Verdict, bool) {
	if v.lru == nil {
		return verify.Verdict{}, false
	}
	e, ok := v.lru.Get(k)
	if !ok {
		return verify.Verdict{}, false
	}
	if !v.now().Before(e.expires) {
		v.mu.Lock()
		if cur, ok := v.lru.Peek(k); ok && cur.started.Equal(e.started) {
			v.lru.Remove(k)
		}
		v.mu.Unlock()
		return verify.Verdict{}, false
	}
	return copyVerdict(e.verdict, true), true
}

func (v *Verifier) store(k key, verdict verify.Verdict, started time.Time) {
	if v.lru == nil {
		return
	}
	var ttl time.Duration
	switch verdict.Status() {
	case finding.StatusActive:
		ttl = v.activeTTL
	case finding.StatusInactive:
		ttl = v.inactiveTTL
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	cur, ok := v.lru.Peek(k)
	if ok && cur.started.After(started) {
		return
	}
	if ttl <= 0 {
		// A newer answer that is not cached still supersedes the old one.
		if ok {
			v.lru.Remove(k)
		}
		return
	}
	v.lru.Add(k, entry{verdict: copyVerdict(verdict, false), started: started, expires: started.Add(ttl)})
}

// keyOf digests the finding into its cache key.
func (v *Verifier) keyOf(tokenType finding.TokenType, f finding.Finding) key {
	k := key{partner: v.partner, tokenType: tokenType, fingerprint: f.Fingerprint()}
	h := sha256.New()
	for _, name := range slices.Sorted(maps.Keys(f.Context)) {
		writeField(h, name)
		writeField(h, f.Context[name].Reveal())
	}
	h.Sum(k.context[:0])
	return k
}

// writeField length-prefixes s so that no two contexts digest alike.
func writeField(h hash.Hash, s string) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(s)))
	h.Write(n[:])
	h.Write([]byte(s))
}

// copyVerdict gives each caller its own Details map: the cached verdict is
// shared by every finding it is served to.
func copyVerdict(v verify.Verdict, cached bool) verify.Verdict {
	v.Details = maps.Clone(v.Details)
	v.Cached = cached
	return v
}

// outlives reports whether ctx may run past deadline.
func outlives(ctx context.Context, deadline time.Time) bool {
	d, ok := ctx.Deadline()
	return !ok || d.After(deadline)
}
