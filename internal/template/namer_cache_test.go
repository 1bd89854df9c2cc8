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
