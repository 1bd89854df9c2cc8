package template

import (
	"bytes"
	"testing"
	"time"
	"unsafe"

	"github.com/cwos/cloudwatch-opensearch/internal/chunkgen"
	"github.com/cwos/cloudwatch-opensearch/internal/event"
	"github.com/cwos/cloudwatch-opensearch/internal/report"
)

// TestNamesCacheMatchesSanitize: names found through the rendered-name cache are what
// sanitizing gives, every time, and a name that sanitizes to nothing falls back (and is counted)
// every time it comes, not only the first.
func TestNamesCacheMatchesSanitize(t *testing.T) {
	rep := report.New("t", &bytes.Buffer{})
	n := NewNamer(NamerOptions{
		Group: MustCompile("$k", Group), GroupName: "fallback-group",
		Stream: MustCompile("$k", Stream), StreamName: "fallback-stream",
		Index: MustCompile("$k", Index), Report: rep,
	})
	values := []string{"web", "Web/App.1", "a:b*c", "", ".", "..", "-_+", "주문", "bad\xff", "UPPER CASE #1", "web"}
	var s Scratch
	when := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	fallbacks := [3]int64{}
	for round := 0; round < 3; round++ {
		for _, v := range values {
			rec := chunkgen.AppendValue(nil, chunkgen.Map{{Key: "k", Value: v}})
			got := n.Names(&s, &event.Event{Time: when, Record: rec}, "tag")
			for slot, name := range []string{got.Group, got.Stream, got.Index} {
				want := string(Sanitize(Kind(slot), nil, []byte(v)))
				if want == "" {
					fallbacks[slot]++
					continue // the fallback name; the counter is checked below
				}
				if name != want {
					t.Fatalf("round %d, %q, %v: got %q, want %q", round, v, Kind(slot), name, want)
				}
			}
		}
	}
	for slot, c := range []string{CounterFallbackGroup, CounterFallbackStream, CounterFallbackIndex} {
		if got := rep.Count(c); got != fallbacks[slot] || got == 0 {
			t.Errorf("%s = %d, want %d (> 0)", c, got, fallbacks[slot])
		}
	}
}

// TestNamesCacheIsBounded: the rendered-name cache never holds more than InternLimit names per
// slot, and names stay interned across its resets.
func TestNamesCacheIsBounded(t *testing.T) {
	n := NewNamer(NamerOptions{Group: MustCompile("$k", Group), StreamPrefix: "p-", Index: MustCompile("$k", Index)})
	var s Scratch
	when := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := 0; i < 3*InternLimit; i++ {
		rec := chunkgen.AppendValue(nil, chunkgen.Map{{Key: "k", Value: i}})
		n.Names(&s, &event.Event{Time: when, Record: rec}, "tag")
		for slot, m := range s.named {
			if len(m) > InternLimit {
				t.Fatalf("slot %d cache grew to %d", slot, len(m))
			}
		}
	}
	rec := chunkgen.AppendValue(nil, chunkgen.Map{{Key: "k", Value: "same"}})
	a := n.Names(&s, &event.Event{Time: when, Record: rec}, "tag")
	b := n.Names(&s, &event.Event{Time: when, Record: rec}, "tag")
	if a.Group != "same" || a.Index != "same" || unsafe.StringData(a.Group) != unsafe.StringData(b.Group) || unsafe.StringData(a.Index) != unsafe.StringData(b.Index) {
		t.Fatalf("names %+v then %+v", a, b)
	}
}

// TestIndexCacheMatchesRendering: index names remembered per (group, stream, hour or day) are
// the names rendering gives (a fresh Scratch renders every time), for templates with and
// without %H, $LOG_GROUP and $LOG_STREAM, times on both sides of day and hour boundaries and
// before 1970, fallback groups, and past the intern limit; equal names stay the same string,
// and templates that read the record or the tag are never cached.
func TestIndexCacheMatchesRendering(t *testing.T) {
	base := time.Date(2024, 1, 1, 23, 59, 59, 999_999_999, time.UTC)
	times := []time.Time{base, base.Add(time.Nanosecond), base.Add(time.Hour), base.Add(-time.Hour), base.Add(25 * time.Hour),
		time.Date(1969, 12, 31, 23, 30, 0, 0, time.UTC), time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC), time.Unix(0, 0), time.Unix(-1, 0),
		time.Date(2024, 6, 1, 12, 0, 0, 0, time.FixedZone("x", 5*3600))}
	for _, tc := range []struct {
		index  string
		cached bool
	}{
		{LambdaIndex, true}, {"logs-$LOG_STREAM-%Y.%m.%d-%H", true}, {"$LOG_GROUP.$LOG_STREAM", true}, {"fixed-%Y", true},
		{"logs-$TAG-%Y", false}, {"logs-$k-%Y", false}, {"$TAG[0]-$LOG_GROUP", false},
	} {
		n := NewNamer(NamerOptions{
			Group: MustCompile("/aws/$k", Group), GroupName: "fallback-group", Stream: MustCompile("$s", Stream), StreamPrefix: "p-",
			Index: MustCompile(tc.index, Index),
		})
		if cached := n.indexBy != 0; cached != tc.cached {
			t.Fatalf("%q: cached = %v, want %v", tc.index, cached, tc.cached)
		}
		var shared Scratch
		seen := map[string]string{}
		for i := 0; i < InternLimit+500; i++ {
			k := []any{"web", "Web.App", "api", nil}[i%4] // nil: the group falls back
			rec := chunkgen.AppendValue(nil, chunkgen.Map{{Key: "k", Value: k}, {Key: "s", Value: []string{"pod-a", "POD.b", ""}[i%3]}, {Key: "u", Value: i}})
			if i >= 600 { // past here every record has new names: the intern tables fill and reset
				rec = chunkgen.AppendValue(nil, chunkgen.Map{{Key: "k", Value: i}, {Key: "s", Value: i % 7}})
			}
			ev := &event.Event{Time: times[i%len(times)], Record: rec}
			got := n.Names(&shared, ev, "kube.a")
			var fresh Scratch
			want := n.Names(&fresh, ev, "kube.a")
			if got != want {
				t.Fatalf("%q, record %d: %+v, want %+v", tc.index, i, got, want)
			}
			if prev, ok := seen[got.Index]; ok && i < 600 && unsafe.StringData(prev) != unsafe.StringData(got.Index) {
				t.Fatalf("%q, record %d: equal index names %q are different strings", tc.index, i, got.Index)
			}
			seen[got.Index] = got.Index
		}
		if len(shared.indexes) > InternLimit {
			t.Errorf("%q: %d cached index names, limit %d", tc.index, len(shared.indexes), InternLimit)
		}
	}
}
