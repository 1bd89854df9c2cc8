package event

import (
	"bytes"
	"math"
	"testing"

	"github.com/cwos/cloudwatch-opensearch/internal/chunkgen"
)

// M is an ordered map for test records; kv keeps `go vet` happy with short literals.
type M []kv

type kv struct {
	k string
	v any
}

// gm converts test values to the chunkgen types.
func gm(v any) any {
	switch v := v.(type) {
	case M:
		out := make(chunkgen.Map, len(v))
		for i, e := range v {
			out[i] = chunkgen.KV{Key: e.k, Value: gm(e.v)}
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = gm(e)
		}
		return out
	}
	return v
}

// mp encodes a value with the test encoder.
func mp(v any) []byte { return chunkgen.AppendValue(nil, gm(v)) }

// cat joins byte pieces: hand-written msgpack in forms the encoder does not choose.
func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestReadEveryFormat(t *testing.T) {
	abc := []byte("abc")
	tests := []struct {
		name string
		raw  []byte
		want Value // Raw is checked to be the whole input
	}{
		{"positive fixint", []byte{0x05}, Value{Kind: Int, Int: 5, Uint: 5}},
		{"positive fixint max", []byte{0x7f}, Value{Kind: Int, Int: 127, Uint: 127}},
		{"negative fixint", []byte{0xff}, Value{Kind: Int, Int: -1}},
		{"negative fixint min", []byte{0xe0}, Value{Kind: Int, Int: -32}},
		{"uint8", []byte{0xcc, 0xff}, Value{Kind: Int, Int: 255, Uint: 255}},
		{"uint16", []byte{0xcd, 0x01, 0x00}, Value{Kind: Int, Int: 256, Uint: 256}},
		{"uint32", []byte{0xce, 0xff, 0xff, 0xff, 0xff}, Value{Kind: Int, Int: math.MaxUint32, Uint: math.MaxUint32}},
		{"uint64 fits int64", []byte{0xcf, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, Value{Kind: Int, Int: math.MaxInt64, Uint: math.MaxInt64}},
		{"uint64 above int64", []byte{0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, Value{Kind: Uint, Uint: math.MaxUint64}},
		{"int8", []byte{0xd0, 0x80}, Value{Kind: Int, Int: -128}},
		{"int8 positive", []byte{0xd0, 0x05}, Value{Kind: Int, Int: 5, Uint: 5}},
		{"int16", []byte{0xd1, 0x80, 0x00}, Value{Kind: Int, Int: -32768}},
		{"int32", []byte{0xd2, 0x80, 0, 0, 0}, Value{Kind: Int, Int: math.MinInt32}},
		{"int64", []byte{0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0}, Value{Kind: Int, Int: math.MinInt64}},
		{"float32", mp(float32(1.5)), Value{Kind: Float, Float: 1.5}},
		{"float64", mp(2.25), Value{Kind: Float, Float: 2.25}},
		{"nil", []byte{0xc0}, Value{Kind: Nil}},
		{"false", []byte{0xc2}, Value{Kind: Bool}},
		{"true", []byte{0xc3}, Value{Kind: Bool, Bool: true}},
		{"fixstr", cat([]byte{0xa3}, abc), Value{Kind: String, Bytes: abc}},
		{"str8", cat([]byte{0xd9, 3}, abc), Value{Kind: String, Bytes: abc}},
		{"str16", cat([]byte{0xda, 0, 3}, abc), Value{Kind: String, Bytes: abc}},
		{"str32", cat([]byte{0xdb, 0, 0, 0, 3}, abc), Value{Kind: String, Bytes: abc}},
		{"empty str", []byte{0xa0}, Value{Kind: String, Bytes: []byte{}}},
		{"bin8", cat([]byte{0xc4, 3}, abc), Value{Kind: Binary, Bytes: abc}},
		{"bin16", cat([]byte{0xc5, 0, 3}, abc), Value{Kind: Binary, Bytes: abc}},
		{"bin32", cat([]byte{0xc6, 0, 0, 0, 3}, abc), Value{Kind: Binary, Bytes: abc}},
		{"fixext1", []byte{0xd4, 7, 0xaa}, Value{Kind: Ext, Int: 7, Bytes: []byte{0xaa}}},
		{"fixext2", []byte{0xd5, 7, 1, 2}, Value{Kind: Ext, Int: 7, Bytes: []byte{1, 2}}},
		{"fixext4", []byte{0xd6, 0xff, 1, 2, 3, 4}, Value{Kind: Ext, Int: -1, Bytes: []byte{1, 2, 3, 4}}},
		{"fixext8", []byte{0xd7, 0, 1, 2, 3, 4, 5, 6, 7, 8}, Value{Kind: Ext, Bytes: []byte{1, 2, 3, 4, 5, 6, 7, 8}}},
		{"fixext16", cat([]byte{0xd8, 3}, bytes.Repeat([]byte{9}, 16)), Value{Kind: Ext, Int: 3, Bytes: bytes.Repeat([]byte{9}, 16)}},
		{"ext8", cat([]byte{0xc7, 3, 5}, abc), Value{Kind: Ext, Int: 5, Bytes: abc}},
		{"ext16", cat([]byte{0xc8, 0, 3, 5}, abc), Value{Kind: Ext, Int: 5, Bytes: abc}},
		{"ext32", cat([]byte{0xc9, 0, 0, 0, 3, 5}, abc), Value{Kind: Ext, Int: 5, Bytes: abc}},
		{"fixarray", []byte{0x92, 1, 2}, Value{Kind: Array, Uint: 2}},
		{"array16", []byte{0xdc, 0, 2, 1, 2}, Value{Kind: Array, Uint: 2}},
		{"array32", []byte{0xdd, 0, 0, 0, 2, 1, 2}, Value{Kind: Array, Uint: 2}},
		{"fixmap", []byte{0x81, 0xa1, 'a', 1}, Value{Kind: Map, Uint: 1}},
		{"map16", []byte{0xde, 0, 1, 0xa1, 'a', 1}, Value{Kind: Map, Uint: 1}},
		{"map32", []byte{0xdf, 0, 0, 0, 1, 0xa1, 'a', 1}, Value{Kind: Map, Uint: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Lookup(tt.raw, nil)
			if !bytes.Equal(got.Raw, tt.raw) {
				t.Errorf("Raw = %x, want %x", got.Raw, tt.raw)
			}
			got.Raw = nil
			if got.Kind != tt.want.Kind || got.Int != tt.want.Int || got.Uint != tt.want.Uint ||
				got.Float != tt.want.Float || got.Bool != tt.want.Bool || !bytes.Equal(got.Bytes, tt.want.Bytes) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			if end, p := skip(tt.raw, 0); p != 0 || end != len(tt.raw) {
				t.Errorf("skip = %d, %d; want %d, 0", end, p, len(tt.raw))
			}
			// Every truncation is unreadable, never a shorter value or a panic.
			for n := 0; n < len(tt.raw); n++ {
				if v := Lookup(tt.raw[:n], nil); v.Kind != Missing {
					t.Errorf("truncated to %d bytes: %v, want missing", n, v.Kind)
				}
			}
		})
	}
	if v := Lookup([]byte{0xc1}, nil); v.Kind != Missing {
		t.Errorf("0xc1 read as %v", v.Kind)
	}
}

func TestHugeCountsAreRejectedEarly(t *testing.T) {
	// A map32 or array32 claiming billions of elements in a few bytes must not loop.
	for _, raw := range [][]byte{
		{0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 'a', 1},
		{0xdd, 0xff, 0xff, 0xff, 0xff, 1},
		{0xdb, 0xff, 0xff, 0xff, 0xff, 'a'},
		{0xc9, 0xff, 0xff, 0xff, 0xff, 1, 2},
	} {
		if _, p := skip(raw, 0); p != probTruncated {
			t.Errorf("%x: problem %d, want truncated", raw, p)
		}
	}
}

func TestAppendText(t *testing.T) {
	tests := []struct {
		name string
		raw  []byte
		want string
		ok   bool
	}{
		{"string", mp("web-1"), "web-1", true},
		{"binary", mp(chunkgen.Bin("raw")), "raw", true},
		{"int", mp(42), "42", true},
		{"negative", mp(-7), "-7", true},
		{"min int64", mp(int64(math.MinInt64)), "-9223372036854775808", true},
		{"max uint64", mp(uint64(math.MaxUint64)), "18446744073709551615", true},
		{"float", mp(1.5), "1.5", true},
		{"integral float", mp(100.0), "100", true},
		{"big float", mp(1e21), "1e+21", true},
		{"float32 shortest", mp(float32(0.1)), "0.1", true},
		{"true", mp(true), "true", true},
		{"false", mp(false), "false", true},
		{"nil", mp(nil), "", false},
		{"map", mp(M{{"a", 1}}), "", false},
		{"array", mp([]any{1}), "", false},
		{"ext", mp(chunkgen.Ext{Type: 1, Data: []byte{1}}), "", false},
		{"missing", nil, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Lookup(tt.raw, nil).AppendText([]byte("x="))
			if ok != tt.ok || string(got) != "x="+tt.want {
				t.Errorf("AppendText = %q, %v; want %q, %v", got, ok, "x="+tt.want, tt.ok)
			}
		})
	}
}

func TestLookup(t *testing.T) {
	rec := mp(M{
		{"log", "hello"},
		{"kubernetes", M{
			{"namespace_name", "ns1"},
			{"labels", M{{"app", "web"}, {"app.kubernetes.io/name", "web-ui"}}},
		}},
		{"arr", []any{"a", M{{"x", 1}}, nil}},
		{"dup", "first"},
		{"n", 5},
		{"dup", "second"},
		{"nested", M{{"a", 1}}},
		{"nested", M{{"b", 2}}},
		{"", "empty key"},
	})
	// A bin key matches like a str key.
	binKey := cat([]byte{0x82}, mp(chunkgen.Bin("k")), mp("from bin"), mp(7), mp("int key"))
	key := func(ks ...string) []PathElem {
		var p []PathElem
		for _, k := range ks {
			p = append(p, PathElem{Key: k})
		}
		return p
	}
	idx := func(p []PathElem, i int) []PathElem { return append(p, PathElem{Index: i, IsIndex: true}) }
	tests := []struct {
		name string
		rec  []byte
		path []PathElem
		kind Kind
		text string
	}{
		{"top key", rec, key("log"), String, "hello"},
		{"nested", rec, key("kubernetes", "namespace_name"), String, "ns1"},
		{"two levels", rec, key("kubernetes", "labels", "app"), String, "web"},
		{"key with dots and slash", rec, key("kubernetes", "labels", "app.kubernetes.io/name"), String, "web-ui"},
		{"map value", rec, key("kubernetes"), Map, ""},
		{"index", rec, idx(key("arr"), 0), String, "a"},
		{"index then key", rec, append(idx(key("arr"), 1), PathElem{Key: "x"}), Int, "1"},
		{"index of nil", rec, idx(key("arr"), 2), Nil, ""},
		{"index past end", rec, idx(key("arr"), 3), Missing, ""},
		{"negative index", rec, idx(key("arr"), -1), Missing, ""},
		{"last duplicate wins", rec, key("dup"), String, "second"},
		{"duplicate maps: last wins", rec, key("nested", "b"), Int, "2"},
		{"duplicate maps: first is gone", rec, key("nested", "a"), Missing, ""},
		{"int", rec, key("n"), Int, "5"},
		{"empty key", rec, key(""), String, "empty key"},
		{"absent", rec, key("nope"), Missing, ""},
		{"absent nested", rec, key("kubernetes", "nope"), Missing, ""},
		{"key into string", rec, key("log", "x"), Missing, ""},
		{"index into string", rec, idx(key("log"), 0), Missing, ""},
		{"index into map", rec, idx(key("kubernetes"), 0), Missing, ""},
		{"key into array", rec, key("arr", "x"), Missing, ""},
		{"bin key", binKey, key("k"), String, "from bin"},
		{"int keys are not matched", binKey, key("7"), Missing, ""},
		{"truncated record", rec[:len(rec)-3], key("log"), Missing, ""},
		{"not msgpack", []byte{0xc1}, key("log"), Missing, ""},
		{"empty record", nil, key("log"), Missing, ""},
		{"empty path", mp("s"), nil, String, "s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := Lookup(tt.rec, tt.path)
			if v.Kind != tt.kind {
				t.Fatalf("kind = %v, want %v", v.Kind, tt.kind)
			}
			if got, _ := v.AppendText(nil); string(got) != tt.text {
				t.Errorf("text = %q, want %q", got, tt.text)
			}
			if v.Kind != Missing {
				if _, err := AppendJSON(nil, v.Raw); err != nil {
					t.Errorf("Raw is not a complete value: %v", err)
				}
			}
		})
	}
}

func TestLookupAllocatesNothing(t *testing.T) {
	_, gen := chunkgen.K8sChunk(1, 1, chunkgen.Options{})
	rec := mp(gen[0].Record)
	path := []PathElem{{Key: "kubernetes"}, {Key: "container_name"}}
	buf := make([]byte, 0, 64)
	var ok bool
	allocs := testing.AllocsPerRun(100, func() {
		buf, ok = Lookup(rec, path).AppendText(buf[:0])
	})
	if allocs != 0 || !ok || string(buf) != gen[0].Container {
		t.Errorf("allocs = %v, text %q %v", allocs, buf, ok)
	}
}

func FuzzLookup(f *testing.F) {
	_, gen := chunkgen.K8sChunk(1, 1, chunkgen.Options{})
	f.Add(mp(gen[0].Record), "kubernetes", "labels", 0)
	f.Add(mp(M{{"a", []any{1, M{{"b", 2}}}}}), "a", "b", 1)
	f.Add([]byte{0xdf, 0, 0, 0, 2, 0xa1, 'a'}, "a", "", -1)
	f.Fuzz(func(t *testing.T, rec []byte, k1, k2 string, idx int) {
		path := []PathElem{{Key: k1}, {Index: idx, IsIndex: true}, {Key: k2}}
		for n := 0; n <= len(path); n++ {
			v := Lookup(rec, path[:n])
			if v.Kind == Missing {
				continue
			}
			if !within(v.Raw, rec) {
				t.Fatalf("Raw outside the record")
			}
			if end, p := skip(v.Raw, 0); p != 0 || end != len(v.Raw) {
				t.Fatalf("Raw %x is not one complete value", v.Raw)
			}
			if _, ok := v.AppendText(nil); ok != (v.Kind != Nil && v.Kind != Map && v.Kind != Array && v.Kind != Ext) {
				t.Fatalf("AppendText ok=%v for %v", ok, v.Kind)
			}
		}
	})
}
