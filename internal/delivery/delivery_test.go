package delivery

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cwos/cloudwatch-opensearch/internal/chunkgen"
	"github.com/cwos/cloudwatch-opensearch/internal/config"
	"github.com/cwos/cloudwatch-opensearch/internal/sink"
	"github.com/cwos/cloudwatch-opensearch/internal/testpeer/logbuf"
)

// fakeDest is a scripted destination: it records what it was given and settles records by a
// rule the test sets.
type fakeDest struct {
	name string
	mu   sync.Mutex
	got  map[int]int // seq -> times delivered (per Deliver call)
	recs []sink.Record
	// decide returns, per record: 'a' accept, 'r' reject, 'p' leave pending, 's' forget silently.
	decide func(r *sink.Record) byte
	block  bool // block until ctx is done
}

func newFake(name string) *fakeDest {
	return &fakeDest{name: name, got: map[int]int{}, decide: func(*sink.Record) byte { return 'a' }}
}

func (f *fakeDest) Name() string { return f.name }

func (f *fakeDest) Deliver(ctx context.Context, recs []sink.Record, s sink.Settler) error {
	if f.block {
		<-ctx.Done()
		return &sink.PendingError{Destination: f.name, Pending: len(recs), Last: ctx.Err()}
	}
	pending := 0
	for i := range recs {
		r := recs[i]
		r.Message = bytes.Clone(r.Message) // Deliver must not keep the flush's buffers
		f.mu.Lock()
		switch f.decide(&r) {
		case 'a':
			f.got[r.Seq]++
			f.recs = append(f.recs, r)
			s.Accepted(r.Seq)
		case 'r':
			s.Rejected(&recs[i], sink.Rejection{Destination: f.name, Target: r.Index, Status: 400, Type: "mapper_parsing_exception", Reason: "failed to parse"})
		case 's': // a buggy destination: forgets the record and says nothing
		default:
			pending++
		}
		f.mu.Unlock()
	}
	if pending > 0 {
		return &sink.PendingError{Destination: f.name, Pending: pending, Last: errors.New("HTTP 503")}
	}
	return nil
}

func (f *fakeDest) Close(context.Context) error { return nil }

func (f *fakeDest) count() (total, dups int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, n := range f.got {
		total += n
		if n > 1 {
			dups += n - 1
		}
	}
	return total, dups
}

func props(kv ...string) config.MapSource {
	m := config.MapSource{
		"region":              "eu-west-1",
		"log_group_name":      "/aws/containerinsights/demo/application",
		"log_group_template":  "/aws/containerinsights/demo.$kubernetes['namespace_name'].$kubernetes['container_name']",
		"log_stream_prefix":   "node-1-",
		"opensearch_endpoint": "http://127.0.0.1:1",
		"flush_timeout":       "2s",
		"exit_grace":          "1s",
	}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func newTest(t *testing.T, src config.MapSource, dests ...sink.Destination) (*Instance, *logbuf.Buffer) {
	t.Helper()
	var log logbuf.Buffer
	in, err := New(context.Background(), src, Options{Name: "t", Log: &log, Destinations: dests})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(in.Close)
	return in, &log
}

func k8sChunk(n int) []byte {
	chunk, _ := chunkgen.K8sChunk(7, n, chunkgen.Options{Namespaces: 3, Containers: 2, Start: time.Date(2023, 2, 22, 1, 0, 0, 0, time.UTC), Days: 1})
	return chunk
}

func TestFlushDeliversToBoth(t *testing.T) {
	cw, osd := newFake("cloudwatch"), newFake("opensearch")
	in, _ := newTest(t, props(), cw, osd)
	if rc := in.Flush(k8sChunk(300), "kube.var.log"); rc != OK {
		t.Fatalf("Flush = %d, want OK", rc)
	}
	for _, d := range []*fakeDest{cw, osd} {
		if total, dups := d.count(); total != 300 || dups != 0 {
			t.Fatalf("%s got %d records (%d duplicates), want 300 once each", d.name, total, dups)
		}
	}
	r := cw.recs[0]
	if !strings.HasPrefix(r.Group, "/aws/containerinsights/demo.") || r.Stream != "node-1-kube.var.log" {
		t.Fatalf("names not rendered: group %q stream %q", r.Group, r.Stream)
	}
	if !strings.HasPrefix(r.Index, "cwl-aws-containerinsights-demo-") || !strings.HasSuffix(r.Index, "-2023.02.22") {
		t.Fatalf("index %q is not the Lambda's", r.Index)
	}
	var doc map[string]any
	if err := json.Unmarshal(r.Message, &doc); err != nil || doc["kubernetes"] == nil {
		t.Fatalf("message is not the record as JSON: %s (%v)", r.Message, err)
	}
	ids := map[string]bool{}
	for _, r := range osd.recs {
		ids[r.ID.String()] = true
	}
	if len(ids) != 300 {
		t.Fatalf("%d distinct ids for 300 records", len(ids))
	}
}

// A destination that fails part of a chunk gets only that part again on Fluent Bit's retry,
// and the other destination gets nothing again (delivery promise 2).
func TestRetryResendsOnlyWhatIsMissing(t *testing.T) {
	cw, osd := newFake("cloudwatch"), newFake("opensearch")
	fail := true
	osd.decide = func(r *sink.Record) byte {
		if fail && r.Seq%3 == 0 {
			return 'p'
		}
		return 'a'
	}
	in, log := newTest(t, props(), cw, osd)
	chunk := k8sChunk(600)
	if rc := in.Flush(chunk, "kube.a"); rc != Retry {
		t.Fatalf("first Flush = %d, want Retry", rc)
	}
	if !strings.Contains(log.String(), "opensearch: 200 of 600 records not delivered yet") {
		t.Fatalf("no clear retry line in log:\n%s", log)
	}
	fail = false
	if rc := in.Flush(bytes.Clone(chunk), "kube.a"); rc != OK {
		t.Fatalf("retry Flush = %d, want OK", rc)
	}
	for _, d := range []*fakeDest{cw, osd} {
		if total, dups := d.count(); total != 600 || dups != 0 {
			t.Fatalf("%s: %d records, %d duplicates; want 600, 0", d.name, total, dups)
		}
	}
	if got := in.Reporter().Count("resend_avoided_cloudwatch"); got != 600 {
		t.Fatalf("resend_avoided_cloudwatch = %d, want 600", got)
	}
	if got := in.Reporter().Count("resend_avoided_opensearch"); got != 400 {
		t.Fatalf("resend_avoided_opensearch = %d, want 400", got)
	}
	// Settled: the ledger forgot the chunk, so a third flush of the same bytes (a new chunk with
	// equal content) is delivered in full again.
	if in.ledger.Len() != 0 {
		t.Fatalf("ledger still holds %d chunks after FLB_OK", in.ledger.Len())
	}
}

func TestRejectedIsReportedAndDeadLettered(t *testing.T) {
	dlq := filepath.Join(t.TempDir(), "dlq.jsonl")
	cw, osd := newFake("cloudwatch"), newFake("opensearch")
	osd.decide = func(r *sink.Record) byte {
		if r.Seq == 5 {
			return 'r'
		}
		return 'a'
	}
	in, log := newTest(t, props("dead_letter_file", dlq), cw, osd)
	if rc := in.Flush(k8sChunk(20), "kube.a"); rc != OK {
		t.Fatalf("Flush = %d, want OK (a permanent rejection settles the record)", rc)
	}
	if got := in.Reporter().Count("rejected_opensearch"); got != 1 {
		t.Fatalf("rejected_opensearch = %d, want 1", got)
	}
	if !strings.Contains(log.String(), "mapper_parsing_exception") {
		t.Fatalf("rejection not logged:\n%s", log)
	}
	data, err := os.ReadFile(dlq)
	if err != nil {
		t.Fatal(err)
	}
	var e struct {
		Destination, Type string
		Status            int
		Record            map[string]any
	}
	if err := json.Unmarshal(data, &e); err != nil || e.Destination != "opensearch" || e.Status != 400 || e.Record["kubernetes"] == nil {
		t.Fatalf("dead letter line %s (%v)", data, err)
	}
}

func TestChunkShapes(t *testing.T) {
	cases := []struct {
		name  string
		chunk []byte
		want  int
		recs  int
	}{
		{"empty", nil, OK, 0},
		{"only group markers", chunkgen.AppendGroupEnd(chunkgen.AppendGroupStart(nil, nil, nil)), OK, 0},
		{"garbage", []byte{0xc1, 0xc1, 0xc1, 0x93, 0x01}, Error, 0},
		{"valid then truncated", append(k8sChunk(10), k8sChunk(1)[:40]...), OK, 10},
		{"legacy format", chunkgen.AppendLegacy(nil, time.Unix(1677027723, 0), chunkgen.TimeInt, map[string]any{"log": "x"}), OK, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cw := newFake("cloudwatch")
			in, _ := newTest(t, props("opensearch", "off"), cw)
			if rc := in.Flush(tc.chunk, "t"); rc != tc.want {
				t.Fatalf("Flush = %d, want %d", rc, tc.want)
			}
			if total, _ := cw.count(); total != tc.recs {
				t.Fatalf("delivered %d records, want %d", total, tc.recs)
			}
		})
	}
}

func TestLogKey(t *testing.T) {
	cw := newFake("cloudwatch")
	in, _ := newTest(t, props("opensearch", "off", "log_key", "log"), cw)
	chunk := chunkgen.AppendV2(nil, time.Unix(1677027723, 0), nil, map[string]any{"log": "hello world\n", "stream": "stdout"})
	chunk = chunkgen.AppendV2(chunk, time.Unix(1677027723, 0), nil, map[string]any{"log": map[string]any{"a": 1}})
	chunk = chunkgen.AppendV2(chunk, time.Unix(1677027723, 0), nil, map[string]any{"msg": "no log key"})
	if rc := in.Flush(chunk, "t"); rc != OK {
		t.Fatalf("Flush = %d", rc)
	}
	want := []string{"hello world\n", `{"a":1}`, `{"msg":"no log key"}`}
	for i, w := range want {
		if got := string(cw.recs[i].Message); got != w {
			t.Errorf("record %d message %q, want %q", i, got, w)
		}
	}
	if in.Reporter().Count("log_key_missing") != 1 {
		t.Fatal("missing log_key not counted")
	}
}

func TestConcurrentFlushes(t *testing.T) {
	cw, osd := newFake("cloudwatch"), newFake("opensearch")
	in, _ := newTest(t, props(), cw, osd)
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 5; i++ {
				chunk, _ := chunkgen.K8sChunk(uint64(w*100+i), 100, chunkgen.Options{Namespaces: 2, Containers: 2, Start: time.Unix(1677027723, 0), Days: 1})
				if rc := in.Flush(chunk, fmt.Sprintf("kube.%d", w)); rc != OK {
					t.Errorf("Flush = %d", rc)
				}
			}
		}(w)
	}
	wg.Wait()
	for _, d := range []*fakeDest{cw, osd} {
		d.mu.Lock()
		n := len(d.recs)
		d.mu.Unlock()
		if n != 2000 {
			t.Fatalf("%s got %d records, want 2000", d.name, n)
		}
	}
}

func TestCloseIsBoundedAndRefusesLaterFlushes(t *testing.T) {
	slow := newFake("opensearch")
	slow.block = true
	in, log := newTest(t, props("cloudwatch", "off", "flush_timeout", "60s", "exit_grace", "300ms"), slow)
	done := make(chan int)
	go func() { done <- in.Flush(k8sChunk(5), "t") }()
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	in.Close()
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Close took %v with a 300ms grace", d)
	}
	if rc := <-done; rc != Retry {
		t.Fatalf("in-flight Flush = %d, want Retry", rc)
	}
	if rc := in.Flush(k8sChunk(5), "t"); rc != Retry {
		t.Fatalf("Flush after Close = %d, want Retry", rc)
	}
	if !strings.Contains(log.String(), "not fully delivered") {
		t.Fatalf("shutdown did not report undelivered chunks:\n%s", log)
	}
}

func TestBadConfigLogsEveryProblem(t *testing.T) {
	var log bytes.Buffer
	_, err := New(context.Background(), config.MapSource{"cloudwatch": "maybe", "opensearch_password": "hunter2-secret", "opensearch_auth": "basic", "opensearch_endpoint": "http://127.0.0.1:9"}, Options{Name: "0", Log: &log})
	if err == nil {
		t.Fatal("New accepted a bad config")
	}
	lines := strings.Split(strings.TrimSpace(log.String()), "\n")
	if len(lines) != len(strings.Split(err.Error(), "\n")) {
		t.Fatalf("log has %d lines for %d problems:\n%s", len(lines), len(strings.Split(err.Error(), "\n")), log.String())
	}
	for _, l := range lines {
		if !strings.Contains(l, "[error]") || !strings.Contains(l, "config: ") {
			t.Fatalf("line %q is not an error naming a key", l)
		}
	}
	if strings.Contains(log.String(), "hunter2") {
		t.Fatal("password in the log")
	}
}

// The baseline used by the benchmark must itself be right, or the ratio means nothing.
func TestBaselineReadsEveryRecord(t *testing.T) {
	var b baseline
	n, err := b.flush(k8sChunk(200), "kube.a")
	if err != nil || n != 200 || len(b.cwBatch) != 200 {
		t.Fatalf("baseline read %d records (%d messages), err %v; want 200", n, len(b.cwBatch), err)
	}
	if lines := bytes.Count(b.body.Bytes(), []byte("\n")); lines != 400 {
		t.Fatalf("baseline body has %d lines, want 400", lines)
	}
}

// A destination that returns nil without settling every record must not make the flush
// acknowledge the chunk: the records would be lost.
func TestUnsettledRecordsKeepTheChunk(t *testing.T) {
	lazy := newFake("opensearch")
	lazy.decide = func(r *sink.Record) byte {
		if r.Seq == 3 {
			return 's' // silently dropped: neither accepted, rejected nor reported pending
		}
		return 'a'
	}
	in, log := newTest(t, props("cloudwatch", "off"), lazy)
	if rc := in.Flush(k8sChunk(10), "t"); rc != Retry {
		t.Fatalf("Flush = %d, want Retry when a record was never settled", rc)
	}
	if !strings.Contains(log.String(), "without settling 1 records") {
		t.Fatalf("no error line for the unsettled record:\n%s", log.String())
	}
}
