package delivery

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/cwos/cloudwatch-opensearch/internal/chunkgen"
	"github.com/cwos/cloudwatch-opensearch/internal/config"
	"github.com/cwos/cloudwatch-opensearch/internal/event"
	"github.com/cwos/cloudwatch-opensearch/internal/sink"
	"github.com/cwos/cloudwatch-opensearch/internal/sink/cloudwatch"
	"github.com/cwos/cloudwatch-opensearch/internal/sink/opensearch"
)

// The hot path of issue 4: per record, decode -> render group, stream and index -> transcode to
// JSON -> id -> into a CloudWatch batch plan and an OpenSearch NDJSON body. One goroutine and
// GOMAXPROCS(1), so records/s is per core. Input: 1,000 Kubernetes records (400-1,000 bytes,
// kubernetes filter metadata) in Fluent Bit's v2 format, generated deterministically.

const hotRecords = 1000

func hotChunk() []byte {
	chunk, _ := chunkgen.K8sChunk(42, hotRecords, chunkgen.Options{Namespaces: 5, Containers: 4, Start: time.Now().Add(-time.Hour), Days: 1})
	return chunk
}

// hotPath holds one worker's reusable state, as a Fluent Bit worker would.
type hotPath struct {
	in      *Instance
	st      *flushState
	planner *cloudwatch.Planner
	enc     *opensearch.Encoder
	body    []byte
}

func newHotPath(tb testing.TB) *hotPath {
	src := props("log_stream_template", "$kubernetes['pod_name']", "opensearch_endpoint", "http://127.0.0.1:9")
	in, err := New(context.Background(), src, Options{Name: "bench", Log: discard{}, Destinations: []sink.Destination{newFake("cloudwatch"), newFake("opensearch")}})
	if err != nil {
		tb.Fatal(err)
	}
	cfg, err := config.Parse(src)
	if err != nil {
		tb.Fatal(err)
	}
	return &hotPath{in: in, st: new(flushState), planner: cloudwatch.NewPlanner(), enc: opensearch.NewEncoder(cfg, "123456789012")}
}

func (h *hotPath) run(chunk []byte, now time.Time) (requests int) {
	evs, _ := event.Decode(chunk, h.st.events[:0])
	h.st.events = evs
	h.in.prepare(h.st, "kube.var.log.containers")
	requests, _ = h.planner.Plan(h.st.recs, now)
	h.body = h.body[:0]
	for i := range h.st.recs {
		h.body = h.enc.AppendItem(h.body, &h.st.recs[i])
	}
	return requests
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// runHot runs fn over the chunk b.N times on one core and reports per-record figures.
func runHot(b *testing.B, chunk []byte, fn func()) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	fn() // warm pools and buffers
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	b.ResetTimer()
	for b.Loop() {
		fn()
	}
	b.StopTimer()
	runtime.ReadMemStats(&m1)
	perRec := float64(b.Elapsed().Nanoseconds()) / float64(b.N) / hotRecords
	b.ReportMetric(perRec, "ns/record")
	b.ReportMetric(1e9/perRec, "records/s")
	b.ReportMetric(float64(len(chunk))*float64(b.N)/b.Elapsed().Seconds()/1e6, "MB/s")
	b.ReportMetric(float64(m1.Mallocs-m0.Mallocs)/float64(b.N)/hotRecords, "allocs/record")
	b.ReportMetric(float64(m1.TotalAlloc-m0.TotalAlloc)/float64(b.N)/hotRecords, "B/record")
}

func BenchmarkHotPath(b *testing.B) {
	chunk := hotChunk()
	h := newHotPath(b)
	now := time.Now()
	runHot(b, chunk, func() { h.run(chunk, now) })
}

// BenchmarkHotPathBaseline is fluent-bit-go's path as the AWS Go plugin uses it (baseline_test.go).
func BenchmarkHotPathBaseline(b *testing.B) {
	chunk := hotChunk()
	var base baseline
	runHot(b, chunk, func() {
		if _, err := base.flush(chunk, "kube.var.log.containers"); err != nil {
			b.Fatal(err)
		}
	})
}

// BenchmarkHotPathRatio runs both paths alternately on one core in the same run, so machine
// noise hits both alike, and reports how many times more records/s ours does (target >= 8x).
func BenchmarkHotPathRatio(b *testing.B) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	chunk := hotChunk()
	h := newHotPath(b)
	var base baseline
	now := time.Now()
	h.run(chunk, now)
	base.flush(chunk, "kube.var.log.containers")
	var ours, theirs time.Duration
	for b.Loop() {
		t0 := time.Now()
		h.run(chunk, now)
		t1 := time.Now()
		base.flush(chunk, "kube.var.log.containers")
		ours += t1.Sub(t0)
		theirs += time.Since(t1)
	}
	b.ReportMetric(float64(theirs)/float64(ours), "x-baseline")
	b.ReportMetric(float64(b.N)*hotRecords/ours.Seconds(), "ours-records/s")
	b.ReportMetric(float64(b.N)*hotRecords/theirs.Seconds(), "baseline-records/s")
}

// The hot path must do the same work the destinations do: every record in a batch and in the
// body, with valid names.
func TestHotPathCoversEveryRecord(t *testing.T) {
	h := newHotPath(t)
	reqs := h.run(hotChunk(), time.Now())
	if len(h.st.recs) != hotRecords {
		t.Fatalf("%d records prepared, want %d", len(h.st.recs), hotRecords)
	}
	if reqs < 20 || reqs > hotRecords {
		t.Fatalf("%d CloudWatch requests for 1,000 records over 20 containers' pods", reqs)
	}
	lines := 0
	for _, c := range h.body {
		if c == '\n' {
			lines++
		}
	}
	if lines != 2*hotRecords {
		t.Fatalf("NDJSON body has %d lines, want %d", lines, 2*hotRecords)
	}
	chunk, now := hotChunk(), time.Now()
	h.run(chunk, now)
	if n := testing.AllocsPerRun(5, func() { h.run(chunk, now) }); n > hotRecords/10 {
		t.Fatalf("%.0f allocations per 1,000-record chunk in steady state, want < %d", n, hotRecords/10)
	}
}

// BenchmarkChunkMemory reports the Go heap one worker keeps for a ~2 MB chunk (Fluent Bit's
// usual maximum, ~2,500 Kubernetes records) after the hot path ran over it: decoded events,
// records, messages, names, the CloudWatch plan and the OpenSearch body, all reused by the next
// flush. The figure is heap bytes per chunk byte.
func BenchmarkChunkMemory(b *testing.B) {
	chunk, _ := chunkgen.K8sChunk(9, 2500, chunkgen.Options{Namespaces: 5, Containers: 4, Start: time.Now().Add(-time.Hour), Days: 1})
	now := time.Now()
	var before, after runtime.MemStats
	var retained uint64
	for b.Loop() {
		runtime.GC()
		runtime.ReadMemStats(&before)
		h := newHotPath(b)
		h.run(chunk, now)
		runtime.GC()
		runtime.ReadMemStats(&after)
		retained = after.HeapAlloc - before.HeapAlloc
		runtime.KeepAlive(h)
	}
	b.ReportMetric(float64(len(chunk))/1e6, "chunk-MB")
	b.ReportMetric(float64(retained)/1e6, "worker-heap-MB")
	b.ReportMetric(float64(retained)/float64(len(chunk)), "heap/chunk")
}
