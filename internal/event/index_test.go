package event

import (
	"math/rand/v2"
	"testing"

	"github.com/cwos/cloudwatch-opensearch/internal/chunkgen"
)

// sameIndexLookup fails when a MapIndex of m answers path differently from Lookup.
func sameIndexLookup(t *testing.T, x *MapIndex, m []byte, path []PathElem) {
	t.Helper()
	x.Reset(m)
	if got, want := x.Lookup(path), Lookup(m, path); !sameValue(got, want) {
		t.Fatalf("MapIndex(%x).Lookup(%+v) = %+v, want %+v", m, path, got, want)
	}
}

// TestMapIndexMatchesLookup: a MapIndex answers every path as Lookup does: Kubernetes metadata
// maps and every truncation of them, duplicate keys, bin and non-string keys, empty keys, maps
// past the index size, values that are not maps, and random bytes.
func TestMapIndexMatchesLookup(t *testing.T) {
	key := func(ks ...string) []PathElem {
		var p []PathElem
		for _, k := range ks {
			p = append(p, PathElem{Key: k})
		}
		return p
	}
	paths := [][]PathElem{
		nil, key("pod_name"), key("namespace_name"), key("labels"), key("labels", "app"), key("dup"), key(""),
		key("k"), key("7"), key("nope"), key("arr"), append(key("arr"), PathElem{Index: 1, IsIndex: true}),
		{{Index: 0, IsIndex: true}}, key("dup", "a"),
	}
	var maps [][]byte
	_, gen := chunkgen.K8sChunk(11, 30, chunkgen.Options{})
	for _, g := range gen {
		k8s, _ := g.Record.Get("kubernetes")
		maps = append(maps, mp(k8s))
	}
	var big M
	for i := 0; i < indexMax+1; i++ {
		big = append(big, kv{string(rune('a' + i%40)), i})
	}
	maps = append(maps,
		mp(M{{"dup", "first"}, {"pod_name", "p"}, {"dup", M{{"a", 1}}}, {"", "empty"}, {"arr", []any{1, "x"}}}),
		mp(M{{"dup", M{{"a", 1}}}, {"dup", 2}}),
		mp(big), mp(big[:indexMax]), mp(M{}),
		cat([]byte{0x83}, mp(chunkgen.Bin("k")), mp("from bin"), mp(7), mp("int key"), mp(M{{"k", 1}}), mp("map key")),
		cat([]byte{0xde, 0, 1}, mp("pod_name"), cat([]byte{0xd9, 3}, []byte("abc"))),
		cat(mp(M{{"k", 1}}), []byte{0xc0}), // bytes after the map
		mp("not a map"), mp([]any{"a"}), nil, []byte{0xc1},
	)
	var x MapIndex
	for _, m := range maps {
		for n := 0; n <= len(m); n++ {
			for _, p := range paths {
				sameIndexLookup(t, &x, m[:n], p)
			}
		}
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for n := 0; n < 3000; n++ {
		b := make([]byte, rng.IntN(20))
		for i := range b {
			b[i] = byte(rng.IntN(256))
			if rng.IntN(2) == 0 {
				b[i] = []byte{0x81, 0x82, 0x83, 0x91, 0xa1, 'k', 0xa0, 0xd9, 0x01, 0xc0, 0xc4}[rng.IntN(11)]
			}
		}
		for _, p := range paths {
			sameIndexLookup(t, &x, b, p)
		}
	}
}

func TestMapIndexAllocatesNothing(t *testing.T) {
	_, gen := chunkgen.K8sChunk(1, 1, chunkgen.Options{})
	k8s, _ := gen[0].Record.Get("kubernetes")
	m := mp(k8s)
	path := []PathElem{{Key: "pod_name"}}
	var x MapIndex
	var v Value
	if a := testing.AllocsPerRun(100, func() { x.Reset(m); v = x.Lookup(path) }); a != 0 || v.Kind != String {
		t.Errorf("%v allocs, kind %v", a, v.Kind)
	}
}

// FuzzMapIndex: a MapIndex answers as Lookup does.
func FuzzMapIndex(f *testing.F) {
	_, gen := chunkgen.K8sChunk(1, 1, chunkgen.Options{})
	k8s, _ := gen[0].Record.Get("kubernetes")
	f.Add(mp(k8s), "labels", "app")
	f.Add(mp(M{{"a", 1}, {"a", M{{"b", 2}}}}), "a", "b")
	f.Add([]byte{0x81, 0xc4, 0x01, 'a', 0x01}, "a", "")
	f.Fuzz(func(t *testing.T, m []byte, k1, k2 string) {
		var x MapIndex
		for _, p := range [][]PathElem{nil, {{Key: k1}}, {{Key: k1}, {Key: k2}}, {{Key: k1}, {Index: 0, IsIndex: true}}} {
			sameIndexLookup(t, &x, m, p)
		}
	})
}

// sameResetLookup fails when ResetLookup differs from Lookup, or when the index it leaves
// answers a path inside the value differently from Lookup.
func sameResetLookup(t *testing.T, x *MapIndex, record []byte, key string, inner [][]PathElem) {
	t.Helper()
	got, want := x.ResetLookup(record, key), Lookup(record, []PathElem{{Key: key}})
	if !sameValue(got, want) {
		t.Fatalf("ResetLookup(%x, %q) = %+v, want %+v", record, key, got, want)
	}
	if want.Kind != Map {
		return
	}
	for _, p := range inner {
		if got, want := x.Lookup(p), Lookup(want.Raw, p); !sameValue(got, want) {
			t.Fatalf("after ResetLookup(%x, %q): Lookup(%+v) = %+v, want %+v", record, key, p, got, want)
		}
	}
}

// TestResetLookupMatchesLookup: ResetLookup is Lookup of one key plus Reset of the map it finds,
// for Kubernetes records and every truncation of them, repeated keys (map then map, map then
// scalar, scalar then map), maps too big to index, non-string keys and random bytes.
func TestResetLookupMatchesLookup(t *testing.T) {
	inner := [][]PathElem{{{Key: "pod_name"}}, {{Key: "namespace_name"}}, {{Key: "container_name"}}, {{Key: "labels"}, {Key: "app"}},
		{{Key: "a"}}, {{Key: "b"}}, {{Key: ""}}, {{Index: 0, IsIndex: true}}}
	var recs [][]byte
	_, gen := chunkgen.K8sChunk(12, 30, chunkgen.Options{})
	for _, g := range gen {
		recs = append(recs, mp(g.Record))
	}
	var big M
	for i := 0; i < indexMax+1; i++ {
		big = append(big, kv{string(rune('a' + i%40)), i})
	}
	recs = append(recs,
		mp(M{{"kubernetes", M{{"a", 1}}}, {"x", 1}, {"kubernetes", M{{"a", 2}, {"b", 3}}}}),
		mp(M{{"kubernetes", M{{"a", 1}}}, {"kubernetes", "scalar"}}),
		mp(M{{"kubernetes", "scalar"}, {"kubernetes", M{{"b", 1}}}}),
		mp(M{{"kubernetes", big}}), mp(M{{"kubernetes", M{{"a", 1}}}, {"kubernetes", big}}),
		mp(M{{"kubernetes", M{}}}), mp(M{{"kubernetes", []any{M{{"a", 1}}}}}),
		cat([]byte{0x82}, mp(7), mp(M{{"a", 1}}), mp(chunkgen.Bin("kubernetes")), mp(M{{"b", 2}})),
		cat([]byte{0xde, 0, 1}, mp("kubernetes"), cat([]byte{0xde, 0, 1}, mp("a"), mp(1))),
		cat(mp(M{{"kubernetes", M{{"a", 1}}}}), []byte{0xc0}), // bytes after the record
		mp("not a map"), nil, []byte{0xc1},
	)
	var x MapIndex
	for _, r := range recs {
		for n := 0; n <= len(r); n++ {
			for _, key := range []string{"kubernetes", "log", "time", "nope", "", "7"} {
				sameResetLookup(t, &x, r[:n], key, inner)
			}
		}
	}
	rng := rand.New(rand.NewPCG(7, 8))
	for n := 0; n < 3000; n++ {
		b := make([]byte, rng.IntN(24))
		for i := range b {
			b[i] = byte(rng.IntN(256))
			if rng.IntN(2) == 0 {
				b[i] = []byte{0x81, 0x82, 0x83, 0x91, 0xa1, 'k', 0xa0, 0xd9, 0x01, 0xc0, 0xc4}[rng.IntN(11)]
			}
		}
		sameResetLookup(t, &x, b, "k", inner)
	}
}

// FuzzResetLookup: ResetLookup answers as Lookup does, and so does the index it leaves.
func FuzzResetLookup(f *testing.F) {
	_, gen := chunkgen.K8sChunk(1, 1, chunkgen.Options{})
	f.Add(mp(gen[0].Record), "kubernetes", "pod_name")
	f.Add(mp(M{{"a", M{{"b", 1}}}, {"a", M{{"c", 2}}}}), "a", "b")
	f.Add([]byte{0x81, 0xc4, 0x01, 'a', 0x81, 0xa1, 'b', 0x01}, "a", "b")
	f.Fuzz(func(t *testing.T, record []byte, key, inner string) {
		var x MapIndex
		sameResetLookup(t, &x, record, key, [][]PathElem{{{Key: inner}}, {{Key: inner}, {Key: inner}}, {{Index: 0, IsIndex: true}}})
	})
}
