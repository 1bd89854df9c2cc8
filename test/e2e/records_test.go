package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"

	"github.com/cwos/cloudwatch-opensearch/internal/chunkgen"
	"github.com/cwos/cloudwatch-opensearch/internal/testpeer/bulk"
	"github.com/cwos/cloudwatch-opensearch/internal/testpeer/moto"
)

// seqKey is the field every generated record carries with its sequence number, so that each
// CloudWatch event and each OpenSearch document read back names the record it came from.
const seqKey = "e2e_seq"

// record is one generated log record and what the test expects of it.
type record struct {
	Seq       int
	Time      time.Time // the event time in the chunk (ns)
	Namespace string
	Container string
	Pod       string
	Map       chunkgen.Map // the record as written, seqKey included
}

// recentDays returns the UTC midnight days ago: records from there to now are neither too old
// (14 days) nor too new (2 hours ahead) for CloudWatch.
func recentDays(days int) time.Time {
	return time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -days)
}

// k8sRecords generates n Kubernetes container records in time order with chunkgen (random
// namespaces, containers and times within opts) and numbers them from seqBase.
func k8sRecords(seed uint64, n, seqBase int, opts chunkgen.Options) []record {
	_, gen := chunkgen.K8sChunk(seed, n, opts)
	out := make([]record, len(gen))
	for i, g := range gen {
		m := append(g.Record, chunkgen.KV{Key: seqKey, Value: seqBase + i})
		kube, _ := m.Get("kubernetes")
		pod, _ := kube.(chunkgen.Map).Get("pod_name")
		out[i] = record{Seq: seqBase + i, Time: g.Time, Namespace: g.Namespace, Container: g.Container, Pod: pod.(string), Map: m}
	}
	return out
}

// chunks cuts recs, in order, into Fluent Bit v2 chunks of per records each: consecutive
// records, as the tail input fills a chunk, so each chunk mixes every namespace and container.
func chunks(recs []record, per int) [][]byte {
	var out [][]byte
	for i := 0; i < len(recs); i += per {
		var c []byte
		for _, r := range recs[i:min(i+per, len(recs))] {
			c = chunkgen.AppendV2(c, r.Time, nil, r.Map)
		}
		out = append(out, c)
	}
	return out
}

// chunkFiles names the chunks prefix-NNN.bin and adds them to files.
func chunkFiles(files map[string][]byte, prefix string, cs [][]byte) []string {
	names := make([]string, len(cs))
	for i, c := range cs {
		names[i] = fmt.Sprintf("%s-%03d.bin", prefix, i)
		files[names[i]] = c
	}
	return names
}

// place is where a record must land: a log group and stream ("" when CloudWatch is off), and
// an index ("" when OpenSearch is off) holding a cwl document, or a record document.
type place struct {
	Group, Stream, Index string
	RecordDoc            bool
}

// defaultPlace is where the default props of peers.props put a record, computed here from the
// templates by hand (not by the plugin's code): the group template, the pod as stream, and the
// Lambda's index: "cwl" + the group lowercased with / and . as -, + the UTC day.
func defaultPlace(r *record) place {
	g := "/aws/containerinsights/e2e." + r.Namespace + "." + r.Container
	return place{Group: g, Stream: r.Pod, Index: lambdaIndex(g, r.Time)}
}

func lambdaIndex(group string, t time.Time) string {
	g := strings.NewReplacer("/", "-", ".", "-").Replace(strings.ToLower(group))
	return "cwl" + g + "-" + t.UTC().Format("2006.01.02")
}

// expectation says where every record must be found: each place once.
type expectation struct {
	recs   map[int]*record
	places func(r *record) []place
	cw, os bool // which destinations must be checked (false: must be empty)
}

func expect(recs []record, places func(r *record) []place) *expectation {
	e := &expectation{recs: make(map[int]*record, len(recs)), places: places, cw: true, os: true}
	for i := range recs {
		e.recs[recs[i].Seq] = &recs[i]
	}
	return e
}

// destCount is what one destination holds compared with the expectation.
type destCount struct {
	Delivered int // expected (record, place) pairs found at least once
	Dups      int // extra copies of a pair
	Missing   int // expected pairs not found
	Misplaced int // copies of a known record under a name it does not belong to
	Corrupt   int // copies whose content differs from the record
	Foreign   int // events or documents that carry no known sequence number
	problems  []string
}

func (d *destCount) problem(format string, args ...any) {
	if len(d.problems) < 8 {
		d.problems = append(d.problems, fmt.Sprintf(format, args...))
	}
}

func (d destCount) String() string {
	return fmt.Sprintf("delivered=%d dup=%d missing=%d misplaced=%d corrupt=%d foreign=%d",
		d.Delivered, d.Dups, d.Missing, d.Misplaced, d.Corrupt, d.Foreign)
}

// exact fails the test unless the destination holds every expected pair exactly once, intact,
// and nothing else.
func (d destCount) exact(t *testing.T, name string) {
	t.Helper()
	if d.Dups != 0 || d.Missing != 0 || d.Misplaced != 0 || d.Corrupt != 0 || d.Foreign != 0 {
		t.Errorf("%s: %s; first problems:\n  %s", name, d, strings.Join(d.problems, "\n  "))
	}
}

type hitKey struct {
	seq int
	pl  place
}

// wantJSON is the record as JSON decodes it: what a message or document must hold.
func wantJSON(r *record) map[string]any { return chunkgen.JSON(r.Map).(map[string]any) }

// checkCloudWatch reads every event of every stream of every group from moto (bypassing the
// proxy) and matches it to the expectation by its sequence number: group and stream, timestamp
// (the record time in ms) and the message (the record as JSON).
func checkCloudWatch(t *testing.T, srv *moto.Server, e *expectation) destCount {
	t.Helper()
	var d destCount
	counts := map[hitKey]int{}
	var mu sync.Mutex
	forEachEvent(t, srv, func(group, stream string, ts int64, msg string) {
		var m map[string]any
		err := json.Unmarshal([]byte(msg), &m)
		seq, ok := m[seqKey].(float64)
		r := e.recs[int(seq)]
		intact := r != nil && ts == r.Time.UnixMilli() && reflect.DeepEqual(m, wantJSON(r))
		mu.Lock()
		defer mu.Unlock()
		if err != nil || !ok || r == nil {
			d.Foreign++
			d.problem("foreign event in %s/%s: %.200s", group, stream, msg)
			return
		}
		var pl *place
		for _, p := range e.places(r) {
			if p.Group != "" && p.Group == group && p.Stream == stream {
				pl = &p
				break
			}
		}
		if pl == nil {
			d.Misplaced++
			d.problem("record %d in %s/%s, want one of %v", r.Seq, group, stream, e.places(r))
			return
		}
		counts[hitKey{r.Seq, place{Group: group, Stream: stream}}]++
		if !intact {
			d.Corrupt++
			d.problem("record %d in %s/%s: timestamp %d (want %d) or message differs: %.300s", r.Seq, group, stream, ts, r.Time.UnixMilli(), msg)
		}
	})
	tallyPlaces(&d, e, counts, func(p place) (place, bool) { return place{Group: p.Group, Stream: p.Stream}, p.Group != "" })
	return d
}

// tallyPlaces turns hit counts into delivered, duplicates and missing. key projects a place to
// the part one destination knows, and false when the destination does not get the record.
func tallyPlaces(d *destCount, e *expectation, counts map[hitKey]int, key func(place) (place, bool)) {
	for _, r := range e.recs {
		for _, p := range e.places(r) {
			k, ok := key(p)
			if !ok {
				continue
			}
			n := counts[hitKey{r.Seq, k}]
			switch {
			case n == 0:
				d.Missing++
				d.problem("record %d missing from %v", r.Seq, k)
			case n > 1:
				d.Dups += n - 1
				d.problem("record %d %d times in %v", r.Seq, n, k)
			}
			if n > 0 {
				d.Delivered++
			}
		}
	}
}

// forEachEvent lists every group and stream in moto and calls fn for every event, reading
// streams concurrently.
func forEachEvent(t *testing.T, srv *moto.Server, fn func(group, stream string, ts int64, msg string)) {
	t.Helper()
	ctx := context.Background()
	c := srv.Client()
	type gs struct{ group, stream string }
	var streams []gs
	groups := cloudwatchlogs.NewDescribeLogGroupsPaginator(c, &cloudwatchlogs.DescribeLogGroupsInput{})
	for groups.HasMorePages() {
		page, err := groups.NextPage(ctx)
		if err != nil {
			t.Fatalf("DescribeLogGroups: %v", err)
		}
		for _, g := range page.LogGroups {
			ss := cloudwatchlogs.NewDescribeLogStreamsPaginator(c, &cloudwatchlogs.DescribeLogStreamsInput{LogGroupName: g.LogGroupName})
			for ss.HasMorePages() {
				sp, err := ss.NextPage(ctx)
				if err != nil {
					t.Fatalf("DescribeLogStreams %s: %v", aws.ToString(g.LogGroupName), err)
				}
				for _, s := range sp.LogStreams {
					streams = append(streams, gs{aws.ToString(g.LogGroupName), aws.ToString(s.LogStreamName)})
				}
			}
		}
	}
	work := make(chan gs)
	errs := make(chan error, len(streams))
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for s := range work {
				evs, err := moto.ReadStream(ctx, c, s.group, s.stream)
				if err != nil {
					errs <- fmt.Errorf("read %s/%s: %w", s.group, s.stream, err)
					continue
				}
				for _, ev := range evs {
					fn(s.group, s.stream, aws.ToInt64(ev.Timestamp), aws.ToString(ev.Message))
				}
			}
		})
	}
	for _, s := range streams {
		work <- s
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// checkOpenSearch matches every stored document to the expectation by its sequence number:
// index, and the document shape of SPEC.md "Documents": for cwl documents the record's fields
// plus @id (the _id), @timestamp (ISO 8601 UTC, ms), @message (the record as JSON),
// @log_group and @log_stream; for record documents the record's fields plus @timestamp.
func checkOpenSearch(t *testing.T, srv *bulk.Server, e *expectation) destCount {
	t.Helper()
	var d destCount
	counts := map[hitKey]int{}
	srv.Each(func(index, id string, src []byte) {
		var m map[string]any
		err := json.Unmarshal(src, &m)
		seq, ok := m[seqKey].(float64)
		r := e.recs[int(seq)]
		if err != nil || !ok || r == nil {
			d.Foreign++
			d.problem("foreign document %s/%s: %.200s", index, id, src)
			return
		}
		var pl *place
		for _, p := range e.places(r) {
			if p.Index != "" && p.Index == index {
				pl = &p
				break
			}
		}
		if pl == nil {
			d.Misplaced++
			d.problem("record %d in index %s, want one of %v", r.Seq, index, e.places(r))
			return
		}
		counts[hitKey{r.Seq, place{Index: index}}]++
		if why := docProblem(m, id, r, pl); why != "" {
			d.Corrupt++
			d.problem("record %d in %s/%s: %s", r.Seq, index, id, why)
		}
	})
	tallyPlaces(&d, e, counts, func(p place) (place, bool) { return place{Index: p.Index}, p.Index != "" })
	return d
}

func docProblem(m map[string]any, id string, r *record, pl *place) string {
	want := wantJSON(r)
	ts := r.Time.UTC().Format("2006-01-02T15:04:05.000Z")
	if m["@timestamp"] != ts {
		return fmt.Sprintf("@timestamp %v, want %s", m["@timestamp"], ts)
	}
	fields := map[string]any{}
	for k, v := range m {
		if !strings.HasPrefix(k, "@") {
			fields[k] = v
		}
	}
	if !reflect.DeepEqual(fields, want) {
		return "the record's fields differ"
	}
	if pl.RecordDoc {
		if len(m) != len(want)+1 {
			return fmt.Sprintf("%d fields, want the record's %d + @timestamp", len(m), len(want))
		}
		return ""
	}
	if m["@id"] != id {
		return fmt.Sprintf("@id %v, want the _id %s", m["@id"], id)
	}
	if m["@log_group"] != pl.Group || m["@log_stream"] != pl.Stream {
		return fmt.Sprintf("@log_group %v @log_stream %v, want %s %s", m["@log_group"], m["@log_stream"], pl.Group, pl.Stream)
	}
	msg, _ := m["@message"].(string)
	var mm map[string]any
	if err := json.Unmarshal([]byte(msg), &mm); err != nil || !reflect.DeepEqual(mm, want) {
		return "@message is not the record as JSON"
	}
	return ""
}

// outcome checks both destinations against e and returns their counts (zero counts for a
// destination that must stay empty, after checking that it is).
func outcome(t *testing.T, p *peers, e *expectation) (cw, os destCount) {
	t.Helper()
	if e.cw {
		cw = checkCloudWatch(t, p.moto, e)
		cw.exact(t, "cloudwatch")
	} else if n := p.proxy.Count("PutLogEvents"); n != 0 {
		t.Errorf("cloudwatch is off but got %d PutLogEvents", n)
	}
	if e.os {
		os = checkOpenSearch(t, p.bulk, e)
		os.exact(t, "opensearch")
		if st := p.bulk.Stats(); st.Updated != 0 {
			t.Errorf("opensearch: %d documents were overwritten (a resend without create and _id)", st.Updated)
		}
	} else if n := p.bulk.Stats().Requests; n != 0 {
		t.Errorf("opensearch is off but the endpoint got %d requests", n)
	}
	return cw, os
}
