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
