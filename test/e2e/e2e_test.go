package e2e_test

import (
	"context"
	"os"
	"strconv"
	"strings"
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

// outage flushes 8 chunks at once (workers 8) while breakOS keeps OpenSearch from taking them
// and CloudWatch works; once CloudWatch holds every record and the first tries have answered
// FLB_RETRY, fixOS repairs OpenSearch and the host's resends (the same bytes, as Fluent Bit's
// scheduler sends them) finish the job. Every chunk must end FLB_OK after at least one retry,
// with every record once on both sides: the ledger keeps CloudWatch from getting a record twice.
func outage(t *testing.T, seed uint64, breakOS, fixOS func(p *peers)) (*peers, hostResult, []record, map[string]int64) {
	t.Helper()
	// Small enough for moto to take every record well within the first try's flush_timeout even
	// on a loaded machine: a PutLogEvents cut off by a timeout after moto stored it is sent
	// again, the one duplicate at-least-once allows (and the proxy's Failed count shows).
	const nChunks, perChunk = 8, 250
	total := nChunks * perChunk
	p := startPeers(t, peerOptions{Seed: seed})
	recs := k8sRecords(seed, total, 0, chunkgen.Options{Namespaces: 4, Containers: 2, Start: recentDays(2), Days: 2})
	files := map[string][]byte{"a.props": []byte(p.props("Workers 8", "flush_timeout 5s", "request_timeout 4s"))}
	names := chunkFiles(files, "c", chunks(recs, perChunk))
	var s script
	s.line("instance a a.props").workers("a", nChunks, "kube.var.log.containers.outage", names).line("exit a")
	breakOS(p)
	fixed := false
	start := time.Now()
	res := runHost(t, hostRun{
		files: files, script: s.String(), args: []string{"--max-retries", "30", "--retry-delay-ms", "300"},
		during: func(ctx context.Context, _ *lineWatcher) {
			if !poll(ctx, func() bool { return p.proxy.Forwarded() >= total }) {
				return
			}
			// Every first try has ended by flush_timeout (5s, all start together); fix
			// OpenSearch only once they have all answered FLB_RETRY and been resent.
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Until(start.Add(6500 * time.Millisecond))):
			}
			fixOS(p)
			fixed = true
		},
	})
	if res.status != 0 {
		t.Fatalf("host exit status %d", res.status)
	}
	if !fixed {
		t.Fatalf("CloudWatch never received all %d records while OpenSearch was broken (%d forwarded)", total, p.proxy.Forwarded())
	}
	c := codes(t, res.stdout, "a")
	if c.n != nChunks || c.ok != nChunks || c.minTries < 2 {
		t.Errorf("flushes: %+v, want %d that end FLB_OK after at least one FLB_RETRY", c, nChunks)
	}
	if n := p.proxy.Forwarded(); n != total {
		t.Errorf("CloudWatch received %d events for %d records: retries resent what it had accepted", n, total)
	}
	ctr := counters(t, res.stderr, "cloudwatch_opensearch.0")
	if ctr["resend_avoided_cloudwatch"] < int64(total) || ctr["chunk_retries"] < nChunks {
		t.Errorf("counters %v: want resend_avoided_cloudwatch >= %d and chunk_retries >= %d", ctr, total, nChunks)
	}
	return p, res, recs, ctr
}

// TestOpenSearchDown (issue test 2): OpenSearch refuses connections for the first flushes while
// CloudWatch is up; afterwards both hold every record once, CloudWatch not twice.
func TestOpenSearchDown(t *testing.T) {
	t.Parallel()
	p, res, recs, ctr := outage(t, 2, func(p *peers) { p.bulk.Stop() }, func(p *peers) {
		if err := p.bulk.Restart(); err != nil {
			t.Errorf("restart the _bulk endpoint: %v", err)
		}
	})
	cw, os := outcome(t, p, expect(recs, func(r *record) []place { return []place{defaultPlace(r)} }))
	c := codes(t, res.stdout, "a")
	summarize(t, "records in=%d; cloudwatch %s (events sent %d); opensearch %s; duplicates cw=%d os=%d; rejected cw=%d os=%d; flushes=%d tries=%d; resend avoided cw=%d",
		len(recs), cw, p.proxy.Forwarded(), os, cw.Dups, os.Dups, ctr["rejected_cloudwatch"], ctr["rejected_opensearch"],
		c.n, c.tries, ctr["resend_avoided_cloudwatch"])
}

// TestOpenSearchForbidden (issue test 5): OpenSearch answers 403 security_exception (a missing
// role mapping) for a while, then the mapping is fixed: nothing is lost, nothing doubled, and the
// fix was printed once, not once per request.
func TestOpenSearchForbidden(t *testing.T) {
	t.Parallel()
	p, res, recs, ctr := outage(t, 5, func(p *peers) { p.bulk.FailRequests(403, -1) }, func(p *peers) { p.bulk.FailRequests(403, 0) })
	cw, os := outcome(t, p, expect(recs, func(r *record) []place { return []place{defaultPlace(r)} }))
	st := p.bulk.Stats()
	if st.InjectedFaults < 8 {
		t.Errorf("only %d requests were answered 403", st.InjectedFaults)
	}
	hints := 0
	for l := range strings.SplitSeq(res.stderr, "\n") {
		if strings.Contains(l, "OpenSearch Security lacks [indices:data/write/bulk]") && strings.Contains(l, osUser) {
			hints++
		}
	}
	if hints != 1 {
		t.Errorf("the role-mapping fix was printed %d times for %d denied requests, want once (rate-limited per minute)", hints, st.InjectedFaults)
	}
	if ctr["opensearch_permission_errors"] < 1 {
		t.Errorf("counters %v: no opensearch_permission_errors", ctr)
	}
	c := codes(t, res.stdout, "a")
	summarize(t, "records in=%d; cloudwatch %s (events sent %d); opensearch %s; duplicates cw=%d os=%d; rejected cw=%d os=%d; 403 answers=%d; flushes=%d tries=%d",
		len(recs), cw, p.proxy.Forwarded(), os, cw.Dups, os.Dups, ctr["rejected_cloudwatch"], ctr["rejected_opensearch"],
		st.InjectedFaults, c.n, c.tries)
}

// TestThrottling (issue test 3): CloudWatch throttles 30% of all calls while OpenSearch answers
// 429 to 20% of the items: every record is delivered once on both sides.
func TestThrottling(t *testing.T) {
	t.Parallel()
	const nChunks, perChunk = 10, 1_000
	p := startPeers(t, peerOptions{Seed: 3, Throttle: 0.3})
	p.bulk.SetItem429Ratio(0.2)
	recs := k8sRecords(3, nChunks*perChunk, 0, chunkgen.Options{Namespaces: 8, Containers: 3, Start: recentDays(2), Days: 2})
	files := map[string][]byte{"a.props": []byte(p.props())}
	names := chunkFiles(files, "c", chunks(recs, perChunk))
	var s script
	s.line("instance a a.props").workers("a", 4, "kube.var.log.containers.throttled", names).line("exit a")
	res := runHost(t, hostRun{files: files, script: s.String(), args: []string{"--max-retries", "5", "--retry-delay-ms", "200"}, timeout: 3 * time.Minute})
	if res.status != 0 {
		t.Fatalf("host exit status %d", res.status)
	}
	c := codes(t, res.stdout, "a")
	if c.n != nChunks || c.ok != nChunks {
		t.Errorf("flushes: %+v, want %d that end FLB_OK", c, nChunks)
	}
	throttled, passed := p.front.counts()
	st := p.bulk.Stats()
	if throttled == 0 || st.Rejected429 == 0 {
		t.Fatalf("no fault was injected: %d CloudWatch calls throttled, %d items answered 429", throttled, st.Rejected429)
	}
	if n := p.proxy.Forwarded(); n != len(recs) {
		t.Errorf("CloudWatch received %d events for %d records", n, len(recs))
	}
	cw, os := outcome(t, p, expect(recs, func(r *record) []place { return []place{defaultPlace(r)} }))
	ctr := counters(t, res.stderr, "cloudwatch_opensearch.0")
	summarize(t, "records in=%d; cloudwatch %s; opensearch %s; duplicates cw=%d os=%d; rejected cw=%d os=%d; throttled calls=%d of %d; 429 items=%d of %d; flushes=%d tries=%d",
		len(recs), cw, os, cw.Dups, os.Dups, ctr["rejected_cloudwatch"], ctr["rejected_opensearch"],
		throttled, throttled+passed, st.Rejected429, st.Items, c.n, c.tries)
}

// TestTwoInstances (issue test 4): two [OUTPUT] instances with different templates (record
// accessor and $( ) forms, $TAG[n], a daily cwl index and a monthly record index), workers 4
// each, flushing the same chunks concurrently as two outputs matching one input do: each
// instance's records land once under its own names and never under the other's.
func TestTwoInstances(t *testing.T) {
	t.Parallel()
	const nChunks, perChunk = 8, 1_000
	p := startPeers(t, peerOptions{Seed: 4})
	recs := k8sRecords(4, nChunks*perChunk, 0, chunkgen.Options{Namespaces: 6, Containers: 2, Start: recentDays(2), Days: 2})
	files := map[string][]byte{
		"a.props": []byte(p.props(
			"log_group_template /e2e/a/$kubernetes['namespace_name']/$kubernetes['container_name']",
			"log_stream_template a-$(kubernetes['pod_name'])",
			"index_template e2e-a-$kubernetes['namespace_name']-%Y.%m.%d")),
		"b.props": []byte(p.props(
			"log_group_template /e2e/b/$(kubernetes['namespace_name'])",
			"log_stream_template $TAG[4]-$kubernetes['container_name']",
			"index_template e2e-b-$kubernetes['container_name']-%Y.%m",
			"opensearch_document record")),
	}
	names := chunkFiles(files, "c", chunks(recs, perChunk))
	const tag = "kube.var.log.containers.shared"
	var s script
	s.line("instance a a.props").line("instance b b.props")
	for i := 0; i < nChunks; i += 4 {
		for _, in := range []string{"a", "b"} {
			for _, f := range names[i:min(i+4, nChunks)] {
				s.line("background %s %s %s", in, f, tag)
			}
		}
		s.line("wait")
	}
	s.line("exit a").line("exit b")
	res := runHost(t, hostRun{files: files, script: s.String(), args: []string{"--max-retries", "3"}, timeout: 3 * time.Minute})
	if res.status != 0 {
		t.Fatalf("host exit status %d", res.status)
	}
	for _, in := range []string{"a", "b"} {
		if c := codes(t, res.stdout, in); c.n != nChunks || c.ok != nChunks {
			t.Errorf("instance %s flushes: %+v, want %d FLB_OK", in, c, nChunks)
		}
	}
	places := func(r *record) []place {
		return []place{
			{Group: "/e2e/a/" + r.Namespace + "/" + r.Container, Stream: "a-" + r.Pod, Index: "e2e-a-" + r.Namespace + "-" + r.Time.UTC().Format("2006.01.02")},
			{Group: "/e2e/b/" + r.Namespace, Stream: "shared-" + r.Container, Index: "e2e-b-" + r.Container + "-" + r.Time.UTC().Format("2006.01"), RecordDoc: true},
		}
	}
	cw, os := outcome(t, p, expect(recs, places))
	ca, cb := counters(t, res.stderr, "cloudwatch_opensearch.0"), counters(t, res.stderr, "cloudwatch_opensearch.1")
	for _, c := range []map[string]int64{ca, cb} {
		if c["records_delivered"] != int64(len(recs)) || c["chunk_retries"] != 0 {
			t.Errorf("instance counters %v: want records_delivered=%d and no chunk retries", c, len(recs))
		}
	}
	summarize(t, "records in=%d x 2 instances; cloudwatch %s; opensearch %s; duplicates cw=%d os=%d; rejected cw=%d os=%d; misplaced cw=%d os=%d",
		len(recs), cw, os, cw.Dups, os.Dups, ca["rejected_cloudwatch"]+cb["rejected_cloudwatch"], ca["rejected_opensearch"]+cb["rejected_opensearch"],
		cw.Misplaced, os.Misplaced)
}

// TestOneDestinationOff: `cloudwatch off` and `opensearch off` in two instances of one process:
// each writes only to its one destination, all of its records, once.
func TestOneDestinationOff(t *testing.T) {
	t.Parallel()
	p := startPeers(t, peerOptions{Seed: 6})
	opts := chunkgen.Options{Namespaces: 3, Containers: 2, Start: recentDays(1), Days: 1}
	recsC := k8sRecords(61, 1_000, 0, opts)
	recsD := k8sRecords(62, 1_000, 1_000_000, opts)
	files := map[string][]byte{
		"c.props": []byte(p.props("cloudwatch off", "index_template e2e-c-%Y.%m.%d", "opensearch_document record")),
		"d.props": []byte(p.props("opensearch off", "log_group_template /e2e/d/$kubernetes['namespace_name']")),
	}
	namesC := chunkFiles(files, "c", chunks(recsC, 500))
	namesD := chunkFiles(files, "d", chunks(recsD, 500))
	var s script
	s.line("instance c c.props").line("instance d d.props")
	for i := range namesC {
		s.line("background c %s kube.c", namesC[i]).line("background d %s kube.d", namesD[i])
	}
	s.line("wait").line("exit c").line("exit d")
	res := runHost(t, hostRun{files: files, script: s.String()})
	if res.status != 0 {
		t.Fatalf("host exit status %d", res.status)
	}
	for _, in := range []string{"c", "d"} {
		if c := codes(t, res.stdout, in); c.n != 2 || c.ok != 2 {
			t.Errorf("instance %s flushes: %+v, want 2 FLB_OK", in, c)
		}
	}
	all := append(append([]record(nil), recsC...), recsD...)
	cw, os := outcome(t, p, expect(all, func(r *record) []place {
		if r.Seq < 1_000_000 {
			return []place{{Index: "e2e-c-" + r.Time.UTC().Format("2006.01.02"), RecordDoc: true}}
		}
		return []place{{Group: "/e2e/d/" + r.Namespace, Stream: r.Pod}}
	}))
	if !strings.Contains(res.stderr, "started: cloudwatch=false opensearch=true") || !strings.Contains(res.stderr, "started: cloudwatch=true opensearch=false") {
		t.Error("the instances did not start with one destination each")
	}
	summarize(t, "records in=%d (cloudwatch off) + %d (opensearch off); cloudwatch %s; opensearch %s; duplicates cw=%d os=%d; misplaced cw=%d os=%d",
		len(recsC), len(recsD), cw, os, cw.Dups, os.Dups, cw.Misplaced, os.Misplaced)
}
