package opensearch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/cwos/cloudwatch-opensearch/internal/chunkgen"
	"github.com/cwos/cloudwatch-opensearch/internal/config"
	"github.com/cwos/cloudwatch-opensearch/internal/event"
	"github.com/cwos/cloudwatch-opensearch/internal/report"
	"github.com/cwos/cloudwatch-opensearch/internal/retry"
	"github.com/cwos/cloudwatch-opensearch/internal/sink"
	"github.com/cwos/cloudwatch-opensearch/internal/testpeer/bulk"
	"github.com/cwos/cloudwatch-opensearch/internal/testpeer/logbuf"
)

// recorder is a sink.Settler that remembers every settlement.
type recorder struct {
	mu       sync.Mutex
	accepted map[int]int
	rejected map[int][]sink.Rejection
}

func newRecorder() *recorder {
	return &recorder{accepted: map[int]int{}, rejected: map[int][]sink.Rejection{}}
}

func (r *recorder) Accepted(seq int) { r.mu.Lock(); r.accepted[seq]++; r.mu.Unlock() }

func (r *recorder) Rejected(rec *sink.Record, why sink.Rejection) {
	r.mu.Lock()
	r.rejected[rec.Seq] = append(r.rejected[rec.Seq], why)
	r.mu.Unlock()
}

// settledOnce fails unless every record was settled exactly once.
func (r *recorder) settledOnce(t *testing.T, recs []sink.Record) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rec := range recs {
		a, j := r.accepted[rec.Seq], len(r.rejected[rec.Seq])
		if a+j != 1 {
			t.Fatalf("record %d settled %d times (accepted %d, rejected %d)", rec.Seq, a+j, a, j)
		}
	}
}

func (r *recorder) counts() (accepted, rejected int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range r.accepted {
		accepted += n
	}
	for _, j := range r.rejected {
		rejected += len(j)
	}
	return
}

// lambdaIndex is the Lambda's index name, written here from the seed's JavaScript:
// 'cwl' + logGroup.toLowerCase() with '/' and '.' turned into '-', then '-YYYY.MM.DD'.
func lambdaIndex(group string, t time.Time) string {
	g := strings.ToLower(group)
	g = strings.Join(strings.Split(g, "/"), "-")
	g = strings.Join(strings.Split(g, "."), "-")
	return "cwl" + g + "-" + t.UTC().Format("2006.01.02")
}

const cluster = "bys-dev-eks-main"

// k8sRecords builds n records of a Kubernetes chunk as the flush does (decode, message, id),
// with the seed's group per namespace and container and the Lambda's index.
func k8sRecords(t testing.TB, seed uint64, n int, o chunkgen.Options, firstSeq int) []sink.Record {
	t.Helper()
	chunk, gen := chunkgen.K8sChunk(seed, n, o)
	evs, st := event.Decode(chunk, nil)
	if st.Err != nil || len(evs) != n {
		t.Fatalf("decode: %d events, %v", len(evs), st.Err)
	}
	tag := "application.var.log.containers.app"
	var ids event.IDGen
	ids.Reset(tag)
	recs := make([]sink.Record, n)
	for i, ev := range evs {
		msg, err := event.AppendJSON(nil, ev.Record)
		if err != nil {
			t.Fatal(err)
		}
		group := "/aws/containerinsights/" + cluster + "." + gen[i].Namespace + "." + gen[i].Container
		recs[i] = sink.Record{Seq: firstSeq + i, Time: ev.Time, Tag: tag, Raw: ev.Record, Message: msg, ID: ids.Next(ev),
			Group: group, Stream: "ip-10-0-1-1-" + tag, Index: lambdaIndex(group, ev.Time)}
	}
	return recs
}

func parseCfg(t testing.TB, kv ...string) *config.Config {
	t.Helper()
	src := config.MapSource{"cloudwatch": "off", "opensearch": "on", "max_inflight": "4", "request_timeout": "5s", "log_group_name": "/aws/containerinsights/" + cluster}
	for i := 0; i+1 < len(kv); i += 2 {
		src[kv[i]] = kv[i+1]
	}
	cfg, err := config.Parse(src)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg
}

type fixture struct {
	peer *bulk.Server
	d    *Destination
	log  *logbuf.Buffer
	rep  *report.Reporter
}

var fastBackoff = retry.Backoff{Base: 2 * time.Millisecond, Max: 20 * time.Millisecond}

// setup starts a peer and a destination pointed at it. kv are config keys; the endpoint is
// the peer's unless opensearch_endpoint is given.
func setup(t *testing.T, po bulk.Options, kv []string, opts ...Option) *fixture {
	t.Helper()
	peer, err := bulk.Start(po)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(peer.Close)
	has := false
	for i := 0; i < len(kv); i += 2 {
		has = has || kv[i] == "opensearch_endpoint"
	}
	if !has {
		kv = append(kv, "opensearch_endpoint", peer.URL())
	}
	cfg := parseCfg(t, kv...)
	fx := &fixture{peer: peer, log: &logbuf.Buffer{}}
	fx.rep = report.New("0", fx.log)
	opts = append([]Option{WithBackoff(fastBackoff), WithGetenv(func(string) string { return "" })}, opts...)
	d, err := New(context.Background(), cfg, fx.rep, opts...)
	if err != nil {
		t.Fatal(err)
	}
	fx.d = d
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := d.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
		if n := d.BlockedRequests(); n != 0 {
			t.Errorf("opensearch-go tried %d requests of its own: %q", n, d.guard.refused)
		}
		if nb := peer.NonBulkRequests(); len(nb) != 0 {
			t.Errorf("non-_bulk requests reached the endpoint: %v", nb)
		}
		if v := peer.Violations(); len(v) != 0 {
			t.Errorf("protocol violations: %q", v)
		}
	})
	return fx
}

func (fx *fixture) deliver(t *testing.T, recs []sink.Record, r *recorder, timeout time.Duration) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return fx.d.Deliver(ctx, recs, r)
}

func TestDeliverDocumentsAndNames(t *testing.T) {
	fx := setup(t, bulk.Options{}, []string{"role_arn", "arn:aws:iam::558846430793:role/EKSFluentBitServiceRole"})
	// The seed's example: namespace aws-awssdk, container iam-dev, 2023-02-22.
	when := time.Date(2023, 2, 22, 3, 4, 5, 678_000_000, time.UTC)
	group := "/aws/containerinsights/" + cluster + ".aws-awssdk.iam-dev"
	rec := testRecord(t, m("log", "hello", "kubernetes", m("namespace_name", "aws-awssdk", "container_name", "iam-dev")),
		when, group, "node-1-application", lambdaIndex(group, when))
	if rec.Index != "cwl-aws-containerinsights-bys-dev-eks-main-aws-awssdk-iam-dev-2023.02.22" {
		t.Fatalf("test's Lambda index = %s", rec.Index)
	}
	r := newRecorder()
	if err := fx.deliver(t, []sink.Record{rec}, r, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	src, ok := fx.peer.Doc(rec.Index, rec.ID.String())
	if !ok {
		t.Fatalf("document not stored under %s/%s; indices %v", rec.Index, rec.ID, fx.peer.Indices())
	}
	var doc map[string]any
	if err := json.Unmarshal(src, &doc); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"@id": rec.ID.String(), "@timestamp": "2023-02-22T03:04:05.678Z", "@message": string(rec.Message),
		"@owner": "558846430793", "@log_group": group, "@log_stream": "node-1-application", "log": "hello",
	}
	for k, v := range want {
		if doc[k] != v {
			t.Errorf("%s = %v, want %v", k, doc[k], v)
		}
	}
	r.settledOnce(t, []sink.Record{rec})
}

func TestDeliverConcurrentChunksExactlyOnce(t *testing.T) {
	fx := setup(t, bulk.Options{DiscardSources: true}, []string{"opensearch_bulk_max_bytes", "300K"})
	var all [][]sink.Record
	for c := range 20 {
		all = append(all, k8sRecords(t, uint64(c+1), 500, chunkgen.Options{Namespaces: 3, Containers: 10}, 0))
	}
	var wg sync.WaitGroup
	recs := make([]*recorder, len(all))
	errs := make([]error, len(all))
	for i := range all {
		recs[i] = newRecorder()
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fx.deliver(t, all[i], recs[i], 30*time.Second)
		}()
	}
	wg.Wait()
	want := map[string]int{}
	for i := range all {
		if errs[i] != nil {
			t.Fatalf("chunk %d: %v", i, errs[i])
		}
		recs[i].settledOnce(t, all[i])
		for _, r := range all[i] {
			want[r.Index]++
		}
	}
	got := fx.peer.Indices()
	if len(got) != 30 || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("indices:\n got %v\nwant %v", got, want)
	}
	if fx.peer.Count() != 10_000 || fx.peer.Stats().Duplicates != 0 {
		t.Fatalf("count %d, stats %+v", fx.peer.Count(), fx.peer.Stats())
	}
	if mc := fx.peer.Stats().MaxConcurrent; mc > 4 {
		t.Fatalf("%d requests at once, max_inflight is 4", mc)
	}
	// Fluent Bit retries a chunk whose ledger entry expired: every item is a 409, accepted.
	r := newRecorder()
	if err := fx.deliver(t, all[0], r, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	r.settledOnce(t, all[0])
	if fx.peer.Count() != 10_000 || fx.peer.Stats().Duplicates != 500 || fx.rep.Count("opensearch_duplicates") != 500 {
		t.Fatalf("resend: count %d, stats %+v", fx.peer.Count(), fx.peer.Stats())
	}
}

func TestDeliverRetries429Items(t *testing.T) {
	fx := setup(t, bulk.Options{Seed: 7}, nil)
	fx.peer.SetItem429Ratio(0.3)
	recs := k8sRecords(t, 3, 3000, chunkgen.Options{Namespaces: 2, Containers: 5}, 0)
	r := newRecorder()
	if err := fx.deliver(t, recs, r, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	r.settledOnce(t, recs)
	st := fx.peer.Stats()
	if fx.peer.Count() != 3000 || st.Rejected429 < 600 || st.Duplicates != 0 {
		t.Fatalf("count %d, stats %+v", fx.peer.Count(), st)
	}
	if got := fx.rep.Count("opensearch_throttled_items"); got != int64(st.Rejected429) {
		t.Fatalf("throttled counter %d, endpoint answered %d", got, st.Rejected429)
	}
}

func TestDeliverRejectsBadItemsAndDeliversTheRest(t *testing.T) {
	fx := setup(t, bulk.Options{AutoCreateIndex: func(ix string) bool { return !strings.HasPrefix(ix, "closed-") }}, nil)
	fx.peer.RejectDocuments("level", func(_ string, src []byte) bool { return bytes.Contains(src, []byte(`"level":"oops"`)) })
	when := time.Date(2023, 2, 22, 0, 0, 0, 0, time.UTC)
	var recs []sink.Record
	for i := range 50 {
		fields := m("log", fmt.Sprintf("line %d", i), "level", 1)
		index := "logs-a"
		switch i {
		case 7, 31:
			fields[1].Value = "oops"
		case 12:
			index = "closed-b"
		}
		rec := testRecord(t, fields, when, "g", "s", index)
		rec.Seq = i
		recs = append(recs, rec)
	}
	r := newRecorder()
	if err := fx.deliver(t, recs, r, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	r.settledOnce(t, recs)
	if a, j := r.counts(); a != 47 || j != 3 {
		t.Fatalf("accepted %d rejected %d", a, j)
	}
	for _, seq := range []int{7, 31} {
		why := r.rejected[seq][0]
		if why.Destination != "opensearch" || why.Target != "logs-a" || why.Status != 400 || why.Type != "mapper_parsing_exception" ||
			!strings.Contains(why.Reason, "failed to parse field [level] of type [long]") || !strings.Contains(why.Reason, "caused by illegal_argument_exception") {
			t.Fatalf("rejection of %d: %+v", seq, why)
		}
	}
	if why := r.rejected[12][0]; why.Status != 404 || why.Type != "index_not_found_exception" || why.Target != "closed-b" {
		t.Fatalf("rejection of 12: %+v", why)
	}
	if fx.peer.Count() != 47 {
		t.Fatalf("stored %d", fx.peer.Count())
	}
}

func TestDeliverForbiddenKeepsDataWithOneHint(t *testing.T) {
	role := "arn:aws:iam::558846430793:role/AmazonLambdaOpensearchRole"
	fx := setup(t, bulk.Options{Principal: role}, nil)
	fx.peer.FailRequests(403, -1)
	recs := k8sRecords(t, 5, 200, chunkgen.Options{}, 0)
	for range 5 {
		r := newRecorder()
		err := fx.deliver(t, recs, r, 5*time.Second)
		var perm *sink.PermissionError
		var pend *sink.PendingError
		if !errors.As(err, &perm) || !errors.As(err, &pend) || pend.Pending != 200 {
			t.Fatalf("err = %v, want a PendingError of 200 wrapping a PermissionError", err)
		}
		if !strings.Contains(perm.Hint, "indices:data/write/bulk") || !strings.Contains(perm.Hint, "map the IAM role "+role+" as a backend role") {
			t.Fatalf("hint = %q", perm.Hint)
		}
		if a, j := r.counts(); a+j != 0 {
			t.Fatalf("settled %d records on a 403", a+j)
		}
	}
	if n := strings.Count(fx.log.String(), "Fix:"); n != 1 {
		t.Fatalf("%d hint lines in 5 flushes, want 1:\n%s", n, fx.log.String())
	}
	if got := fx.peer.Stats().BulkRequests; got != 5 {
		t.Fatalf("%d requests for 5 flushes: a 403 must not be retried inside the flush", got)
	}
	fx.peer.FailRequests(0, 0) // the role mapping is fixed
	r := newRecorder()
	if err := fx.deliver(t, recs, r, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	r.settledOnce(t, recs)
	if fx.peer.Count() != 200 {
		t.Fatalf("stored %d", fx.peer.Count())
	}
}

func TestDeliverItemLevelForbidden(t *testing.T) {
	fx := setup(t, bulk.Options{}, nil)
	fx.peer.SetItemFault(func(it bulk.Item) (int, string, string) {
		if strings.HasSuffix(it.Index, "-c0") {
			return 403, "security_exception", "no permissions for [indices:data/write/bulk[s]] and User [name=fluent, backend_roles=[], requestedTenant=null]"
		}
		return 0, "", ""
	})
	when := time.Date(2023, 2, 22, 0, 0, 0, 0, time.UTC)
	var recs []sink.Record
	for i := range 20 {
		rec := testRecord(t, m("n", i), when, "g", "s", fmt.Sprintf("logs-c%d", i%2))
		rec.Seq = i
		recs = append(recs, rec)
	}
	r := newRecorder()
	err := fx.deliver(t, recs, r, 5*time.Second)
	var perm *sink.PermissionError
	var pend *sink.PendingError
	if !errors.As(err, &perm) || !errors.As(err, &pend) || pend.Pending != 10 || !strings.Contains(perm.Hint, "map the internal user fluent") {
		t.Fatalf("err = %v", err)
	}
	if a, _ := r.counts(); a != 10 || fx.peer.Count() != 10 {
		t.Fatalf("accepted %d, stored %d", a, fx.peer.Count())
	}
}

func TestDeliver503RetriesThenNextFlush(t *testing.T) {
	fx := setup(t, bulk.Options{}, nil)
	recs := k8sRecords(t, 9, 300, chunkgen.Options{}, 0)

	fx.peer.FailRequests(503, 2) // inside one flush: retried with backoff
	r := newRecorder()
	if err := fx.deliver(t, recs, r, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	r.settledOnce(t, recs)

	fx.peer.Reset()
	fx.peer.FailRequests(503, -1) // the whole flush: FLB_RETRY
	r = newRecorder()
	err := fx.deliver(t, recs, r, 300*time.Millisecond)
	var pend *sink.PendingError
	if !errors.As(err, &pend) || pend.Pending != 300 || !strings.Contains(err.Error(), "503") {
		t.Fatalf("err = %v", err)
	}
	if fx.peer.Stats().BulkRequests < 2 {
		t.Fatalf("only %d attempts within the flush", fx.peer.Stats().BulkRequests)
	}
	fx.peer.FailRequests(0, 0)
	r = newRecorder() // Fluent Bit's retry of the same chunk
	if err := fx.deliver(t, recs, r, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	r.settledOnce(t, recs)
	// A request the flush gave up on may still have landed (the endpoint finished it after
	// the client left): its items come back 409 and count once.
	if st := fx.peer.Stats(); fx.peer.Count() != 300 || st.Created != 300 {
		t.Fatalf("count %d stats %+v", fx.peer.Count(), st)
	}
}

func TestDeliverSplitsOn413(t *testing.T) {
	fx := setup(t, bulk.Options{MaxBodyBytes: 40_000}, []string{"opensearch_bulk_max_bytes", "1M"})
	recs := k8sRecords(t, 11, 400, chunkgen.Options{}, 0)
	r := newRecorder()
	if err := fx.deliver(t, recs, r, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	r.settledOnce(t, recs)
	if fx.peer.Count() != 400 || fx.peer.Stats().TooLarge == 0 {
		t.Fatalf("count %d stats %+v", fx.peer.Count(), fx.peer.Stats())
	}
	if l := fx.d.limit.Load(); l >= 1_000_000 || l < minSplitBytes {
		t.Fatalf("learned body limit %d", l)
	}
	if !strings.Contains(fx.log.String(), "413") {
		t.Fatalf("no 413 warning in %s", fx.log.String())
	}
	// The next chunk is sent at the learned size from the start.
	fx.peer.Reset()
	fx.peer.SetMaxBodyBytes(40_000)
	more := k8sRecords(t, 12, 400, chunkgen.Options{}, 0)
	r = newRecorder()
	if err := fx.deliver(t, more, r, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	if st := fx.peer.Stats(); st.TooLarge != 0 || fx.peer.Count() != 400 {
		t.Fatalf("second chunk: count %d stats %+v", fx.peer.Count(), st)
	}
}

func TestDeliverOversizedDocuments(t *testing.T) {
	fx := setup(t, bulk.Options{MaxBodyBytes: 20_000}, []string{"opensearch_bulk_max_bytes", "50K"})
	when := time.Date(2023, 2, 22, 0, 0, 0, 0, time.UTC)
	small := testRecord(t, m("log", "fine"), when, "g", "s", "logs")
	mid := testRecord(t, m("log", strings.Repeat("m", 12_000)), when, "g", "s", "logs") // over the endpoint's limit
	big := testRecord(t, m("log", strings.Repeat("b", 30_000)), when, "g", "s", "logs") // over ours
	small.Seq, mid.Seq, big.Seq = 0, 1, 2
	recs := []sink.Record{small, mid, big}
	r := newRecorder()
	if err := fx.deliver(t, recs, r, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	r.settledOnce(t, recs)
	if why := r.rejected[2]; len(why) != 1 || why[0].Type != "document_too_large" || why[0].Status != 413 || !strings.Contains(why[0].Reason, "opensearch_bulk_max_bytes") {
		t.Fatalf("big: %+v", why)
	}
	if why := r.rejected[1]; len(why) != 1 || why[0].Type != "request_entity_too_large" || why[0].Status != 413 {
		t.Fatalf("mid: %+v", why)
	}
	if r.accepted[0] != 1 || fx.peer.Count() != 1 {
		t.Fatalf("small not delivered: %v, %d stored", r.accepted, fx.peer.Count())
	}
}

func TestDeliverEndpointDown(t *testing.T) {
	fx := setup(t, bulk.Options{}, nil)
	recs := k8sRecords(t, 13, 100, chunkgen.Options{}, 0)
	fx.peer.Stop()
	r := newRecorder()
	err := fx.deliver(t, recs, r, 300*time.Millisecond)
	var pend *sink.PendingError
	if !errors.As(err, &pend) || pend.Pending != 100 {
		t.Fatalf("err = %v", err)
	}
	if a, j := r.counts(); a+j != 0 {
		t.Fatalf("settled %d while down", a+j)
	}
	if err := fx.peer.Restart(); err != nil {
		t.Fatal(err)
	}
	r = newRecorder()
	if err := fx.deliver(t, recs, r, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	r.settledOnce(t, recs)
	if fx.peer.Count() != 100 {
		t.Fatalf("stored %d", fx.peer.Count())
	}
}

func TestDeliverFailsOverBetweenEndpoints(t *testing.T) {
	peer, err := bulk.Start(bulk.Options{PathPrefix: "/es"})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	// A node that accepts connections and drops them: counts how often it is tried.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var tries atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tries.Add(1)
			c.Close()
		}
	}()
	dead := "http://" + ln.Addr().String() + "/es"
	fx := setup(t, bulk.Options{}, []string{"opensearch_endpoint", dead + "," + peer.URL()})
	recs := k8sRecords(t, 15, 200, chunkgen.Options{}, 0)
	for round := range 4 {
		r := newRecorder()
		if err := fx.deliver(t, recs[round*50:(round+1)*50], r, 5*time.Second); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
	}
	if peer.Count() != 200 || fx.peer.Count() != 0 {
		t.Fatalf("stored %d on the live endpoint", peer.Count())
	}
	if v := peer.Violations(); len(v) != 0 {
		t.Fatal(v)
	}
	if fx.rep.Count("opensearch_requests") != 4 {
		t.Fatalf("%d requests: fail-over must happen inside one attempt", fx.rep.Count("opensearch_requests"))
	}
	if n := tries.Load(); n != 1 {
		t.Fatalf("the dropping node was tried %d times, want once (then skipped for %s)", n, downFor)
	}
}

func TestDeliverSigV4GzipPathPrefix(t *testing.T) {
	for _, svc := range []string{"es", "aoss"} {
		t.Run(svc, func(t *testing.T) {
			creds := bulk.SigV4Credentials{AccessKeyID: "AKIDPLUGIN", SecretAccessKey: "plugin/secret+key", SessionToken: "session-token", Region: "ap-northeast-2", Service: svc}
			awsCfg := aws.Config{Region: "ap-northeast-2", Credentials: credentials.NewStaticCredentialsProvider("AKIDPLUGIN", "plugin/secret+key", "session-token")}
			fx := setup(t, bulk.Options{SigV4: &creds, PathPrefix: "/proxy/os"},
				[]string{"opensearch_auth", "aws_sigv4", "opensearch_aws_service", svc, "opensearch_region", "ap-northeast-2", "opensearch_compress", "gzip"},
				WithAWSConfig(awsCfg))
			recs := k8sRecords(t, 17, 1000, chunkgen.Options{Namespaces: 2}, 0)
			r := newRecorder()
			if err := fx.deliver(t, recs, r, 20*time.Second); err != nil {
				t.Fatalf("%v; endpoint auth failures: %q", err, fx.peer.AuthFailures())
			}
			r.settledOnce(t, recs)
			st := fx.peer.Stats()
			if st.SignedRequests == 0 || st.GzipRequests != st.BulkRequests || st.AuthFailures != 0 || fx.peer.Count() != 1000 {
				t.Fatalf("stats %+v", st)
			}
			if st.WireBytes*3 > st.BodyBytes {
				t.Fatalf("gzip saved little: %d -> %d bytes", st.BodyBytes, st.WireBytes)
			}
			if svc == "aoss" {
				// opensearch_id defaults to off for aoss: action index, ids from the collection.
				// The cost: a resend is stored again.
				if fx.peer.IDs(recs[0].Index)[0] == recs[0].ID.String() {
					t.Fatal("aoss documents carry our _id")
				}
				r = newRecorder()
				if err := fx.deliver(t, recs[:10], r, 5*time.Second); err != nil {
					t.Fatal(err)
				}
				if fx.peer.Count() != 1010 {
					t.Fatalf("aoss resend: %d stored, want 1010 (no dedup without _id)", fx.peer.Count())
				}
			}
		})
	}
}

func TestDeliverSigV4WrongSecret(t *testing.T) {
	creds := bulk.SigV4Credentials{AccessKeyID: "AKIDPLUGIN", SecretAccessKey: "right", Region: "us-east-1", Service: "es"}
	awsCfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("AKIDPLUGIN", "wrong-secret-value", "")}
	fx := setup(t, bulk.Options{SigV4: &creds}, []string{"opensearch_auth", "aws_sigv4", "opensearch_region", "us-east-1"}, WithAWSConfig(awsCfg))
	recs := k8sRecords(t, 19, 10, chunkgen.Options{}, 0)
	err := fx.deliver(t, recs, newRecorder(), 5*time.Second)
	var perm *sink.PermissionError
	if !errors.As(err, &perm) || !strings.Contains(perm.Hint, "SigV4") || !strings.Contains(perm.Hint, "us-east-1") {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(fx.log.String(), "wrong-secret-value") || strings.Contains(err.Error(), "wrong-secret-value") {
		t.Fatal("the secret key leaked into a log line or error")
	}
}

func TestDeliverBasicAuthOverTLS(t *testing.T) {
	const password = "hunter2-very-secret"
	peer, err := bulk.Start(bulk.Options{TLS: true, Basic: &bulk.BasicAuth{User: "fluent-bit", Password: password}})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, peer.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	recs := k8sRecords(t, 21, 50, chunkgen.Options{}, 0)
	tests := []struct {
		name    string
		kv      []string
		ok      bool
		errText string
	}{
		{"ca file", []string{"opensearch_tls_ca_file", ca, "opensearch_password", password}, true, ""},
		{"system roots only", []string{"opensearch_password", password}, false, "certificate"},
		{"verify off", []string{"opensearch_tls_verify", "off", "opensearch_password", password}, true, ""},
		{"wrong password", []string{"opensearch_tls_ca_file", ca, "opensearch_password", "not-" + password}, false, "401"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kv := append([]string{"opensearch_endpoint", peer.URL(), "opensearch_auth", "basic", "opensearch_user", "fluent-bit"}, tt.kv...)
			fx := setup(t, bulk.Options{}, kv)
			err := fx.deliver(t, recs, newRecorder(), 300*time.Millisecond)
			if (err == nil) != tt.ok || (err != nil && !strings.Contains(err.Error(), tt.errText)) {
				t.Fatalf("err = %v, want ok=%v containing %q", err, tt.ok, tt.errText)
			}
			if strings.Contains(fx.log.String(), password) || (err != nil && strings.Contains(err.Error(), password)) {
				t.Fatal("the password leaked")
			}
			if tt.name == "wrong password" {
				var perm *sink.PermissionError
				if !errors.As(err, &perm) || !strings.Contains(perm.Hint, `opensearch_user "fluent-bit"`) {
					t.Fatalf("err = %v", err)
				}
			}
		})
	}
	if peer.Count() != 50 || len(peer.NonBulkRequests()) != 0 {
		t.Fatalf("stored %d, non-bulk %v", peer.Count(), peer.NonBulkRequests())
	}
}

func TestDeliverRequestTimeout(t *testing.T) {
	fx := setup(t, bulk.Options{}, []string{"request_timeout", "100ms"})
	fx.peer.SetDelay(time.Second)
	recs := k8sRecords(t, 23, 20, chunkgen.Options{}, 0)
	start := time.Now()
	err := fx.deliver(t, recs, newRecorder(), 450*time.Millisecond)
	var pend *sink.PendingError
	if !errors.As(err, &pend) || time.Since(start) > 2*time.Second {
		t.Fatalf("err = %v after %s", err, time.Since(start))
	}
	if n := fx.peer.Stats().BulkRequests; n < 2 {
		t.Fatalf("%d attempts: a timed-out request must be retried within the flush", n)
	}
	fx.peer.SetDelay(0)
	r := newRecorder()
	if err := fx.deliver(t, recs, r, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	r.settledOnce(t, recs)
	// Timed-out requests may have landed: the resend is answered 409 and still counts once.
	if fx.peer.Count() != 20 {
		t.Fatalf("stored %d", fx.peer.Count())
	}
}

func TestMaxInflight(t *testing.T) {
	fx := setup(t, bulk.Options{}, []string{"max_inflight", "2"})
	fx.peer.SetDelay(40 * time.Millisecond)
	var wg sync.WaitGroup
	for i := range 8 {
		recs := k8sRecords(t, uint64(30+i), 20, chunkgen.Options{}, 0)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fx.deliver(t, recs, newRecorder(), 10*time.Second); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if mc := fx.peer.Stats().MaxConcurrent; mc != 2 {
		t.Fatalf("max concurrent requests %d, want 2", mc)
	}
	if fx.peer.Count() != 160 {
		t.Fatalf("stored %d", fx.peer.Count())
	}
}

func TestCloseWaitsAndRefuses(t *testing.T) {
	fx := setup(t, bulk.Options{}, nil)
	fx.peer.SetDelay(100 * time.Millisecond)
	recs := k8sRecords(t, 40, 10, chunkgen.Options{}, 0)
	done := make(chan error, 1)
	r := newRecorder()
	go func() { done <- fx.deliver(t, recs, r, 5*time.Second) }()
	time.Sleep(30 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := fx.d.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if a, _ := r.counts(); a != 10 {
		t.Fatalf("Close returned with the in-flight delivery unsettled (%d of 10)", a)
	}
	if err := <-done; err != nil {
		t.Fatalf("in-flight delivery: %v", err)
	}
	var pend *sink.PendingError
	if err := fx.deliver(t, recs, newRecorder(), time.Second); !errors.As(err, &pend) {
		t.Fatalf("after Close: %v", err)
	}
}
