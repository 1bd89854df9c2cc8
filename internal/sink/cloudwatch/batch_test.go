package cloudwatch

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/cwos/cloudwatch-opensearch/internal/sink"
)

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func rec(seq int, group, stream string, t time.Time, msg []byte) sink.Record {
	return sink.Record{Seq: seq, Group: group, Stream: stream, Time: t, Message: msg}
}

// repeat returns n records of size-byte messages to one stream, 1 ms apart.
func repeat(n, size int) []sink.Record {
	out := make([]sink.Record, n)
	msg := bytes.Repeat([]byte("x"), size)
	for i := range out {
		out[i] = rec(i, "/g", "s", now.Add(time.Duration(i)*time.Millisecond), msg)
	}
	return out
}

// checkPlan verifies what every plan must satisfy, independently of how it was cut: each kept
// record in exactly one batch, every PutLogEvents rule per batch (recomputed from the built
// request), messages unchanged unless flagged.
func checkPlan(t *testing.T, p *plan, recs []sink.Record) {
	t.Helper()
	seen := make([]int, len(recs))
	for _, rj := range p.rejects {
		seen[rj.rec]++
	}
	for bi, b := range p.batches {
		sp := p.streams[b.stream]
		if b.lo < sp.lo || b.hi > sp.hi || b.hi <= b.lo {
			t.Fatalf("batch %d [%d,%d) outside its stream [%d,%d)", bi, b.lo, b.hi, sp.lo, sp.hi)
		}
		in := p.input(b.stream, b.lo, b.hi, recs)
		if aws.ToString(in.LogGroupName) != sp.key.group || aws.ToString(in.LogStreamName) != sp.key.stream || in.SequenceToken != nil {
			t.Fatalf("batch %d: names %q/%q token %v", bi, *in.LogGroupName, *in.LogStreamName, in.SequenceToken)
		}
		n := len(in.LogEvents)
		if n < 1 || n > MaxBatchEvents {
			t.Fatalf("batch %d: %d events", bi, n)
		}
		total := 0
		for k, ev := range in.LogEvents {
			msg := aws.ToString(ev.Message)
			it := p.items[int(b.lo)+k]
			r := &recs[it.rec]
			seen[it.rec]++
			if r.Group != sp.key.group || r.Stream != sp.key.stream {
				t.Fatalf("record %d for %s/%s in batch of %s/%s", it.rec, r.Group, r.Stream, sp.key.group, sp.key.stream)
			}
			if *ev.Timestamp != r.Time.UnixMilli() {
				t.Fatalf("timestamp %d, record time %v", *ev.Timestamp, r.Time)
			}
			if len(msg) == 0 || len(msg) > MaxMessageBytes || !utf8.ValidString(msg) || len(msg) != int(it.size) {
				t.Fatalf("batch %d event %d: message of %d bytes (item says %d), valid UTF-8 %v", bi, k, len(msg), it.size, utf8.ValidString(msg))
			}
			if it.fl == 0 && msg != string(r.Message) {
				t.Fatalf("message changed without a flag")
			}
			if k > 0 && *ev.Timestamp < *in.LogEvents[k-1].Timestamp {
				t.Fatalf("batch %d out of order at %d", bi, k)
			}
			if span := *ev.Timestamp - *in.LogEvents[0].Timestamp; span > maxBatchSpanMs {
				t.Fatalf("batch %d spans %d ms", bi, span)
			}
			total += len(msg) + EventOverhead
		}
		if total > MaxBatchBytes || total != int(b.bytes) {
			t.Fatalf("batch %d: %d bytes counted, plan says %d", bi, total, b.bytes)
		}
	}
	for i, n := range seen {
		if n != 1 {
			t.Fatalf("record %d planned %d times", i, n)
		}
	}
}

func build(t *testing.T, recs []sink.Record) *plan {
	t.Helper()
	p := newPlan()
	p.build(recs, now.UnixMilli())
	checkPlan(t, p, recs)
	return p
}

func batchSizes(p *plan) []int {
	var out []int
	for _, b := range p.batches {
		out = append(out, int(b.hi-b.lo))
	}
	return out
}

func TestPlanLimits(t *testing.T) {
	quarter := MaxBatchBytes/4 - EventOverhead // four of these fill a batch exactly
	day := MaxBatchSpan
	cases := []struct {
		name string
		recs func() []sink.Record
		want []int // events per batch
	}{
		{"10000 events fill one batch", func() []sink.Record { return repeat(10_000, 10) }, []int{10_000}},
		{"10001 events need two", func() []sink.Record { return repeat(10_001, 10) }, []int{10_000, 1}},
		{"bytes exactly at the limit", func() []sink.Record { return repeat(4, quarter) }, []int{4}},
		{"one byte over the limit", func() []sink.Record {
			r := repeat(4, quarter)
			r[3].Message = append(bytes.Clone(r[3].Message), 'x')
			return r
		}, []int{3, 1}},
		{"overhead counts: 26 bytes per event", func() []sink.Record {
			// 40,329 events of 0 extra... use 1-byte messages: (1+26)*n <= 1,048,576 -> n = 38,836, but
			// the count limit comes first; so use 100-byte messages: 126*8322 = 1,048,572.
			return repeat(8_323, 100)
		}, []int{8_322, 1}},
		{"one 1 MB event", func() []sink.Record { return repeat(1, MaxMessageBytes) }, []int{1}},
		{"two 1 MB events", func() []sink.Record { return repeat(2, MaxMessageBytes) }, []int{1, 1}},
		{"span exactly 24h", func() []sink.Record {
			return []sink.Record{rec(0, "/g", "s", now.Add(-day), []byte("a")), rec(1, "/g", "s", now, []byte("b"))}
		}, []int{2}},
		{"span 24h + 1ms", func() []sink.Record {
			return []sink.Record{rec(0, "/g", "s", now.Add(-day-time.Millisecond), []byte("a")), rec(1, "/g", "s", now, []byte("b"))}
		}, []int{1, 1}},
		{"3 days of events split by day", func() []sink.Record {
			var r []sink.Record
			for h := range 72 {
				r = append(r, rec(h, "/g", "s", now.Add(-time.Duration(71-h)*time.Hour), []byte("x")))
			}
			return r
		}, []int{25, 25, 22}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := build(t, c.recs())
			if got := batchSizes(p); !slices.Equal(got, c.want) {
				t.Fatalf("batches %v, want %v", got, c.want)
			}
		})
	}
}

func TestPlanOrderAndPartition(t *testing.T) {
	// Interleaved streams, out-of-order and equal times: each stream comes out sorted, equal
	// times in chunk order, one batch per stream.
	var recs []sink.Record
	offsets := []int{5, 3, 3, 9, 1, 3, 0, 7}
	for i := range 40 {
		s := fmt.Sprintf("pod-%d", i%4)
		recs = append(recs, rec(i, "/g/"+s[:4], s, now.Add(-time.Duration(offsets[i%len(offsets)])*time.Second), fmt.Appendf(nil, `{"i":%d}`, i)))
	}
	p := build(t, recs)
	if len(p.streams) != 4 || len(p.batches) != 4 {
		t.Fatalf("%d streams %d batches, want 4 and 4", len(p.streams), len(p.batches))
	}
	for s, sp := range p.streams {
		if want := fmt.Sprintf("pod-%d", s); sp.key.stream != want {
			t.Fatalf("stream %d is %q, want %q (order of first appearance)", s, sp.key.stream, want)
		}
		var got, want []int
		for _, it := range p.items[sp.lo:sp.hi] {
			got = append(got, int(it.rec))
		}
		for i := range recs {
			if recs[i].Stream == sp.key.stream {
				want = append(want, i)
			}
		}
		slices.SortStableFunc(want, func(a, b int) int { return recs[a].Time.Compare(recs[b].Time) })
		if !slices.Equal(got, want) {
			t.Fatalf("stream %s order %v, want %v", sp.key.stream, got, want)
		}
	}
}

func TestPlanRejects(t *testing.T) {
	recs := []sink.Record{
		rec(0, "/g", "s", now, nil),
		rec(1, "/g", "s", now, []byte{}),
		rec(2, "/g", "s", now.Add(-MaxAge), []byte("exactly 14 days old")),
		rec(3, "/g", "s", now.Add(-MaxAge-time.Millisecond), []byte("too old")),
		rec(4, "/g", "s", now.Add(MaxFuture), []byte("exactly 2h ahead")),
		rec(5, "/g", "s", now.Add(MaxFuture+time.Millisecond), []byte("too new")),
		rec(6, "/g", "s", time.Time{}, []byte("zero time")),
		rec(7, "/g", "s", now, []byte("fine")),
	}
	p := build(t, recs)
	got := map[int32]rejectKind{}
	for _, rj := range p.rejects {
		got[rj.rec] = rj.kind
	}
	want := map[int32]rejectKind{0: rejectEmpty, 1: rejectEmpty, 3: rejectTooOld, 5: rejectTooNew, 6: rejectTooOld}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("rejects %v, want %v", got, want)
	}
	// 14 days and 2 hours apart: the kept events need two batches.
	if got := batchSizes(p); !slices.Equal(got, []int{1, 2}) {
		t.Fatalf("batches %v, want [1 2]", got)
	}
}

func TestMessages(t *testing.T) {
	eAcute := strings.Repeat("é", MaxMessageBytes/2) // 2 bytes each: exactly the limit
	marker := truncMarker(5 * MaxMessageBytes)
	cases := []struct {
		name     string
		msg      []byte
		wantSize int
		wantFl   msgFlags
		check    func(t *testing.T, out string)
	}{
		{"ascii", []byte(`{"log":"hello"}`), 15, 0, nil},
		{"multi-byte counted in bytes", []byte(eAcute), MaxMessageBytes, 0, nil},
		{"multi-byte one byte over is cut on a character", []byte(eAcute + "x"), -1, flagTruncated, func(t *testing.T, out string) {
			if !strings.HasPrefix(out, eAcute[:100]) || !strings.HasSuffix(out, truncMarker(MaxMessageBytes+1)) {
				t.Fatal("truncated message lost its head or its marker")
			}
		}},
		{"invalid bytes become U+FFFD, 3 bytes each", []byte("a\xffb\xfe"), 8, flagInvalidUTF8, func(t *testing.T, out string) {
			if out != "a\uFFFDb\uFFFD" {
				t.Fatalf("out %q", out)
			}
		}},
		{"truncated surrogate half", []byte("ok\xed\xa0\x80"), 11, flagInvalidUTF8, nil},
		{"literal U+FFFD is kept", []byte("\uFFFD"), 3, 0, nil},
		{"replacement pushes it over the limit", bytes.Repeat([]byte{0xff}, MaxMessageBytes/3+1), -1, flagInvalidUTF8 | flagTruncated, nil},
		{"one 5 MB event", bytes.Repeat([]byte("y"), 5*MaxMessageBytes), MaxMessageBytes, flagTruncated, func(t *testing.T, out string) {
			if !strings.HasSuffix(out, marker) || out[:len(out)-len(marker)] != strings.Repeat("y", MaxMessageBytes-len(marker)) {
				t.Fatal("bad truncation")
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			size, fl := measure(c.msg, MaxMessageBytes)
			if fl != c.wantFl || (c.wantSize >= 0 && size != c.wantSize) || size > MaxMessageBytes {
				t.Fatalf("measure = %d, %b; want %d, %b", size, fl, c.wantSize, c.wantFl)
			}
			out := appendMessage(nil, c.msg, fl, MaxMessageBytes)
			if len(out) != size || !utf8.Valid(out) {
				t.Fatalf("appended %d bytes (valid %v), measured %d", len(out), utf8.Valid(out), size)
			}
			if c.check != nil {
				c.check(t, string(out))
			}
		})
	}
}

// FuzzMessage: whatever the bytes, the sent message is valid UTF-8, within the limit, exactly as
// long as measured, unchanged when it was valid and short, and keeps the head when cut.
func FuzzMessage(f *testing.F) {
	f.Add([]byte("hello"), uint16(200))
	f.Add([]byte("a\xffb"), uint16(100))
	f.Add(bytes.Repeat([]byte("é"), 300), uint16(150))
	f.Add([]byte("\xed\xa0\x80\xf4\x90\x80\x80"), uint16(120))
	f.Fuzz(func(t *testing.T, msg []byte, m uint16) {
		limit := 100 + int(m)%4000
		size, fl := measure(msg, limit)
		out := appendMessage(nil, msg, fl, limit)
		if len(out) != size || size > limit || !utf8.Valid(out) {
			t.Fatalf("size %d, out %d bytes, limit %d, valid %v", size, len(out), limit, utf8.Valid(out))
		}
		if utf8.Valid(msg) && len(msg) <= limit && (fl != 0 || !bytes.Equal(out, msg)) {
			t.Fatalf("valid short message changed")
		}
		if fl&flagTruncated != 0 {
			m := truncMarker(len(msg))
			head := out[:len(out)-len(m)]
			if !bytes.HasSuffix(out, []byte(m)) {
				t.Fatalf("truncated message does not end with the marker")
			}
			if fl&flagInvalidUTF8 == 0 && (!bytes.HasPrefix(msg, head) || len(head) < limit-len(m)-utf8.UTFMax) {
				t.Fatalf("truncated message does not keep as much of the head as fits")
			}
		}
	})
}

// TestPlanRandom checks the invariants over random chunks: many streams, times spread over
// days and out of order, sizes from 1 byte to over the event limit, invalid bytes.
func TestPlanRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	p := newPlan()
	big := bytes.Repeat([]byte("z"), 2*MaxMessageBytes)
	for round := range 30 {
		n := 1 + rng.IntN(5000)
		recs := make([]sink.Record, n)
		streams := 1 + rng.IntN(30)
		for i := range recs {
			s := rng.IntN(streams)
			var msg []byte
			switch k := rng.IntN(100); {
			case k < 2:
				msg = big[:MaxMessageBytes-5+rng.IntN(MaxMessageBytes)]
			case k < 5:
				msg = []byte("bad \xff\xfe bytes")
			case k < 6:
				msg = nil
			default:
				msg = big[:1+rng.IntN(2000)]
			}
			ts := now.Add(-time.Duration(rng.Int64N(int64(16 * 24 * time.Hour))))
			recs[i] = rec(i, fmt.Sprintf("/g/%d", s%5), fmt.Sprintf("s-%d", s), ts, msg)
		}
		p.build(recs, now.UnixMilli())
		checkPlan(t, p, recs)
		if round == 0 && len(p.batches) < 2 {
			t.Fatal("random chunk produced too few batches to mean anything")
		}
	}
}
