package event

import (
	"math"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/cwos/cloudwatch-opensearch/internal/chunkgen"
)

// sameValue compares every field of two Values, floats by their bits (NaN is a value too).
func sameValue(a, b Value) bool {
	fa, fb := math.Float64bits(a.Float), math.Float64bits(b.Float)
	a.Float, b.Float = 0, 0
	return fa == fb && reflect.DeepEqual(a, b)
}

// sameLookup fails when Lookup and skip differ from the reference implementations on rec.
func sameLookup(t *testing.T, rec []byte, path []PathElem) {
	t.Helper()
	if got, want := Lookup(rec, path), lookupOld(rec, path); !sameValue(got, want) {
		t.Fatalf("Lookup(%x, %+v) = %+v, want %+v", rec, path, got, want)
	}
	// skip from every offset; from about 64 of them in long inputs, so the check stays linear.
	step := max(1, len(rec)/64)
	for i := 0; i <= len(rec); i += step {
		e1, p1 := skip(rec, i)
		e2, p2 := skipOld(rec, i)
		if e1 != e2 || p1 != p2 {
			t.Fatalf("skip(%x, %d) = %d, %d; want %d, %d", rec, i, e1, p1, e2, p2)
		}
	}
}

// TestLookupMatchesOld compares Lookup and skip with the implementations they replaced, over
// Kubernetes records, every truncation of them, and records with every kind of key and value.
func TestLookupMatchesOld(t *testing.T) {
	_, gen := chunkgen.K8sChunk(9, 40, chunkgen.Options{})
	paths := [][]PathElem{
		nil,
		{{Key: "kubernetes"}},
		{{Key: "kubernetes"}, {Key: "pod_name"}},
		{{Key: "kubernetes"}, {Key: "labels"}, {Key: "app"}},
		{{Key: "log"}},
		{{Key: "nope"}},
		{{Key: ""}},
		{{Key: "arr"}, {Index: 1, IsIndex: true}},
		{{Key: "arr"}, {Index: 1, IsIndex: true}, {Key: "x"}},
		{{Key: "k"}},
	}
	var recs [][]byte
	for _, g := range gen {
		recs = append(recs, mp(g.Record))
	}
	var big M
	for i := 0; i < 20; i++ {
		big = append(big, kv{string(rune('a' + i)), i})
	}
	recs = append(recs,
		mp(M{{"log", "x"}, {"arr", []any{"a", M{{"x", 1.5}}, nil}}, {"log", "second"}, {"", M{}}, {"n", -5}, {"u", uint64(1 << 63)}}),
		mp(M{{"kubernetes", M{{"pod_name", "a"}}}, {"kubernetes", "not a map"}}),
		mp(append(big, kv{"kubernetes", M{{"pod_name", string(make([]byte, 300))}}})),
		cat([]byte{0x83}, mp(chunkgen.Bin("k")), mp("from bin"), mp(7), mp("int key"), mp([]any{1}), mp(true)),
		cat([]byte{0xde, 0, 2}, mp("k"), mp(chunkgen.Bin("v")), mp("log"), mp(M{{"a", 1}})),
		cat([]byte{0x81}, mp("k"), mp(chunkgen.Ext{Type: 0, Data: make([]byte, 8)})),
	)
	for _, rec := range recs {
		for n := 0; n <= len(rec); n++ {
			for _, p := range paths {
				sameLookup(t, rec[:n], p)
			}
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for n := 0; n < 2000; n++ {
		b := make([]byte, rng.IntN(24))
		for i := range b {
			b[i] = byte(rng.IntN(256))
			if rng.IntN(3) == 0 {
				b[i] = []byte{0x81, 0x82, 0x92, 0xa1, 'k', 0xa3, 0xd9, 0x01, 0xc0}[rng.IntN(9)]
			}
		}
		for _, p := range paths {
			sameLookup(t, b, p)
		}
	}
}

// FuzzLookupMatchesOld: Lookup and skip agree with the implementations they replaced.
func FuzzLookupMatchesOld(f *testing.F) {
	_, gen := chunkgen.K8sChunk(1, 1, chunkgen.Options{})
	f.Add(mp(gen[0].Record), "kubernetes", "labels", 0)
	f.Add(mp(M{{"a", []any{1, M{{"b", 2}}}}, {"a", "x"}}), "a", "b", 1)
	f.Add([]byte{0x82, 0xa1, 'a', 0x81, 0xa1, 'b', 1}, "a", "b", -1)
	f.Fuzz(func(t *testing.T, rec []byte, k1, k2 string, idx int) {
		for _, path := range [][]PathElem{
			{{Key: k1}, {Key: k2}},
			{{Key: k1}, {Index: idx, IsIndex: true}, {Key: k2}},
		} {
			for n := 0; n <= len(path); n++ {
				sameLookup(t, rec, path[:n])
			}
		}
	})
}
