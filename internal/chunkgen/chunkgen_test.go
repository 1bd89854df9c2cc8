package chunkgen_test

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/cwos/cloudwatch-opensearch/internal/chunkgen"
	"github.com/cwos/cloudwatch-opensearch/internal/event"
	"github.com/vmihailenco/msgpack/v5"
)

func TestK8sChunkReadsBack(t *testing.T) {
	start := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		opts    chunkgen.Options
		markers int
		tick    time.Duration // precision of the decoded time
	}{
		{"v2", chunkgen.Options{Namespaces: 3, Containers: 4, Start: start, Days: 3}, 0, time.Nanosecond},
		{"v2 with groups", chunkgen.Options{Namespaces: 2, Containers: 2, GroupEvery: 100}, 6, time.Nanosecond},
		{"legacy ext", chunkgen.Options{Legacy: true, TimeForm: chunkgen.TimeExt}, 0, time.Nanosecond},
		{"legacy ext8", chunkgen.Options{Legacy: true, TimeForm: chunkgen.TimeExt8}, 0, time.Nanosecond},
		{"legacy int", chunkgen.Options{Legacy: true, TimeForm: chunkgen.TimeInt}, 0, time.Second},
		{"legacy float", chunkgen.Options{Legacy: true, TimeForm: chunkgen.TimeFloat, Days: 2}, 0, time.Nanosecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const n = 300
			chunk, gen := chunkgen.K8sChunk(99, n, tt.opts)
			evs, st := event.Decode(chunk, nil)
			if st.Events != n || len(gen) != n || st.Markers != tt.markers || st.Malformed != 0 {
				t.Fatalf("stats %+v, %d generated", st, len(gen))
			}
			first := tt.opts.Start
			if first.IsZero() {
				first = time.Date(2023, 2, 22, 0, 0, 0, 0, time.UTC)
			}
			last := first.AddDate(0, 0, max(tt.opts.Days, 1))
			seenNS, seenCT := map[string]bool{}, map[string]bool{}
			var buf []byte
			for i, ev := range evs {
				g := gen[i]
				if !ev.Time.Equal(g.Time) || g.Time.Before(first) || !g.Time.Before(last) {
					t.Fatalf("record %d: time %v, generated %v, want in [%v, %v)", i, ev.Time, g.Time, first, last)
				}
				if g.Time.Sub(g.Time.Truncate(tt.tick)) != 0 {
					t.Errorf("record %d: time %v finer than %v", i, g.Time, tt.tick)
				}
				if i > 0 && ev.Time.Before(evs[i-1].Time) {
					t.Errorf("record %d out of time order", i)
				}
				var err error
				if buf, err = event.AppendJSON(buf[:0], ev.Record); err != nil {
					t.Fatal(err)
				}
				var got map[string]any
				if err := json.Unmarshal(buf, &got); err != nil {
					t.Fatal(err)
				}
				if want := chunkgen.JSON(g.Record); !reflect.DeepEqual(got, want) {
					t.Fatalf("record %d:\n got  %v\n want %v", i, got, want)
				}
				k8s := got["kubernetes"].(map[string]any)
				if k8s["namespace_name"] != g.Namespace || k8s["container_name"] != g.Container {
					t.Errorf("record %d: kubernetes %v, generated %s/%s", i, k8s, g.Namespace, g.Container)
				}
				if got["time"] != g.Time.Format(time.RFC3339Nano) && tt.tick == time.Nanosecond && tt.opts.TimeForm != chunkgen.TimeFloat {
					t.Errorf("record %d: time field %v, event time %v", i, got["time"], g.Time)
				}
				seenNS[g.Namespace], seenCT[g.Container] = true, true
			}
			if len(seenNS) != max(tt.opts.Namespaces, 1) || len(seenCT) != max(tt.opts.Containers, 1) {
				t.Errorf("saw %d namespaces and %d containers", len(seenNS), len(seenCT))
			}
		})
	}
}

func TestK8sChunkIsDeterministic(t *testing.T) {
	opts := chunkgen.Options{Namespaces: 3, Containers: 3, Days: 2}
	a, _ := chunkgen.K8sChunk(5, 200, opts)
	b, _ := chunkgen.K8sChunk(5, 200, opts)
	c, _ := chunkgen.K8sChunk(6, 200, opts)
	if !bytes.Equal(a, b) {
		t.Error("same seed, different bytes")
	}
	if bytes.Equal(a, c) {
		t.Error("different seeds, same bytes")
	}
}

func TestK8sRecordShape(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	total := 0
	for i := 0; i < 2000; i++ {
		ns, ct := chunkgen.Namespace(i%11), chunkgen.Container(i%13)
		rec := chunkgen.K8sRecord(r, ns, ct, time.Unix(1677027723, int64(i)))
		raw := chunkgen.AppendValue(nil, rec)
		if len(raw) < chunkgen.MinRecordBytes || len(raw) > chunkgen.MaxRecordBytes {
			t.Fatalf("record %d is %d bytes", i, len(raw))
		}
		total += len(raw)
		for _, k := range []string{"log", "stream", "time", "kubernetes"} {
			if _, ok := rec.Get(k); !ok {
				t.Fatalf("record %d has no %s", i, k)
			}
		}
		kube, _ := rec.Get("kubernetes")
		for _, k := range []string{"pod_name", "namespace_name", "pod_id", "host", "container_name", "docker_id", "container_hash", "container_image"} {
			if v, ok := kube.(chunkgen.Map).Get(k); !ok || v == "" {
				t.Fatalf("record %d: kubernetes.%s missing", i, k)
			}
		}
		if v, _ := kube.(chunkgen.Map).Get("namespace_name"); v != ns {
			t.Fatalf("namespace %v, want %s", v, ns)
		}
	}
	if avg := total / 2000; avg < 550 || avg > 900 {
		t.Errorf("average record size %d bytes", avg)
	}
}

// TestAppendValueIsMsgpack checks the encoder against an independent msgpack decoder, at the
// edges of every integer, string and container form.
func TestAppendValueIsMsgpack(t *testing.T) {
	str := func(n int) string { return string(bytes.Repeat([]byte{'s'}, n)) }
	values := []any{
		nil, true, false,
		0, 1, 127, 128, 255, 256, 65535, 65536, math.MaxUint32, math.MaxUint32 + 1, int64(math.MaxInt64),
		uint64(math.MaxUint64), -1, -32, -33, -128, -129, -32768, -32769, math.MinInt32, math.MinInt32 - 1, int64(math.MinInt64),
		int8(-5), int16(300), int32(-70000), uint8(200), uint16(60000), uint32(4000000000), uint(7),
		float32(1.5), 2.25,
		"", str(31), str(32), str(255), str(256), str(65535), str(65536),
		[]byte("bin"), chunkgen.Bin(str(300)),
		[]any{1, "a", nil}, []string{"x", "y"}, make([]any, 16), make([]any, 70000),
		map[string]any{"b": 1, "a": []any{true}},
		chunkgen.Pairs("k", 1, "m", chunkgen.Pairs("n", "v")),
	}
	big := chunkgen.Map{}
	for i := 0; i < 20; i++ {
		big = append(big, chunkgen.KV{Key: str(i + 1), Value: i})
	}
	values = append(values, big)
	norm := func(v any) any { // what msgpack.Unmarshal gives back for v
		b, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var out any
		if err := msgpack.Unmarshal(b, &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	for _, v := range values {
		raw := chunkgen.AppendValue(nil, v)
		var got any
		if err := msgpack.Unmarshal(raw, &got); err != nil {
			t.Fatalf("%T %.40v: %v", v, v, err)
		}
		want := plain(v)
		if !reflect.DeepEqual(normNum(got), normNum(norm(want))) {
			t.Errorf("%T %.40v: decoded %.60v", v, v, got)
		}
	}
	// Timestamps: ext type 0, 8 bytes.
	tm := time.Unix(1677027723, 123456789)
	if raw := chunkgen.AppendTime(nil, tm, chunkgen.TimeExt); !bytes.Equal(raw, []byte{0xd7, 0, 0x63, 0xf5, 0x69, 0x8b, 0x07, 0x5b, 0xcd, 0x15}) {
		t.Errorf("fixext8 time %x", raw)
	}
	if raw := chunkgen.AppendTime(nil, tm, chunkgen.TimeExt8); !bytes.Equal(raw[:3], []byte{0xc7, 8, 0}) || len(raw) != 11 {
		t.Errorf("ext8 time %x", raw)
	}
}

// plain turns Map into map[string]any and Bin into []byte, the types msgpack.Marshal knows.
func plain(v any) any {
	switch v := v.(type) {
	case chunkgen.Map:
		m := map[string]any{}
		for _, kv := range v {
			m[kv.Key] = plain(kv.Value)
		}
		return m
	case chunkgen.Bin:
		return []byte(v)
	}
	return v
}

// normNum makes integers of any width and sign compare by value.
func normNum(v any) any {
	switch v := v.(type) {
	case int8, int16, int32, int64, uint8, uint16, uint32, uint64, int, uint:
		return reflect.ValueOf(v).Convert(reflect.TypeOf(float64(0))).Float()
	case float32:
		return float64(v)
	case []any:
		for i := range v {
			v[i] = normNum(v[i])
		}
	case map[string]any:
		for k := range v {
			v[k] = normNum(v[k])
		}
	}
	return v
}

func TestMarkers(t *testing.T) {
	var chunk []byte
	chunk = chunkgen.AppendGroupStart(chunk, map[string]any{"schema": "otlp"}, chunkgen.Pairs("resource", "r"))
	chunk = chunkgen.AppendV2(chunk, time.Unix(10, 0), nil, chunkgen.Pairs("log", "a"))
	chunk = chunkgen.AppendGroupEnd(chunk)
	evs, st := event.Decode(chunk, nil)
	if st.Events != 1 || st.Markers != 2 || len(evs) != 1 {
		t.Errorf("stats %+v", st)
	}
	if !bytes.HasPrefix(chunk, []byte{0x92, 0x92, 0xd7, 0x00, 0xff, 0xff, 0xff, 0xff}) {
		t.Errorf("group start %x", chunk[:8])
	}
}
