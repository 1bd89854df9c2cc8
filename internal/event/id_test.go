package event

import (
	"crypto/sha256"
	"encoding/binary"
	"testing"
	"time"

	"github.com/cwos/cloudwatch-opensearch/internal/chunkgen"
)

// specID recomputes an id from the formula documented on Next, independently of IDGen.
func specID(tag string, ev Event, dup uint32) ID {
	var in []byte
	in = binary.BigEndian.AppendUint64(in, uint64(ev.Time.Unix()))
	in = binary.BigEndian.AppendUint32(in, uint32(ev.Time.Nanosecond()))
	in = binary.BigEndian.AppendUint64(in, uint64(len(ev.Record)))
	inner := sha256.Sum256(append(in, ev.Record...))
	out := append(inner[:], binary.BigEndian.AppendUint32(nil, dup)...)
	out = binary.BigEndian.AppendUint64(out, uint64(len(tag)))
	full := sha256.Sum256(append(out, tag...))
	var id ID
	copy(id[:], full[:16])
	return id
}

func ids(g *IDGen, tag string, evs []Event) []ID {
	g.Reset(tag)
	out := make([]ID, len(evs))
	for i, ev := range evs {
		out[i] = g.Next(ev)
	}
	return out
}

func TestIDsFollowTheFormula(t *testing.T) {
	rec := mp(M{{"log", "same line"}})
	other := mp(M{{"log", "other line"}})
	evs := []Event{{t0, rec}, {t0, other}, {t0, rec}, {t0.Add(time.Nanosecond), rec}, {t0, rec}}
	dups := []uint32{0, 0, 1, 0, 2}
	var g IDGen
	got := ids(&g, "kube.var.log", evs)
	for i, ev := range evs {
		if want := specID("kube.var.log", ev, dups[i]); got[i] != want {
			t.Errorf("event %d: id %v, want %v", i, got[i], want)
		}
	}
}

func TestIDsAreStableAndDistinct(t *testing.T) {
	chunk, _ := chunkgen.K8sChunk(11, 1000, chunkgen.Options{Namespaces: 3, Containers: 3})
	// Identical records (same time and bytes) repeated inside the chunk.
	rec := chunkgen.AppendV2(nil, t0, nil, gm(M{{"log", "GET /healthz 200"}}))
	chunk = append(chunk, rec...)
	chunk = append(chunk, rec...)
	chunk = append(chunk, rec...)
	evs, st := Decode(chunk, nil)
	if st.Events != 1003 {
		t.Fatalf("stats %+v", st)
	}
	var g IDGen
	first := ids(&g, "kube.app", evs)
	seen := map[ID]int{}
	for i, id := range first {
		if j, dup := seen[id]; dup {
			t.Fatalf("records %d and %d share id %v", j, i, id)
		}
		seen[id] = i
	}
	// Re-decoding a copy of the bytes (a Fluent Bit retry) gives the same ids, with the same
	// IDGen after Reset and with a fresh one.
	again, _ := Decode(append([]byte(nil), chunk...), nil)
	var fresh IDGen
	for _, second := range [][]ID{ids(&g, "kube.app", again), ids(&fresh, "kube.app", again)} {
		for i := range first {
			if first[i] != second[i] {
				t.Fatalf("record %d: id %v then %v", i, first[i], second[i])
			}
		}
	}
	// The tag is part of the id.
	if other := ids(&g, "kube.app2", evs[:1]); other[0] == first[0] {
		t.Error("same id under another tag")
	}
	// The same record later in another chunk keeps its id when as many copies precede it;
	// the second copy of a chunk gets the id of the second copy.
	k8s, _ := chunkgen.K8sChunk(12, 5, chunkgen.Options{})
	chunk2 := append(append(append([]byte(nil), k8s...), rec...), rec...)
	evs2, _ := Decode(chunk2, nil)
	got := ids(&g, "kube.app", evs2)
	if got[5] != first[1000] || got[6] != first[1001] {
		t.Errorf("identical records in another chunk: ids %v %v, want %v %v", got[5], got[6], first[1000], first[1001])
	}
}

func TestIDGenWithoutReset(t *testing.T) {
	var g IDGen // usable before Reset: empty tag
	ev := Event{t0, mp(M{{"a", 1}})}
	if got := g.Next(ev); got != specID("", ev, 0) {
		t.Errorf("id %v", got)
	}
}

func TestIDGenAllocatesNothing(t *testing.T) {
	chunk, _ := chunkgen.K8sChunk(13, 200, chunkgen.Options{})
	evs, _ := Decode(chunk, nil)
	var g IDGen
	ids(&g, "warm", evs) // grow the map once
	var sink ID
	allocs := testing.AllocsPerRun(10, func() {
		g.Reset("kube.var.log.containers")
		for _, ev := range evs {
			sink = g.Next(ev)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocs per chunk", allocs)
	}
	_ = sink
}
