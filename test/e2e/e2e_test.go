package e2e_test

import (
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/cwos/cloudwatch-opensearch/internal/chunkgen"
)

// k8sTotal is the record count of TestKubernetes; E2E_RECORDS overrides it (measuring).
func k8sTotal() int {
	if n, err := strconv.Atoi(os.Getenv("E2E_RECORDS")); err == nil && n > 0 {
		return n
	}
	return 200_000
}

// TestKubernetes (issue test 1): Kubernetes records over 20 namespaces x 3 containers x 2 days,
// interleaved in chunks of 2,000, flushed by 4 workers: every record exactly once in its group,
// its stream and its Lambda-mode index, with its content intact, and every flush FLB_OK.
func TestKubernetes(t *testing.T) {
	total := k8sTotal()
	const perChunk = 2_000
	p := startPeers(t, peerOptions{Seed: 1})
	recs := k8sRecords(1, total, 0, chunkgen.Options{Namespaces: 20, Containers: 3, Start: recentDays(2), Days: 2})
	files := map[string][]byte{"a.props": []byte(p.props("flush_timeout 60s", "request_timeout 30s"))}
	names := chunkFiles(files, "k8s", chunks(recs, perChunk))
	var s script
	s.line("instance a a.props")
	s.workers("a", 4, "kube.var.log.containers.e2e", names)
	s.line("exit a")
	start := time.Now()
	res := runHost(t, hostRun{files: files, script: s.String(), args: []string{"--max-retries", "3", "--retry-delay-ms", "200"}, timeout: 5 * time.Minute})
	flushTime := time.Since(start)
	if res.status != 0 {
		t.Fatalf("host exit status %d", res.status)
	}
	c := codes(t, res.stdout, "a")
	if c.n != len(names) || c.ok != len(names) || c.tries != len(names) {
		t.Errorf("flushes: %+v, want %d that succeed at the first try", c, len(names))
	}
	readStart := time.Now()
	cw, os := outcome(t, p, expect(recs, func(r *record) []place { return []place{defaultPlace(r)} }))
	ctr := counters(t, res.stderr, "cloudwatch_opensearch.0")
	groups, indices := map[string]bool{}, p.bulk.Indices()
	for i := range recs {
		groups[defaultPlace(&recs[i]).Group] = true
	}
	if len(groups) != 60 || len(indices) != 120 {
		t.Errorf("%d groups and %d indices expected from the data, want 60 and 120 (20 namespaces x 3 containers x 2 days)", len(groups), len(indices))
	}
	summarize(t, "records in=%d chunks=%d; cloudwatch %s; opensearch %s; duplicates cw=%d os=%d; rejected cw=%d os=%d; PutLogEvents=%d bulk=%d; flush %s (%.0f records/s), read back %s",
		total, len(names), cw, os, cw.Dups, os.Dups, ctr["rejected_cloudwatch"], ctr["rejected_opensearch"],
		p.proxy.Count("PutLogEvents"), p.bulk.Stats().BulkRequests, flushTime.Round(time.Millisecond),
		float64(total)/flushTime.Seconds(), time.Since(readStart).Round(time.Millisecond))
}
