package cloudwatch

import (
	"slices"
	"unsafe"

	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"

	"github.com/cwos/cloudwatch-opensearch/internal/sink"
)

// streamKey names one log stream.
type streamKey struct{ group, stream string }

// item is one record that will be sent, in its stream's time order.
type item struct {
	ts   int64 // ms since the epoch
	rec  int32 // index into the chunk's records
	size int32 // message bytes as sent (see measure)
	fl   msgFlags
}

// rejectKind is why a record is not sent at all.
type rejectKind uint8

const (
	rejectEmpty rejectKind = iota
	rejectTooOld
	rejectTooNew
)

type reject struct {
	rec  int32
	kind rejectKind
}

// streamPlan is one stream's records: items[lo:hi] sorted by time, cut into batches[blo:bhi].
type streamPlan struct {
	key      streamKey
	lo, hi   int32
	blo, bhi int32
}

// batch is one PutLogEvents request: items[lo:hi] of one stream.
type batch struct {
	stream int32
	lo, hi int32
	bytes  int32 // messages + EventOverhead per event, as CloudWatch counts them
}

// plan is one chunk partitioned by (group, stream), each stream sorted by time and cut into
// batches that obey every PutLogEvents rule (limits.go). It holds indexes only, never the
// records' bytes, and is reused across chunks so that steady state does not allocate per record.
type plan struct {
	items   []item
	streams []streamPlan
	batches []batch
	rejects []reject
	nowMs   int64

	index    map[streamKey]int32
	scratch  []item  // kept records in chunk order
	streamOf []int32 // stream of scratch[i]
	counts   []int32
}

func newPlan() *plan { return &plan{index: make(map[streamKey]int32)} }

// build plans recs. Records with an empty message, or a time the service would reject (more than
// MaxAge old or MaxFuture ahead of nowMs), go to p.rejects; every other record is in exactly one
// batch.
func (p *plan) build(recs []sink.Record, nowMs int64) {
	p.items, p.streams, p.batches, p.rejects = p.items[:0], p.streams[:0], p.batches[:0], p.rejects[:0]
	p.scratch, p.streamOf, p.counts = p.scratch[:0], p.streamOf[:0], p.counts[:0]
	clear(p.index)
	p.nowMs = nowMs

	// Pass 1: filter, measure, and number the streams in order of first appearance.
	last := int32(-1)
	var lastKey streamKey
	for i := range recs {
		r := &recs[i]
		if len(r.Message) == 0 {
			p.rejects = append(p.rejects, reject{int32(i), rejectEmpty})
			continue
		}
		ts := r.Time.UnixMilli()
		if ts < nowMs-maxAgeMs {
			p.rejects = append(p.rejects, reject{int32(i), rejectTooOld})
			continue
		}
		if ts > nowMs+maxFutureMs {
			p.rejects = append(p.rejects, reject{int32(i), rejectTooNew})
			continue
		}
		// Names are interned by the core, and neighbours usually share a stream.
		if last < 0 || r.Group != lastKey.group || r.Stream != lastKey.stream {
			lastKey = streamKey{r.Group, r.Stream}
			s, ok := p.index[lastKey]
			if !ok {
				s = int32(len(p.streams))
				p.index[lastKey] = s
				p.streams = append(p.streams, streamPlan{key: lastKey})
				p.counts = append(p.counts, 0)
			}
			last = s
		}
		size, fl := measure(r.Message, MaxMessageBytes)
		p.scratch = append(p.scratch, item{ts: ts, rec: int32(i), size: int32(size), fl: fl})
		p.streamOf = append(p.streamOf, last)
		p.counts[last]++
	}

	// Pass 2: counting sort by stream; stable, so each stream keeps the chunk's order.
	off := int32(0)
	for s := range p.streams {
		p.streams[s].lo, p.streams[s].hi = off, off
		off += p.counts[s]
	}
	p.items = slices.Grow(p.items, len(p.scratch))[:len(p.scratch)]
	for j, it := range p.scratch {
		sp := &p.streams[p.streamOf[j]]
		p.items[sp.hi] = it
		sp.hi++
	}

	// Pass 3: time order per stream (stable: equal times keep the chunk's order), then batches.
	for s := range p.streams {
		sp := &p.streams[s]
		seg := p.items[sp.lo:sp.hi]
		if !slices.IsSortedFunc(seg, byTime) {
			slices.SortStableFunc(seg, byTime)
		}
		sp.blo = int32(len(p.batches))
		p.cut(int32(s), sp.lo, sp.hi)
		sp.bhi = int32(len(p.batches))
	}
}

func byTime(a, b item) int {
	switch {
	case a.ts < b.ts:
		return -1
	case a.ts > b.ts:
		return 1
	}
	return 0
}

// cut appends the batches of items[lo:hi] (one stream, sorted): a new batch starts when adding
// the next event would exceed the event count, the byte size or the time span.
func (p *plan) cut(s, lo, hi int32) {
	b := batch{stream: s, lo: lo, hi: lo}
	for j := lo; j < hi; j++ {
		it := &p.items[j]
		sz := it.size + EventOverhead
		if b.hi > b.lo && (b.hi-b.lo >= MaxBatchEvents || b.bytes+sz > MaxBatchBytes || it.ts-p.items[b.lo].ts > maxBatchSpanMs) {
			p.batches = append(p.batches, b)
			b = batch{stream: s, lo: j, hi: j}
		}
		b.hi++
		b.bytes += sz
	}
	if b.hi > b.lo {
		p.batches = append(p.batches, b)
	}
}

// eventStore backs the pointers of one request's events: one allocation per request instead of
// two per event.
type eventStore struct {
	msg string
	ts  int64
}

// input builds the PutLogEvents request for items[lo:hi] of stream s (a batch or, when a batch
// is split to isolate a bad event, part of one). No sequence token: the service ignores them.
// The messages share one string; nothing refers to recs after it returns.
func (p *plan) input(s, lo, hi int32, recs []sink.Record) *cloudwatchlogs.PutLogEventsInput {
	n := int(hi - lo)
	total := 0
	for j := lo; j < hi; j++ {
		total += int(p.items[j].size)
	}
	buf := make([]byte, 0, total)
	store := make([]eventStore, n)
	events := make([]types.InputLogEvent, n)
	for k := range n {
		it := &p.items[int(lo)+k]
		buf = appendMessage(buf, recs[it.rec].Message, it.fl, MaxMessageBytes)
		store[k].ts = int64(len(buf)) // end offset, until the arena exists
	}
	// buf is never written again, so a string may share its bytes (as strings.Builder does).
	arena := unsafe.String(unsafe.SliceData(buf), len(buf))
	start := 0
	for k := range n {
		end := int(store[k].ts)
		store[k].msg = arena[start:end]
		store[k].ts = p.items[int(lo)+k].ts
		events[k].Message = &store[k].msg
		events[k].Timestamp = &store[k].ts
		start = end
	}
	key := &p.streams[s].key
	return &cloudwatchlogs.PutLogEventsInput{
		LogGroupName:  &key.group,
		LogStreamName: &key.stream,
		LogEvents:     events,
	}
}
