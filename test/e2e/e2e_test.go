package e2e_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cwos/cloudwatch-opensearch/internal/chunkgen"
	"github.com/cwos/cloudwatch-opensearch/internal/testpeer/moto"
	"github.com/cwos/cloudwatch-opensearch/test/hostrun"
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
	s.workers(files, "a", 4, "kube.var.log.containers.e2e", names)
	s.line("exit a")
	res := runHost(t, hostrun.Options{Files: files, Script: s.String(), Args: []string{"--max-retries", "3", "--retry-delay-ms", "200"}, Timeout: 5 * time.Minute})
	if res.Status != 0 {
		t.Fatalf("host exit status %d", res.Status)
	}
	c := codes(t, res.Stdout, "a")
	if c.n != len(names) || c.ok != len(names) || c.tries != len(names) {
		t.Errorf("flushes: %+v, want %d that succeed at the first try", c, len(names))
	}
	readStart := time.Now()
	cw, os := outcome(t, p, expect(recs, func(r *record) []place { return []place{defaultPlace(r)} }))
	ctr := counters(t, res.Stderr, "cloudwatch_opensearch.0")
	groups, indices := map[string]bool{}, map[string]bool{}
	for i := range recs {
		pl := defaultPlace(&recs[i])
		groups[pl.Group], indices[pl.Index] = true, true
	}
	if total >= 10_000 && (len(groups) != 60 || len(indices) != 120) {
		t.Errorf("the data spans %d groups and %d indices, want 60 and 120 (20 namespaces x 3 containers x 2 days)", len(groups), len(indices))
	}
	summarize(t, "records in=%d in %d chunks over %d groups, %d indices; cloudwatch %s; opensearch %s; duplicates cw=%d os=%d; rejected cw=%d os=%d; PutLogEvents=%d _bulk=%d; host run %s (%.0f records/s into both), read back %s",
		total, len(names), len(groups), len(indices), cw, os, cw.Dups, os.Dups, ctr["rejected_cloudwatch"], ctr["rejected_opensearch"],
		p.proxy.Count("PutLogEvents"), p.bulk.Stats().BulkRequests, res.Elapsed.Round(time.Millisecond),
		float64(total)/res.Elapsed.Seconds(), time.Since(readStart).Round(time.Millisecond))
}

// outage flushes 8 chunks at once (workers 8) while breakIt keeps one destination (broken:
// "opensearch" or "cloudwatch") from taking them and the other works; once the working one
// holds every record and the first tries have answered FLB_RETRY, fixIt repairs the broken one
// and the host's resends (the same bytes, as Fluent Bit's scheduler sends them) finish the job.
// Every chunk must end FLB_OK after at least one retry, with every record once on both sides,
// and the working destination must never have been sent a record twice: the ledger.
func outage(t *testing.T, seed uint64, broken string, breakIt, fixIt func(p *peers)) (*peers, hostrun.Result, []record, map[string]int64) {
	t.Helper()
	// Small enough, and the timeouts long enough, for moto to take every record well within one
	// try even on a loaded machine: a PutLogEvents cut off by a timeout after moto stored it
	// would be sent again, the one duplicate at-least-once allows, which is not what this tests.
	const nChunks, perChunk = 8, 250
	const flushTimeout = 10 * time.Second
	total := nChunks * perChunk
	p := startPeers(t, peerOptions{Seed: seed})
	recs := k8sRecords(seed, total, 0, chunkgen.Options{Namespaces: 4, Containers: 2, Start: recentDays(2), Days: 2})
	files := map[string][]byte{"a.props": []byte(p.props("Workers 8", fmt.Sprintf("flush_timeout %s", flushTimeout), "request_timeout 10s"))}
	names := chunkFiles(files, "c", chunks(recs, perChunk))
	var s script
	s.line("instance a a.props").workers(files, "a", nChunks, "kube.var.log.containers.outage", names).line("exit a")
	working, sent := "cloudwatch", func() int { return p.proxy.Forwarded() }
	if broken == "cloudwatch" {
		working, sent = "opensearch", func() int { return p.bulk.Stats().Items }
	}
	breakIt(p)
	fixed := false
	res := runHost(t, hostrun.Options{
		Files: files, Script: s.String(), Args: []string{"--max-retries", "30", "--retry-delay-ms", "500"},
		During: func(ctx context.Context, _ *hostrun.Watcher) {
			start := time.Now() // the host has just started
			if !poll(ctx, func() bool { return sent() >= total }) {
				return
			}
			// Every first try has ended by flush_timeout (they all start together); repair
			// only once they have all answered FLB_RETRY.
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Until(start.Add(flushTimeout + 1500*time.Millisecond))):
			}
			fixIt(p)
			fixed = true
		},
	})
	if res.Status != 0 {
		t.Fatalf("host exit status %d", res.Status)
	}
	if !fixed {
		t.Fatalf("%s never received all %d records while %s was broken (%d sent)", working, total, broken, sent())
	}
	c := codes(t, res.Stdout, "a")
	if c.n != nChunks || c.ok != nChunks || c.minTries < 2 {
		t.Errorf("flushes: %+v, want %d that end FLB_OK after at least one FLB_RETRY", c, nChunks)
	}
	if n := sent(); n != total {
		t.Errorf("%s was sent %d records for %d: retries resent what it had accepted", working, n, total)
	}
	ctr := counters(t, res.Stderr, "cloudwatch_opensearch.0")
	if ctr["resend_avoided_"+working] < int64(total) || ctr["chunk_retries"] < nChunks {
		t.Errorf("counters %v: want resend_avoided_%s >= %d and chunk_retries >= %d", ctr, working, total, nChunks)
	}
	return p, res, recs, ctr
}

// TestOpenSearchDown (issue test 2): OpenSearch refuses connections for the first flushes while
// CloudWatch is up; afterwards both hold every record once, CloudWatch not twice.
func TestOpenSearchDown(t *testing.T) {
	t.Parallel()
	p, res, recs, ctr := outage(t, 2, "opensearch", func(p *peers) { p.bulk.Stop() }, func(p *peers) {
		if err := p.bulk.Restart(); err != nil {
			t.Errorf("restart the _bulk endpoint: %v", err)
		}
	})
	cw, os := outcome(t, p, expect(recs, func(r *record) []place { return []place{defaultPlace(r)} }))
	c := codes(t, res.Stdout, "a")
	summarize(t, "records in=%d; cloudwatch %s (events sent %d); opensearch %s; duplicates cw=%d os=%d; rejected cw=%d os=%d; flushes=%d tries=%d; resend avoided cw=%d",
		len(recs), cw, p.proxy.Forwarded(), os, cw.Dups, os.Dups, ctr["rejected_cloudwatch"], ctr["rejected_opensearch"],
		c.n, c.tries, ctr["resend_avoided_cloudwatch"])
}

// TestOpenSearchForbidden (issue test 5): OpenSearch answers 403 security_exception (a missing
// role mapping) for a while, then the mapping is fixed: nothing is lost, nothing doubled, and the
// fix was printed once, not once per request.
func TestOpenSearchForbidden(t *testing.T) {
	t.Parallel()
	p, res, recs, ctr := outage(t, 5, "opensearch", func(p *peers) { p.bulk.FailRequests(403, -1) }, func(p *peers) { p.bulk.FailRequests(403, 0) })
	cw, os := outcome(t, p, expect(recs, func(r *record) []place { return []place{defaultPlace(r)} }))
	st := p.bulk.Stats()
	if st.InjectedFaults < 8 {
		t.Errorf("only %d requests were answered 403", st.InjectedFaults)
	}
	hints := 0
	for l := range strings.SplitSeq(res.Stderr, "\n") {
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
	c := codes(t, res.Stdout, "a")
	summarize(t, "records in=%d; cloudwatch %s (events sent %d); opensearch %s; duplicates cw=%d os=%d; rejected cw=%d os=%d; 403 answers=%d; flushes=%d tries=%d",
		len(recs), cw, p.proxy.Forwarded(), os, cw.Dups, os.Dups, ctr["rejected_cloudwatch"], ctr["rejected_opensearch"],
		st.InjectedFaults, c.n, c.tries)
}

// TestCloudWatchForbidden: the mirror of tests 2 and 5. CloudWatch denies PutLogEvents
// (AccessDeniedException: the IAM policy lacks logs:PutLogEvents) for a while, OpenSearch works:
// nothing is lost, and OpenSearch is never sent a record again (not even one its _id would
// deduplicate), because the ledger remembers what it took.
func TestCloudWatchForbidden(t *testing.T) {
	t.Parallel()
	p, res, recs, ctr := outage(t, 11, "cloudwatch",
		func(p *peers) { p.proxy.Inject(moto.Fault{Action: "PutLogEvents", Kind: moto.AccessDenied, Times: -1}) },
		func(p *peers) { p.proxy.Clear() })
	cw, os := outcome(t, p, expect(recs, func(r *record) []place { return []place{defaultPlace(r)} }))
	st := p.bulk.Stats()
	if st.Duplicates != 0 {
		t.Errorf("OpenSearch answered 409 to %d resent documents", st.Duplicates)
	}
	if !strings.Contains(res.Stderr, "logs:PutLogEvents") {
		t.Error("the plugin did not name the IAM action to allow")
	}
	c := codes(t, res.Stdout, "a")
	summarize(t, "records in=%d; cloudwatch %s (%d calls denied); opensearch %s (items sent %d, 409s %d); duplicates cw=%d os=%d; rejected cw=%d os=%d; flushes=%d tries=%d; resend avoided os=%d",
		len(recs), cw, p.proxy.Faulted("PutLogEvents"), os, st.Items, st.Duplicates, cw.Dups, os.Dups, ctr["rejected_cloudwatch"], ctr["rejected_opensearch"],
		c.n, c.tries, ctr["resend_avoided_opensearch"])
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
	s.line("instance a a.props").workers(files, "a", 4, "kube.var.log.containers.throttled", names).line("exit a")
	res := runHost(t, hostrun.Options{Files: files, Script: s.String(), Args: []string{"--max-retries", "5", "--retry-delay-ms", "200"}, Timeout: 3 * time.Minute})
	if res.Status != 0 {
		t.Fatalf("host exit status %d", res.Status)
	}
	c := codes(t, res.Stdout, "a")
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
	ctr := counters(t, res.Stderr, "cloudwatch_opensearch.0")
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
	res := runHost(t, hostrun.Options{Files: files, Script: s.String(), Args: []string{"--max-retries", "3"}, Timeout: 3 * time.Minute})
	if res.Status != 0 {
		t.Fatalf("host exit status %d", res.Status)
	}
	for _, in := range []string{"a", "b"} {
		if c := codes(t, res.Stdout, in); c.n != nChunks || c.ok != nChunks {
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
	ca, cb := counters(t, res.Stderr, "cloudwatch_opensearch.0"), counters(t, res.Stderr, "cloudwatch_opensearch.1")
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
	res := runHost(t, hostrun.Options{Files: files, Script: s.String()})
	if res.Status != 0 {
		t.Fatalf("host exit status %d", res.Status)
	}
	for _, in := range []string{"c", "d"} {
		if c := codes(t, res.Stdout, in); c.n != 2 || c.ok != 2 {
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
	if !strings.Contains(res.Stderr, "started: cloudwatch=false opensearch=true") || !strings.Contains(res.Stderr, "started: cloudwatch=true opensearch=false") {
		t.Error("the instances did not start with one destination each")
	}
	cc, cd := counters(t, res.Stderr, "cloudwatch_opensearch.0"), counters(t, res.Stderr, "cloudwatch_opensearch.1")
	summarize(t, "records in=%d (cloudwatch off) + %d (opensearch off); cloudwatch %s; opensearch %s; duplicates cw=%d os=%d; rejected cw=%d os=%d",
		len(recsC), len(recsD), cw, os, cw.Dups, os.Dups, cc["rejected_cloudwatch"]+cd["rejected_cloudwatch"], cc["rejected_opensearch"]+cd["rejected_opensearch"])
}

// TestExitGrace: FLBPluginExitCtx during a flush. When the in-flight requests can finish within
// exit_grace, exit waits for them and the chunk is delivered (FLB_OK); when they cannot, exit
// returns within the grace, the flush answers FLB_RETRY (the chunk stays with Fluent Bit, which
// stops resending after exit), and the plugin logs what it did not deliver.
func TestExitGrace(t *testing.T) {
	t.Parallel()
	p := startPeers(t, peerOptions{Seed: 7})
	opts := chunkgen.Options{Namespaces: 2, Containers: 2, Start: recentDays(1), Days: 1}
	t.Run("finishes", func(t *testing.T) {
		recs := k8sRecords(71, 300, 0, opts)
		files := map[string][]byte{"a.props": []byte(p.props("exit_grace 5s")), "c.bin": chunks(recs, len(recs))[0]}
		p.bulk.SetDelay(1500 * time.Millisecond)
		defer p.bulk.SetDelay(0)
		res := runHost(t, hostrun.Options{Files: files, Script: "instance a a.props\nbackground a c.bin kube.exit\nsleep 300\nexit a\nwait\n", Args: []string{"--max-retries", "3"}})
		if res.Status != 0 {
			t.Fatalf("host exit status %d", res.Status)
		}
		e, bf := hostrun.Lines(res.Stdout, "exit a "), hostrun.Lines(res.Stdout, "bflush a ")
		if len(e) != 1 || len(bf) != 1 {
			t.Fatalf("exit lines %q, flush lines %q", e, bf)
		}
		if ms := hostrun.Field(t, e[0], "ms"); ms < 500 || ms > 5000 {
			t.Errorf("exit took %dms: it should wait for the in-flight flush (about 1.2s more) and no longer than exit_grace 5s", ms)
		}
		if rc := hostrun.Field(t, bf[0], "rc"); rc != 1 {
			t.Errorf("in-flight flush: %q, want rc=1 (finished within the exit grace)", bf[0])
		}
		if strings.Contains(res.Stderr, "not fully delivered") {
			t.Error("the plugin reported undelivered chunks although the flush finished")
		}
		cw, os := outcome(t, p, expect(recs, func(r *record) []place { return []place{defaultPlace(r)} }))
		ctr := counters(t, res.Stderr, "cloudwatch_opensearch.0")
		summarize(t, "records in=%d; cloudwatch %s; opensearch %s; duplicates cw=%d os=%d; rejected cw=%d os=%d; exit waited %dms for a flush held 1.5s by OpenSearch",
			len(recs), cw, os, cw.Dups, os.Dups, ctr["rejected_cloudwatch"], ctr["rejected_opensearch"], hostrun.Field(t, e[0], "ms"))
	})
	t.Run("runs_out", func(t *testing.T) {
		p.moto.Reset(t)
		p.bulk.Reset()
		recs := k8sRecords(72, 300, 0, opts)
		files := map[string][]byte{"a.props": []byte(p.props("exit_grace 1s", "flush_timeout 60s", "request_timeout 60s")), "c.bin": chunks(recs, len(recs))[0]}
		p.bulk.SetDelay(time.Minute)
		defer p.bulk.SetDelay(0)
		res := runHost(t, hostrun.Options{Files: files, Script: "instance a a.props\nbackground a c.bin kube.exit\nsleep 2000\nexit a\nwait\n", Args: []string{"--max-retries", "3"}})
		if res.Status != 0 {
			t.Fatalf("host exit status %d", res.Status)
		}
		e, bf := hostrun.Lines(res.Stdout, "exit a "), hostrun.Lines(res.Stdout, "bflush a ")
		if len(e) != 1 || len(bf) != 1 {
			t.Fatalf("exit lines %q, flush lines %q", e, bf)
		}
		ms := hostrun.Field(t, e[0], "ms")
		if ms > 4000 {
			t.Errorf("exit took %dms with exit_grace 1s", ms)
		}
		if rc, tries := hostrun.Field(t, bf[0], "rc"), hostrun.Field(t, bf[0], "tries"); rc != 2 || tries != 1 {
			t.Errorf("in-flight flush: %q, want rc=2 tries=1 (kept for Fluent Bit, not resent after exit)", bf[0])
		}
		for _, want := range []string{"exit grace 1s ran out", "exiting with 1 chunks (300 records) not fully delivered"} {
			if !strings.Contains(res.Stderr, want) {
				t.Errorf("the plugin did not log %q", want)
			}
		}
		// CloudWatch took the records before the exit; OpenSearch never answered.
		e2 := expect(recs, func(r *record) []place { return []place{defaultPlace(r)} })
		e2.os = false
		cw := checkCloudWatch(t, p.moto, e2)
		cw.exact(t, "cloudwatch")
		if n := p.bulk.Count(); n != 0 {
			t.Errorf("opensearch stored %d documents although no response came back before the exit", n)
		}
		ctr := counters(t, res.Stderr, "cloudwatch_opensearch.0")
		summarize(t, "records in=%d; cloudwatch %s; opensearch delivered=%d (hung); duplicates cw=%d os=0; rejected cw=%d os=%d; exit %dms with exit_grace 1s; 300 undelivered records reported, chunk left to Fluent Bit",
			len(recs), cw, p.bulk.Count(), cw.Dups, ctr["rejected_cloudwatch"], ctr["rejected_opensearch"], ms)
	})
}

// TestBadConfig (issue test 6, first half): a bad [OUTPUT] makes FLBPluginInit fail, so Fluent
// Bit refuses to start, with one clear error line per problem naming the key, and nothing is
// sent anywhere.
func TestBadConfig(t *testing.T) {
	t.Parallel()
	p := startPeers(t, peerOptions{Seed: 8})
	cases := []struct {
		name  string
		props []string // changes to the good props
		keys  []string // each must be named by one error line
	}{
		{"no group", []string{"log_group_name"}, []string{"log_group_name"}},
		{"no stream fallback", []string{"log_stream_prefix"}, []string{"log_stream_name"}},
		{"no endpoint", []string{"opensearch_endpoint"}, []string{"opensearch_endpoint"}},
		{"both off", []string{"cloudwatch off", "opensearch no"}, []string{"cloudwatch"}},
		{"bad template", []string{"log_group_template /e2e/$(kubernetes['namespace_name']"}, []string{"log_group_template"}},
		{"bad index template", []string{"index_template cwl-$LOG_GROUP-%Q"}, []string{"index_template"}},
		{"no password", []string{"opensearch_password"}, []string{"opensearch_password"}},
		{"several", []string{"flush_timeout soon", "max_inflight 0", "cloudwatch_endpoint ftp://127.0.0.1:1", "opensearch_compress zstd"},
			[]string{"flush_timeout", "max_inflight", "cloudwatch_endpoint", "opensearch_compress"}},
	}
	for _, c := range cases {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			res := runHost(t, hostrun.Options{
				Files:  map[string][]byte{"a.props": []byte(p.props(c.props...)), "never.bin": nil},
				Script: "instance a a.props\nflush a never.bin kube.never\n",
			})
			if res.Status != 2 {
				t.Fatalf("host exit status %d, want 2 (start refused)", res.Status)
			}
			if in := hostrun.Lines(res.Stdout, "init a "); len(in) != 1 || hostrun.Field(t, in[0], "rc") > 0 {
				t.Fatalf("init lines %q, want rc <= 0", in)
			}
			var errs []string
			for l := range strings.SplitSeq(res.Stderr, "\n") {
				if strings.Contains(l, "[error]") {
					errs = append(errs, l)
				}
			}
			if len(errs) != len(c.keys) {
				t.Errorf("%d error lines for %d problems:\n%s", len(errs), len(c.keys), strings.Join(errs, "\n"))
			}
			for _, k := range c.keys {
				found := false
				for _, l := range errs {
					found = found || strings.Contains(l, "] config: "+k+" ") || strings.Contains(l, "] config: "+k+":")
				}
				if !found {
					t.Errorf("no error line names %s:\n%s", k, strings.Join(errs, "\n"))
				}
			}
		})
	}
	if n, st := p.proxy.Count("PutLogEvents")+p.proxy.Count("CreateLogGroup"), p.bulk.Stats(); n != 0 || st.Requests != 0 {
		t.Errorf("a refused start sent requests: %d to CloudWatch, %d to OpenSearch", n, st.Requests)
	}
	summarize(t, "configs=%d; every one refused at init with one error line per problem; records in=0; delivered cw=0 os=0; rejected=0", len(cases))
}

// gate is a reverse proxy in front of one destination that notes its first request and holds
// every request until the other destination's gate has seen one (or 10 seconds pass).
type gate struct {
	URL     string
	arrived atomic.Bool
}

// start serves g in front of upstream, released by other.
func (g *gate) start(t *testing.T, upstream string, other *gate) {
	u, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorLog = log.New(io.Discard, "", 0)
	tr := &http.Transport{}
	rp.Transport = tr
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.arrived.Store(true)
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		poll(ctx, other.arrived.Load)
		cancel()
		rp.ServeHTTP(w, r)
	}))
	g.URL = srv.URL
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		tr.CloseIdleConnections()
	})
}

// TestDestinationsConcurrent: one flush drives both destinations at once. Each destination sits
// behind a gate that holds its requests until the other destination has been sent one, so a
// flush that wrote to one destination and then the other would wait out its flush_timeout and
// answer FLB_RETRY; a concurrent one passes both gates at the first try.
func TestDestinationsConcurrent(t *testing.T) {
	t.Parallel()
	p := startPeers(t, peerOptions{Seed: 12})
	cwGate, osGate := &gate{}, &gate{}
	cwGate.start(t, p.proxy.URL, osGate)
	osGate.start(t, p.bulk.URL(), cwGate)
	recs := k8sRecords(12, 500, 0, chunkgen.Options{Namespaces: 2, Containers: 2, Start: recentDays(1), Days: 1})
	files := map[string][]byte{
		"a.props": []byte(p.props("cloudwatch_endpoint "+cwGate.URL, "opensearch_endpoint "+osGate.URL, "flush_timeout 3s")),
		"c.bin":   chunks(recs, len(recs))[0],
	}
	res := runHost(t, hostrun.Options{Files: files, Script: "instance a a.props\nflush a c.bin kube.gated\n"})
	if res.Status != 0 {
		t.Fatalf("host exit status %d", res.Status)
	}
	f := hostrun.Lines(res.Stdout, "flush a ")
	if len(f) != 1 || hostrun.Field(t, f[0], "rc") != 1 || hostrun.Field(t, f[0], "tries") != 1 {
		t.Fatalf("flush: %q, want rc=1 at the first try", f)
	}
	cw, os := outcome(t, p, expect(recs, func(r *record) []place { return []place{defaultPlace(r)} }))
	ctr := counters(t, res.Stderr, "cloudwatch_opensearch.0")
	summarize(t, "records in=%d; cloudwatch %s; opensearch %s; duplicates cw=%d os=%d; rejected cw=%d os=%d; both gates opened by the other destination's request in one flush",
		len(recs), cw, os, cw.Dups, os.Dups, ctr["rejected_cloudwatch"], ctr["rejected_opensearch"])
}
