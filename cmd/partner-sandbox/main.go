// Command partner-sandbox serves the partner doubles (STS, Google discovery
// and OAuth, Postman) on loopback ports, with the sample credentials of
// events/ registered and optional latency, fault and rate-limit injection,
// so functions, `make invoke` and benchmarks can run against them:
//
//	partner-sandbox -latency 100ms -jitter 20ms -rate postman=3
//
// It prints the PARTNER_ENDPOINT_* variables to export, and serves counters
// as JSON on -admin (GET /stats, POST /reset; POST /credentials registers
// generated credentials as live, for benchmarks). The default ports are the
// ones env.json names, so `make invoke` reaches it without configuration;
// pass 127.0.0.1:0 to pick free ports.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/registry"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/partnertest/sandbox"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("partner-sandbox", flag.ContinueOnError)
	envFile := fs.String("env-file", "env.json", "SAM env-vars file whose PARTNER_ENDPOINT_* URLs give each double's fixed loopback port ('' for free ports)")
	admin := fs.String("admin", "127.0.0.1:18080", "admin listen address (GET /stats, POST /reset, POST /credentials)")
	latency := fs.Duration("latency", 0, "latency added to every answer")
	jitter := fs.Duration("jitter", 0, "uniform jitter around -latency")
	rates := fs.String("rate", "", "enforced rate limits, e.g. postman=3,aws=50 (req/s; 429 above)")
	errRate := fs.Float64("error-rate", 0, "fraction of requests (0..1) that get -fault")
	faultName := fs.String("fault", "500", "fault injected at -error-rate: 500 502 503 504 429 reset garbled empty truncated html401 html403 hang")
	retryAfter := fs.String("retry-after", "1", "Retry-After header sent with 429s")
	samples := fs.Bool("samples", true, "register the sample credentials of events/")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	fault, ok := partnertest.ParseFault(*faultName)
	if !ok {
		fmt.Fprintf(os.Stderr, "partner-sandbox: unknown -fault %q\n", *faultName)
		return 2
	}
	limits, err := parseRates(*rates)
	if err != nil {
		fmt.Fprintln(os.Stderr, "partner-sandbox:", err)
		return 2
	}
	if *errRate < 0 || *errRate > 1 {
		fmt.Fprintln(os.Stderr, "partner-sandbox: -error-rate must be within 0..1")
		return 2
	}
	a, err := listenAddrs(*envFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "partner-sandbox:", err)
		return 2
	}
	s, err := sandbox.Start(a)
	if err != nil {
		fmt.Fprintln(os.Stderr, "partner-sandbox:", err)
		return 1
	}
	defer s.Close()
	if *samples {
		if err := s.RegisterSamples(); err != nil {
			fmt.Fprintln(os.Stderr, "partner-sandbox:", err)
			return 1
		}
	}
	for partner, cs := range s.Controls() {
		for _, c := range cs {
			c.SetLatency(*latency, *jitter)
			c.SetRetryAfter(*retryAfter)
			if *errRate > 0 {
				c.SetErrorRate(*errRate, fault)
			}
			if r, ok := limits[partner]; ok {
				c.SetRateLimit(r, max(1, int(r)))
			}
		}
	}
	l, err := net.Listen("tcp", *admin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "partner-sandbox: admin:", err)
		return 1
	}
	srv := &http.Server{Handler: adminHandler(s), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()

	env := s.Env()
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Printf("export %s=%s\n", k, env[k])
	}
	fmt.Printf("export PARTNER_SANDBOX_ADMIN=http://%s\n", l.Addr())
	log.Info("partner sandbox ready", "latency", latency.String(), "jitter", jitter.String(), "rates", *rates, "error_rate", *errRate, "fault", fault.String())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	shutdown, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdown)
	return 0
}

// parseRates reads "partner=rate,..." for the partners the sandbox serves.
func parseRates(s string) (map[string]float64, error) {
	out := map[string]float64{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for _, part := range strings.Split(s, ",") {
		name, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, fmt.Errorf("-rate %q: want partner=requests_per_second", part)
		}
		if _, ok := registry.Lookup(name); !ok {
			return nil, fmt.Errorf("-rate: unknown partner %q", name)
		}
		r, err := strconv.ParseFloat(val, 64)
		if err != nil || r <= 0 {
			return nil, fmt.Errorf("-rate %s: want a positive number", part)
		}
		out[name] = r
	}
	return out, nil
}

// Stats are the counters served on GET /stats.
type Stats struct {
	Requests    map[string]int64 `json:"requests"`
	RateLimited map[string]int64 `json:"rate_limited"`
}

func adminHandler(s *sandbox.Sandbox) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, _ *http.Request) {
		st := Stats{Requests: s.Requests(), RateLimited: map[string]int64{}}
		for p, cs := range s.Controls() {
			for _, c := range cs {
				st.RateLimited[p] += c.RateLimited()
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(st)
	})
	mux.HandleFunc("POST /credentials", registerCredentials(s))
	mux.HandleFunc("POST /reset", func(w http.ResponseWriter, _ *http.Request) {
		for _, cs := range s.Controls() {
			for _, c := range cs {
				c.ResetCounters()
			}
		}
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

// listenAddrs reads the doubles' fixed addresses from a SAM env-vars file
// (the Parameters section of env.json, which make invoke also reads), so
// that the functions' configuration and the sandbox's ports are one list.
func listenAddrs(file string) (sandbox.Addrs, error) {
	a := sandbox.Addrs{}
	if file == "" {
		return a, nil
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("-env-file: %w", err)
	}
	var doc struct{ Parameters map[string]string }
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("-env-file %s: %w", file, err)
	}
	for _, def := range registry.All() {
		for _, e := range def.Endpoints {
			u, err := url.Parse(doc.Parameters[e.Env])
			if err != nil || u.Host == "" {
				return nil, fmt.Errorf("-env-file %s: %s is not a URL", file, e.Env)
			}
			a[e.Env] = u.Host
		}
	}
	return a, nil
}
