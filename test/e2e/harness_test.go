package e2e_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cwos/cloudwatch-opensearch/internal/testpeer/bulk"
	"github.com/cwos/cloudwatch-opensearch/internal/testpeer/moto"
	"github.com/cwos/cloudwatch-opensearch/test/hostrun"
)

// The OpenSearch internal user of every test. The password reaches the plugin only through the
// environment (${E2E_OS_PASSWORD} in the properties, expanded by the host as Fluent Bit does) and
// must never appear in what the plugin prints.
const (
	osUser     = "fluent-bit"
	osPassword = "e2e-Sup3r-s3cret-Pa55"
)

// peers are the two destinations of one test: moto_server behind its checking proxy (and, when
// asked, a front that throttles a share of calls), and the _bulk endpoint with basic auth.
type peers struct {
	moto  *moto.Server
	proxy *moto.Proxy
	front *throttleFront // nil unless peerOptions.Throttle > 0
	cwURL string         // what the plugin is pointed at
	bulk  *bulk.Server
}

type peerOptions struct {
	Throttle float64 // share of CloudWatch calls answered ThrottlingException before the proxy
	Seed     uint64
}

// startPeers starts both destinations for t and checks at its end that neither saw a protocol
// violation, an unauthenticated request or a request that was not _bulk.
func startPeers(t *testing.T, o peerOptions) *peers {
	t.Helper()
	p := &peers{moto: moto.Start(t)}
	p.proxy = moto.NewProxy(t, p.moto.URL) // fails the test on any PutLogEvents rule broken
	p.cwURL = p.proxy.URL
	if o.Throttle > 0 {
		p.front = newThrottleFront(t, p.proxy.URL, o.Throttle, o.Seed)
		p.cwURL = p.front.URL
	}
	b, err := bulk.Start(bulk.Options{Basic: &bulk.BasicAuth{User: osUser, Password: osPassword}, Seed: o.Seed})
	if err != nil {
		t.Fatalf("bulk endpoint: %v", err)
	}
	p.bulk = b
	t.Cleanup(func() {
		b.Close()
		if v := b.Violations(); len(v) > 0 {
			t.Errorf("the _bulk endpoint saw %d protocol violations, first: %q", len(v), v[:min(len(v), 5)])
		}
		if a := b.AuthFailures(); len(a) > 0 {
			t.Errorf("the _bulk endpoint refused %d requests for their credentials, first: %q", len(a), a[:min(len(a), 5)])
		}
	})
	return p
}

// props is an [OUTPUT] section for the host (one "key value" per line) pointed at the peers.
// Each "key value" of extra replaces the line of the same key, or is added; "key" alone removes
// the key.
func (p *peers) props(extra ...string) string {
	return hostrun.Props([]string{
		"# [OUTPUT] of an end-to-end test",
		"Name cloudwatch_opensearch",
		"Match kube.*",
		"Workers 4",
		"Retry_Limit no_limits",
		"region " + moto.Region,
		"log_group_name /e2e/fallback",
		"log_group_template /aws/containerinsights/e2e.$kubernetes['namespace_name'].$kubernetes['container_name']",
		"log_stream_template $kubernetes['pod_name']",
		"log_stream_prefix e2e-",
		"auto_create_group on",
		"cloudwatch_endpoint " + p.cwURL,
		"opensearch_endpoint " + p.bulk.URL(),
		"opensearch_auth basic",
		"opensearch_user " + osUser,
		"opensearch_password ${E2E_OS_PASSWORD}",
		"flush_timeout 20s",
		"request_timeout 10s",
		"max_inflight 8",
		"exit_grace 5s",
	}, extra...)
}

// throttleFront answers a fixed share of CloudWatch calls (chosen by a seeded generator) with
// ThrottlingException, as the service does under load, and forwards the rest to the checking
// proxy. The moto proxy's faults count requests; this gives a ratio.
type throttleFront struct {
	URL string

	mu        sync.Mutex
	rng       *rand.Rand
	ratio     float64
	throttled map[string]int
	passed    map[string]int
}

func newThrottleFront(t *testing.T, upstream string, ratio float64, seed uint64) *throttleFront {
	u, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	f := &throttleFront{ratio: ratio, rng: rand.New(rand.NewPCG(seed, 0x7417)), throttled: map[string]int{}, passed: map[string]int{}}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorLog = log.New(io.Discard, "", 0) // aborted requests are the plugin's timeouts, not news
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	rp.Transport = tr
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		action := r.Header.Get("X-Amz-Target")
		if i := strings.LastIndexByte(action, '.'); i >= 0 {
			action = action[i+1:]
		}
		f.mu.Lock()
		throttle := f.rng.Float64() < f.ratio
		if throttle {
			f.throttled[action]++
		} else {
			f.passed[action]++
		}
		f.mu.Unlock()
		if !throttle {
			rp.ServeHTTP(w, r)
			return
		}
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.Header().Set("X-Amzn-Requestid", "00000000-0000-0000-0000-000000000001")
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"__type":"ThrottlingException","message":"Rate exceeded"}`)
	}))
	f.URL = srv.URL
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		tr.CloseIdleConnections()
	})
	return f
}

func (f *throttleFront) counts() (throttled, passed int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, n := range f.throttled {
		throttled += n
	}
	for _, n := range f.passed {
		passed += n
	}
	return throttled, passed
}

// runHost runs the host (hostrun.Run, built by hostrun.Build) with the peers' credentials and
// fails the test if it crashes, hangs past the timeout, reports an ABI violation, panics, or
// prints the OpenSearch password. The exit status is returned for the test to judge.
func runHost(t *testing.T, o hostrun.Options) hostrun.Result {
	t.Helper()
	o.SO, o.Host = hostrun.Build(t)
	o.Env = append(slices.Clone(o.Env),
		"AWS_ACCESS_KEY_ID="+moto.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY="+moto.SecretAccessKey,
		"AWS_REGION="+moto.Region,
		"E2E_OS_PASSWORD="+osPassword,
	)
	res := hostrun.Run(t, o)
	if v := hostrun.Lines(res.Stdout, "violation:"); len(v) > 0 {
		t.Errorf("ABI violations: %q", v)
	}
	if strings.Contains(res.Stderr, "recovered from a panic") {
		t.Errorf("the plugin panicked:\n%s", hostrun.Tail(res.Stderr, 8000))
	}
	if strings.Contains(res.Stdout+res.Stderr, osPassword) {
		t.Error("the OpenSearch password appears in the host's output")
	}
	return res
}

// poll calls cond every 20ms until it is true (true) or ctx ends (false).
func poll(ctx context.Context, cond func() bool) bool {
	for !cond() {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(20 * time.Millisecond):
		}
	}
	return true
}

// flushCodes counts the final return codes of the flush lines (flush, bflush, cflush, wflush) of an
// instance, and the tries they took.
type flushCodes struct {
	n, ok, retry, err, tries, minTries, maxTries int
}

func codes(t *testing.T, out, instance string) flushCodes {
	t.Helper()
	var c flushCodes
	for _, prefix := range []string{"flush ", "bflush ", "cflush ", "wflush "} {
		for _, l := range hostrun.Lines(out, prefix+instance+" ") {
			c.n++
			switch hostrun.Field(t, l, "rc") {
			case 1:
				c.ok++
			case 2:
				c.retry++
			case 0:
				c.err++
			}
			tries := hostrun.Field(t, l, "tries")
			c.tries += tries
			c.maxTries = max(c.maxTries, tries)
			if c.minTries == 0 || tries < c.minTries {
				c.minTries = tries
			}
		}
	}
	return c
}

// counters returns the plugin's exit summary of an instance ("stopped: name=value ...") by its
// label, e.g. cloudwatch_opensearch.0.
func counters(t *testing.T, stderr, label string) map[string]int64 {
	t.Helper()
	re := regexp.MustCompile(`\[output:cloudwatch_opensearch:` + regexp.QuoteMeta(label) + `\] stopped: ?(.*)$`)
	for l := range strings.SplitSeq(stderr, "\n") {
		m := re.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		out := map[string]int64{}
		for kv := range strings.FieldsSeq(m[1]) {
			k, v, _ := strings.Cut(kv, "=")
			n, err := strconv.ParseInt(v, 10, 64)
			if err == nil {
				out[k] = n
			}
		}
		return out
	}
	t.Fatalf("no exit summary of %s in the plugin's log", label)
	return nil
}

// script builds a host script.
type script struct{ b strings.Builder }

func (s *script) line(format string, args ...any) *script {
	fmt.Fprintf(&s.b, format+"\n", args...)
	return s
}

// workers flushes chunk files on instance with the host's `workers` command, Fluent Bit's
// `workers n`: n threads take the chunks from one queue, each chunk flushed once by one thread
// (with the host's resends on FLB_RETRY), at most n at once. The chunk list goes into files.
func (s *script) workers(files map[string][]byte, instance string, n int, tag string, names []string) *script {
	list := fmt.Sprintf("%s-%d.list", instance, len(files))
	files[list] = []byte(strings.Join(names, "\n") + "\n")
	return s.line("workers %s %d %s %s", instance, n, tag, list)
}

func (s *script) String() string { return s.b.String() }
