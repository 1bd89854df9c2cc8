package cloudwatch

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/cwos/cloudwatch-opensearch/internal/config"
	"github.com/cwos/cloudwatch-opensearch/internal/report"
	"github.com/cwos/cloudwatch-opensearch/internal/retry"
	"github.com/cwos/cloudwatch-opensearch/internal/sink"
	"github.com/cwos/cloudwatch-opensearch/internal/testpeer/logbuf"
	"github.com/cwos/cloudwatch-opensearch/internal/testpeer/moto"
)

// recorder is a Settler that remembers every call.
type recorder struct {
	mu       sync.Mutex
	accepted map[int]int
	rejected map[int][]sink.Rejection
}

func newRecorder() *recorder {
	return &recorder{accepted: map[int]int{}, rejected: map[int][]sink.Rejection{}}
}

func (r *recorder) Accepted(seq int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.accepted[seq]++
}

func (r *recorder) Rejected(rec *sink.Record, why sink.Rejection) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rejected[rec.Seq] = append(r.rejected[rec.Seq], why)
}

// pending returns the records neither accepted nor rejected, as the core's ledger would hand
// them back on Fluent Bit's retry.
func (r *recorder) pending(recs []sink.Record) []sink.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []sink.Record
	for _, rec := range recs {
		if r.accepted[rec.Seq] == 0 && len(r.rejected[rec.Seq]) == 0 {
			out = append(out, rec)
		}
	}
	return out
}

// check fails the test if a record was settled twice, or both ways.
func (r *recorder) check(t *testing.T) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for seq, n := range r.accepted {
		if n != 1 || len(r.rejected[seq]) > 0 {
			t.Fatalf("seq %d accepted %d times and rejected %d times", seq, n, len(r.rejected[seq]))
		}
	}
	for seq, w := range r.rejected {
		if len(w) != 1 {
			t.Fatalf("seq %d rejected %d times: %v", seq, len(w), w)
		}
	}
}

type harness struct {
	srv *moto.Server
	px  *moto.Proxy
	cfg *config.Config
	rep *report.Reporter
	log *logbuf.Buffer
	d   *Destination
}

// fastBackoff keeps fault tests short; the shape (doubling, jitter) is the production one.
var fastBackoff = retry.Backoff{Base: 5 * time.Millisecond, Max: 50 * time.Millisecond}

// newHarness builds a destination that talks to srv through a checking proxy, with the default
// credential chain reading the test keys from the environment.
func newHarness(t *testing.T, srv *moto.Server, mutate func(*config.Config)) *harness {
	t.Helper()
	moto.Env(t)
	h := &harness{srv: srv, px: moto.NewProxy(t, srv.URL), log: &logbuf.Buffer{}}
	h.cfg = &config.Config{
		Region:             moto.Region,
		CloudWatch:         true,
		LogGroupName:       "/cwos/fallback",
		LogStreamPrefix:    "fb-",
		AutoCreateGroup:    true,
		AutoCreateStream:   true,
		CloudWatchEndpoint: h.px.URL,
		FlushTimeout:       20 * time.Second,
		RequestTimeout:     10 * time.Second,
		MaxInflight:        8,
	}
	if mutate != nil {
		mutate(h.cfg)
	}
	h.rep = report.New("test", h.log)
	d, err := New(context.Background(), h.cfg, h.rep, WithBackoff(fastBackoff))
	if err != nil {
		t.Fatal(err)
	}
	h.d = d
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := d.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return h
}

func (h *harness) deliver(t *testing.T, recs []sink.Record, s sink.Settler) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), h.cfg.FlushTimeout)
	defer cancel()
	return h.d.Deliver(ctx, recs, s)
}

// gen describes synthetic container records: groups like a per-namespace template renders them,
// streams like a per-pod template, records interleaved across streams as a node's tail input
// produces them, times unique and slightly out of order.
type gen struct {
	groups, streams int // streams per group
	size            int // message bytes, about
	base            time.Time
}

func (g gen) names(i int) (string, string) {
	n := i % (g.groups * g.streams)
	return fmt.Sprintf("/eks/demo/ns-%d", n%g.groups), fmt.Sprintf("app-%d.web-%d_ns-%d_app", n/g.groups, n/g.groups, n%g.groups)
}

func (g gen) records(seq0, n int) []sink.Record {
	rng := rand.New(rand.NewPCG(uint64(seq0), 7))
	pad := strings.Repeat("p", max(0, g.size-60))
	out := make([]sink.Record, n)
	// Times are unique (10 ms apart) and shuffled within blocks of 4 records per stream, so
	// each stream's records arrive out of order.
	block := 4 * g.groups * g.streams
	for b := 0; b < n; b += block {
		perm := rng.Perm(min(block, n-b))
		for j, p := range perm {
			seq := seq0 + b + j
			group, stream := g.names(seq)
			out[b+j] = sink.Record{
				Seq: seq, Group: group, Stream: stream,
				Time:    g.base.Add(time.Duration(seq0+b+p) * 10 * time.Millisecond),
				Message: fmt.Appendf(nil, `{"seq":%d,"log":"GET /healthz 200 %s"}`, seq, pad),
			}
		}
	}
	return out
}

// seqOf parses the seq back from a message.
func seqOf(t *testing.T, msg string) int {
	t.Helper()
	rest, ok := strings.CutPrefix(msg, `{"seq":`)
	if !ok {
		t.Fatalf("unexpected message %.80q", msg)
	}
	n, err := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// readBack reads every stream of want from moto and returns how many of want are missing and
// how many extra copies were stored. It fails the test on an unknown record or a stream whose
// events are not in time order, and checks that each stream's records come back in the order of
// their times.
func readBack(t *testing.T, srv *moto.Server, want []sink.Record) (lost, dup int) {
	t.Helper()
	type key struct{ g, s string }
	byStream := map[key][]sink.Record{}
	for _, r := range want {
		k := key{r.Group, r.Stream}
		byStream[k] = append(byStream[k], r)
	}
	for k, recs := range byStream {
		evs := srv.Events(t, k.g, k.s)
		expect := map[int]bool{}
		for _, r := range recs {
			expect[r.Seq] = true
		}
		seen := map[int]int{}
		var order []int
		for i, e := range evs {
			if i > 0 && *e.Timestamp < *evs[i-1].Timestamp {
				t.Fatalf("%s/%s: events out of time order", k.g, k.s)
			}
			seq := seqOf(t, aws.ToString(e.Message))
			if !expect[seq] {
				continue // an earlier round's record
			}
			seen[seq]++
			if seen[seq] == 1 {
				order = append(order, seq)
			}
		}
		for _, r := range recs {
			switch n := seen[r.Seq]; {
			case n == 0:
				lost++
			case n > 1:
				dup += n - 1
			}
		}
		sorted := slices.SortedFunc(slices.Values(recs), func(a, b sink.Record) int { return a.Time.Compare(b.Time) })
		var wantOrder []int
		for _, r := range sorted {
			if seen[r.Seq] > 0 {
				wantOrder = append(wantOrder, r.Seq)
			}
		}
		if !slices.Equal(order, wantOrder) {
			t.Fatalf("%s/%s: records not in time order", k.g, k.s)
		}
	}
	return lost, dup
}
