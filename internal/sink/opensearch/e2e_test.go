package opensearch_test

// End-to-end through the plugin's code path: Fluent Bit chunk bytes -> delivery.Instance.Flush
// (decode, names, ids, ledger, settler, dead letters) -> this destination -> the _bulk test
// endpoint, which checks what arrives with code of its own.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cwos/cloudwatch-opensearch/internal/chunkgen"
	"github.com/cwos/cloudwatch-opensearch/internal/config"
	"github.com/cwos/cloudwatch-opensearch/internal/delivery"
	"github.com/cwos/cloudwatch-opensearch/internal/testpeer/bulk"
	"github.com/cwos/cloudwatch-opensearch/internal/testpeer/logbuf"
)

const (
	clusterName = "bys-dev-eks-main"
	tag         = "application.var.log.containers.app"
)

// seedIndex is the Lambda's index name, from the seed's JavaScript: 'cwl' + the group
// lowercased with '/' and '.' replaced by '-', then '-YYYY.MM.DD' of the record time.
func seedIndex(group string, t time.Time) string {
	g := strings.ToLower(group)
	g = strings.ReplaceAll(g, "/", "-")
	g = strings.ReplaceAll(g, ".", "-")
	return fmt.Sprintf("cwl%s-%04d.%02d.%02d", g, t.UTC().Year(), int(t.UTC().Month()), t.UTC().Day())
}

type e2e struct {
	peer *bulk.Server
	in   *delivery.Instance
	log  *logbuf.Buffer
}

// start runs the endpoint and a plugin instance in Lambda mode (the seed's Fluent Bit
// config: one group per namespace and container, CloudWatch off here).
func start(t *testing.T, po bulk.Options, kv ...string) *e2e {
	t.Helper()
	peer, err := bulk.Start(po)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(peer.Close)
	src := config.MapSource{
		"cloudwatch":          "off",
		"opensearch":          "on",
		"opensearch_endpoint": peer.URL(),
		"log_group_name":      "/aws/containerinsights/" + clusterName,
		"log_group_template":  "/aws/containerinsights/" + clusterName + ".$kubernetes['namespace_name'].$kubernetes['container_name']",
		"log_stream_prefix":   "ip-10-0-1-1-",
		"role_arn":            "arn:aws:iam::558846430793:role/EKSFluentBitServiceRole",
		"flush_timeout":       "3s",
		"max_inflight":        "4",
	}
	for i := 0; i+1 < len(kv); i += 2 {
		src[kv[i]] = kv[i+1]
	}
	log := &logbuf.Buffer{}
	in, err := delivery.New(context.Background(), src, delivery.Options{Name: "0", Log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		in.Close()
		if v := peer.Violations(); len(v) != 0 {
			t.Errorf("protocol violations: %q", v)
		}
		if nb := peer.NonBulkRequests(); len(nb) != 0 {
			t.Errorf("non-_bulk requests: %v", nb)
		}
	})
	return &e2e{peer: peer, in: in, log: log}
}

func TestFlush100kRecordsOver30IndicesExactlyOnce(t *testing.T) {
	e := start(t, bulk.Options{DiscardSources: true}, "flush_timeout", "20s")
	want := map[string]int{}
	chunks := make([][]byte, 100)
	for c := range chunks {
		var gen []chunkgen.Generated
		chunks[c], gen = chunkgen.K8sChunk(uint64(1000+c), 1000, chunkgen.Options{Namespaces: 3, Containers: 10})
		for _, g := range gen {
			group := "/aws/containerinsights/" + clusterName + "." + g.Namespace + "." + g.Container
			want[seedIndex(group, g.Time)]++
		}
	}
	// Four Fluent Bit workers flushing at once.
	work := make(chan []byte)
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	retries := 0 // only on a machine too slow for flush_timeout
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ch := range work {
				code := e.in.Flush(ch, tag)
				try := 0
				for ; code == delivery.Retry && try < 5; try++ {
					code = e.in.Flush(ch, tag) // Fluent Bit sends the same bytes again
				}
				mu.Lock()
				codes[code]++
				retries += try
				mu.Unlock()
			}
		}()
	}
	for _, ch := range chunks {
		work <- ch
	}
	close(work)
	wg.Wait()
	if codes[delivery.OK] != 100 {
		t.Fatalf("return codes %v, want 100 FLB_OK; log:\n%s", codes, e.log.String())
	}
	got := e.peer.Indices()
	if len(want) != 30 || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("indices:\n got %v\nwant %v", got, want)
	}
	st := e.peer.Stats()
	if e.peer.Count() != 100_000 || st.Created != 100_000 {
		t.Fatalf("count %d, stats %+v", e.peer.Count(), st)
	}
	if retries == 0 && (st.Duplicates != 0 || st.Items != 100_000) {
		t.Fatalf("documents sent twice without a retry: %+v", st)
	}
	// Fluent Bit delivering a chunk again (after a restart, say): no new document.
	if code := e.in.Flush(chunks[42], tag); code != delivery.OK {
		t.Fatalf("re-flush: %d", code)
	}
	if e.peer.Count() != 100_000 || e.peer.Stats().Duplicates != st.Duplicates+1000 {
		t.Fatalf("re-flush stored again: count %d, stats %+v", e.peer.Count(), e.peer.Stats())
	}
}

// TestFlushSeedExample checks the index name and every @ field of the cwl document for the
// seed's example group, record by record.
func TestFlushSeedExample(t *testing.T) {
	e := start(t, bulk.Options{})
	when := time.Date(2023, 2, 22, 1, 2, 3, 456_000_000, time.UTC)
	rec := chunkgen.Map{
		{Key: "log", Value: `{"level":"info","msg":"assumed role"}`},
		{Key: "stream", Value: "stdout"},
		{Key: "kubernetes", Value: chunkgen.Map{{Key: "namespace_name", Value: "aws-awssdk"}, {Key: "container_name", Value: "iam-dev"}, {Key: "pod_name", Value: "iam-dev-7c9"}}},
	}
	chunk := chunkgen.AppendV2(nil, when, nil, rec)
	chunk = chunkgen.AppendV2(chunk, when.Add(24*time.Hour), nil, rec)
	if code := e.in.Flush(chunk, tag); code != delivery.OK {
		t.Fatalf("flush: %d\n%s", code, e.log.String())
	}
	group := "/aws/containerinsights/bys-dev-eks-main.aws-awssdk.iam-dev"
	for day, index := range []string{
		"cwl-aws-containerinsights-bys-dev-eks-main-aws-awssdk-iam-dev-2023.02.22",
		"cwl-aws-containerinsights-bys-dev-eks-main-aws-awssdk-iam-dev-2023.02.23",
	} {
		if index != seedIndex(group, when.Add(time.Duration(day)*24*time.Hour)) {
			t.Fatalf("test's own Lambda rule disagrees with the seed for %s", index)
		}
		ids := e.peer.IDs(index)
		if len(ids) != 1 {
			t.Fatalf("index %s has %v; indices %v", index, ids, e.peer.Indices())
		}
		src, _ := e.peer.Doc(index, ids[0])
		var doc map[string]any
		if err := json.Unmarshal(src, &doc); err != nil {
			t.Fatal(err)
		}
		var msg map[string]any
		if err := json.Unmarshal([]byte(doc["@message"].(string)), &msg); err != nil || msg["log"] != rec[0].Value {
			t.Fatalf("@message = %v (%v)", doc["@message"], err)
		}
		wantTS := when.Add(time.Duration(day) * 24 * time.Hour).Format("2006-01-02T15:04:05.000Z")
		checks := map[string]any{
			"@id": ids[0], "@timestamp": wantTS, "@owner": "558846430793",
			"@log_group": group, "@log_stream": "ip-10-0-1-1-" + tag,
			"log": rec[0].Value, "stream": "stdout",
		}
		for k, v := range checks {
			if doc[k] != v {
				t.Errorf("%s: %s = %v, want %v", index, k, doc[k], v)
			}
		}
		if k8s, _ := doc["kubernetes"].(map[string]any); k8s["namespace_name"] != "aws-awssdk" {
			t.Errorf("kubernetes = %v", doc["kubernetes"])
		}
	}
}

func TestFlushFaults(t *testing.T) {
	chunk, gen := chunkgen.K8sChunk(77, 2000, chunkgen.Options{Namespaces: 2, Containers: 3})

	t.Run("30% of items 429", func(t *testing.T) {
		e := start(t, bulk.Options{Seed: 3}, "flush_timeout", "20s") // backoff from 100 ms, doubling
		e.peer.SetItem429Ratio(0.3)
		if code := e.in.Flush(chunk, tag); code != delivery.OK {
			t.Fatalf("flush: %d\n%s", code, e.log.String())
		}
		if st := e.peer.Stats(); e.peer.Count() != 2000 || st.Rejected429 < 400 || st.Duplicates != 0 {
			t.Fatalf("count %d stats %+v", e.peer.Count(), st)
		}
	})

	t.Run("400 items dead-lettered, rest delivered", func(t *testing.T) {
		dlq := filepath.Join(t.TempDir(), "dead.jsonl")
		e := start(t, bulk.Options{}, "dead_letter_file", dlq)
		e.peer.RejectDocuments("stream", func(_ string, src []byte) bool { return bytes.Contains(src, []byte(`"stream":"stderr"`)) })
		bad := 0
		for _, g := range gen {
			if v, _ := g.Record.Get("stream"); v == "stderr" {
				bad++
			}
		}
		if code := e.in.Flush(chunk, tag); code != delivery.OK {
			t.Fatalf("flush: %d\n%s", code, e.log.String())
		}
		if e.peer.Count() != 2000-bad || bad == 0 {
			t.Fatalf("stored %d, want %d", e.peer.Count(), 2000-bad)
		}
		f, err := os.Open(dlq)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		n := 0
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var ent struct {
				Destination, Target, Type, Reason string
				Status                            int
				Record                            map[string]any
			}
			if err := json.Unmarshal(sc.Bytes(), &ent); err != nil {
				t.Fatal(err)
			}
			if ent.Destination != "opensearch" || ent.Status != 400 || ent.Type != "mapper_parsing_exception" ||
				!strings.HasPrefix(ent.Target, "cwl-aws-containerinsights-") || !strings.Contains(ent.Reason, "failed to parse field [stream]") || ent.Record["stream"] != "stderr" {
				t.Fatalf("dead letter %s", sc.Bytes())
			}
			n++
		}
		if n != bad {
			t.Fatalf("%d dead letters, want %d", n, bad)
		}
		if !strings.Contains(e.log.String(), "mapper_parsing_exception") {
			t.Fatalf("rejections not reported:\n%s", e.log.String())
		}
	})

	t.Run("403 on every request", func(t *testing.T) {
		e := start(t, bulk.Options{Principal: "arn:aws:iam::558846430793:role/EKSFluentBitServiceRole"})
		e.peer.FailRequests(403, -1)
		for i := range 3 {
			if code := e.in.Flush(chunk, tag); code != delivery.Retry {
				t.Fatalf("flush %d: %d, want FLB_RETRY", i, code)
			}
		}
		log := e.log.String()
		if n := strings.Count(log, "Fix:"); n != 1 || !strings.Contains(log, "no permissions for [indices:data/write/bulk]") ||
			!strings.Contains(log, "map the IAM role arn:aws:iam::558846430793:role/EKSFluentBitServiceRole as a backend role") {
			t.Fatalf("want one clear hint, got %d:\n%s", n, log)
		}
		if e.peer.Count() != 0 {
			t.Fatal("stored documents on a 403")
		}
		e.peer.FailRequests(0, 0)
		if code := e.in.Flush(chunk, tag); code != delivery.OK || e.peer.Count() != 2000 {
			t.Fatalf("after the fix: %d, %d stored", code, e.peer.Count())
		}
	})

	t.Run("503 then the next flush", func(t *testing.T) {
		e := start(t, bulk.Options{}, "flush_timeout", "1500ms")
		e.peer.FailRequests(503, -1)
		if code := e.in.Flush(chunk, tag); code != delivery.Retry {
			t.Fatalf("flush: %d, want FLB_RETRY", code)
		}
		e.peer.FailRequests(0, 0)
		if code := e.in.Flush(chunk, tag); code != delivery.OK {
			t.Fatalf("retry: %d\n%s", code, e.log.String())
		}
		if st := e.peer.Stats(); e.peer.Count() != 2000 || st.Created != 2000 {
			t.Fatalf("count %d stats %+v", e.peer.Count(), st)
		}
	})

	t.Run("413 splits the body", func(t *testing.T) {
		e := start(t, bulk.Options{MaxBodyBytes: 100_000})
		if code := e.in.Flush(chunk, tag); code != delivery.OK {
			t.Fatalf("flush: %d\n%s", code, e.log.String())
		}
		if st := e.peer.Stats(); e.peer.Count() != 2000 || st.TooLarge == 0 || st.Duplicates != 0 {
			t.Fatalf("count %d stats %+v", e.peer.Count(), st)
		}
	})

	t.Run("endpoint down", func(t *testing.T) {
		e := start(t, bulk.Options{}, "flush_timeout", "1500ms")
		e.peer.Stop()
		if code := e.in.Flush(chunk, tag); code != delivery.Retry {
			t.Fatalf("flush while down: %d", code)
		}
		if err := e.peer.Restart(); err != nil {
			t.Fatal(err)
		}
		if code := e.in.Flush(chunk, tag); code != delivery.OK {
			t.Fatalf("flush after restart: %d\n%s", code, e.log.String())
		}
		if e.peer.Count() != 2000 {
			t.Fatalf("stored %d", e.peer.Count())
		}
	})
}
