package event

import (
	"bytes"
	"math"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/cwos/cloudwatch-opensearch/internal/chunkgen"
)

// hostileValues are msgpack values whose JSON exercises every escape AppendString makes inside
// strings and keys, so their JSON holds escapes of its own to be escaped again.
func hostileValues() [][]byte {
	long := strings.Repeat(`\"`, 37) + "x"
	return [][]byte{
		mp(M{{"log", "bad\xffutf8\xc3 and \x00\x01\x1f\x7f ctl \n\r\t\b\f"}, {"sep", "a\u2028b\u2029c"}}),
		mp(M{{"q\"k\\", `C:\data\"x"`}, {"주문", "✓ 결과"}, {"cut", "\xe2\x80\xa8\xe2\x80\xed\xa0\x80"}}),
		mp(M{{"bin", chunkgen.Bin("\x00\xff\"\\")}, {"nested", M{{"a", []any{1.5, nil, true, false, long}}, {"b", M{{"c", M{{"d", "\\"}}}}}}}}),
		mp(M{{"ext", chunkgen.Ext{Type: 0, Data: []byte{0x60, 0, 0, 1, 0, 0, 0, 7}}}, {"odd", chunkgen.Ext{Type: 9, Data: []byte("x")}}}),
		mp(M{{"f", 1.0}, {"g", 1e-9}, {"h", math.Inf(1)}, {"i", math.NaN()}, {"j", float32(0.1)}, {"u", uint64(math.MaxUint64)}, {"n", int64(math.MinInt64)}}),
		mp(M{{"dup", 1}, {"dup\"", 2}, {"dup", "\"last\""}}),
		cat([]byte{0x84}, mp(5), mp("int key"), mp(1.5), mp("float key"), mp([]any{"a\"", 1}), mp("array key"), mp(M{{"m\\", nil}}), mp("map key")),
		mp(strings.Repeat("\\", 64)),
		mp(strings.Repeat("ab\"", 50)),
		mp(""),
		mp([]any{}),
		mp(M{}),
	}
}

// quotingInputs are the hostile values and realistic Kubernetes records.
func quotingInputs() [][]byte {
	vals := hostileValues()
	_, gen := chunkgen.K8sChunk(7, 300, chunkgen.Options{})
	for _, g := range gen {
		vals = append(vals, mp(g.Record))
	}
	return vals
}

// TestAppendJSONQuoted: the second buffer is byte for byte AppendString of the JSON, and the
// JSON and the clean verdict are AppendJSONChecked's, whatever the buffers hold already (empty,
// spare room with scratch bytes past the end, exactly full).
func TestAppendJSONQuoted(t *testing.T) {
	for vi, v := range quotingInputs() {
		for _, reserved := range []string{"", "time"} {
			want, wantClean, err := AppendJSONChecked(nil, v, reserved)
			if err != nil {
				t.Fatalf("value %d: %v", vi, err)
			}
			assertQuoted(t, v, reserved, want, wantClean)
		}
	}
}

func assertQuoted(t *testing.T, v []byte, reserved string, want []byte, wantClean bool) {
	t.Helper()
	bufs := func() [][]byte {
		return [][]byte{nil, append(make([]byte, 0, 8192), "x"...), []byte("xy")}
	}
	for _, dst := range bufs() {
		for _, quoted := range bufs() {
			prefix, qprefix := string(dst), string(quoted)
			out, q, clean, err := AppendJSONQuoted(dst, quoted, v, reserved)
			if err != nil || string(out) != prefix+string(want) || clean != wantClean {
				t.Fatalf("AppendJSONQuoted(%x) = %q, %v, %v; AppendJSONChecked says %q, %v", v, out, clean, err, want, wantClean)
			}
			if wantQ := AppendString([]byte(qprefix), want); !bytes.Equal(q, wantQ) {
				t.Fatalf("AppendJSONQuoted(%x) quoted =\n%s\nAppendString says\n%s", v, q, wantQ)
			}
		}
	}
}

// TestAppendJSONQuotedErrors: malformed or too deep input leaves both buffers as they were and
// gives AppendJSONChecked's error.
func TestAppendJSONQuotedErrors(t *testing.T) {
	deep := bytes.Repeat([]byte{0x91}, maxDepth+1)
	deep = append(deep, 0xc0)
	for _, in := range [][]byte{nil, {0xc1}, {0x82, 0xa1, 'a'}, cat(mp(M{{"a", "b"}}), []byte{0}), deep, cat([]byte{0x81}, mp(M{{"k", 1}}), []byte{0xc1})} {
		_, _, wantErr := AppendJSONChecked(nil, in, "")
		out, q, clean, err := AppendJSONQuoted([]byte("d"), []byte("q"), in, "")
		if err == nil || wantErr == nil || err.Error() != wantErr.Error() || string(out) != "d" || string(q) != "q" || clean {
			t.Errorf("AppendJSONQuoted(%x) = %q, %q, %v, %v; want d, q, false, %v", in, out, q, clean, err, wantErr)
		}
	}
}

// TestAppendEscapedJSON: for JSON the transcoder wrote (whole values, bare fields, and every
// prefix of them that is still UTF-8), the escaped text between quotes is AppendString's.
func TestAppendEscapedJSON(t *testing.T) {
	for vi, v := range quotingInputs() {
		whole, err := AppendJSON(nil, v)
		if err != nil {
			t.Fatalf("value %d: %v", vi, err)
		}
		texts := [][]byte{whole}
		if isMap(v[0]) {
			fields, _, err := AppendFields(nil, v, []string{"log"})
			if err != nil {
				t.Fatal(err)
			}
			texts = append(texts, fields)
		}
		for _, js := range texts {
			// Every length of the text, so each tail size and word boundary is crossed.
			for cut := 0; cut <= len(js); cut++ {
				if cut > 64 && cut < len(js)-16 {
					cut = len(js) - 16 // the middle is the same words again
				}
				if cut == len(js) || utf8.RuneStart(js[cut]) { // the text stays valid UTF-8
					assertEscaped(t, js[:cut])
				}
			}
		}
	}
}

func assertEscaped(t *testing.T, js []byte) {
	t.Helper()
	for _, dst := range [][]byte{nil, append(make([]byte, 0, 4096), "x"...), []byte("xy")} {
		prefix := string(dst)
		want := AppendString([]byte(prefix), js)
		got := append(appendEscapedJSON(append(dst, '"'), js), '"')
		if !bytes.Equal(got, want) {
			t.Fatalf("appendEscapedJSON(%q, %q) =\n%s\nAppendString says\n%s", prefix, js, got, want)
		}
	}
}

// TestStrQuoted: a string read in whole words from a bigger buffer, at every offset and
// with every kind of byte after it (or none), comes out as AppendString writes it, and its
// escaped form after pre.
func TestStrQuoted(t *testing.T) {
	strs := []string{"", "a", "k8s", "exactly8", "fifteen chars!!", "sixteen chars!!!", "with\"quote", "back\\slash",
		"ctl\x01", "주문", "bad\xff", "a\u2028b", strings.Repeat("plain", 9), "seven77", "\x7fdel", "plain then 주문"}
	tails := []string{"", "\"", "\\", "\x00\x00\x00\x00\x00\x00\x00\x00", "\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8", "plain text after it"}
	for _, s := range strs {
		for lead := 0; lead < 9; lead++ {
			for _, tail := range tails {
				for _, pre := range []string{"", ",", "}]:", "12345678901234567890"} {
					b := []byte(strings.Repeat("\x01", lead) + s + tail)
					want := AppendString([]byte("d"+pre), s)
					wantQ := appendEscapedJSON([]byte("q"+pre), want[1+len(pre):])
					q := []byte("q")
					e := jsonEnc{src: b, quote: true, q: &q, synced: 1} // q lacks pre
					got := e.strQuoted([]byte("d"+pre), lead, lead+len(s))
					if string(got) != string(want) || string(q) != string(wantQ) || e.synced != len(got) {
						t.Fatalf("strQuoted(pre %q, %q in %q) = %q, %q, synced %d; want %q, %q", pre, s, b, got, q, e.synced, want, wantQ)
					}
				}
			}
		}
	}
}

func TestAppendJSONQuotedAllocatesNothing(t *testing.T) {
	_, gen := chunkgen.K8sChunk(1, 1, chunkgen.Options{})
	rec := mp(gen[0].Record)
	buf, q := make([]byte, 0, 4096), make([]byte, 0, 8192)
	if a := testing.AllocsPerRun(100, func() { buf, q, _, _ = AppendJSONQuoted(buf[:0], q[:0], rec, "time") }); a != 0 {
		t.Errorf("%v allocs", a)
	}
}

// FuzzAppendJSONQuoted: for any input, AppendJSONQuoted agrees with AppendJSONChecked, and its
// quoted JSON with AppendString.
func FuzzAppendJSONQuoted(f *testing.F) {
	for _, v := range hostileValues() {
		f.Add(v, "")
	}
	_, gen := chunkgen.K8sChunk(1, 2, chunkgen.Options{})
	f.Add(mp(gen[0].Record), "time")
	f.Fuzz(func(t *testing.T, in []byte, reserved string) {
		want, wantClean, wantErr := AppendJSONChecked(nil, in, reserved)
		if wantErr != nil {
			_, _, _, err := AppendJSONQuoted(nil, nil, in, reserved)
			if err == nil || err.Error() != wantErr.Error() {
				t.Fatalf("AppendJSONQuoted(%x) err %v, AppendJSONChecked says %v", in, err, wantErr)
			}
			return
		}
		assertQuoted(t, in, reserved, want, wantClean)
		assertEscaped(t, want)
	})
}

// BenchmarkAppendJSONQuoted compares the one-pass JSON + quoted JSON with transcoding and then
// escaping the JSON again, per Kubernetes record.
func BenchmarkAppendJSONQuoted(b *testing.B) {
	_, evs := benchChunk(b)
	total := 0
	for _, ev := range evs {
		total += len(ev.Record)
	}
	buf, q := make([]byte, 0, 2*total), make([]byte, 0, 4*total)
	b.Run("OnePass", func(b *testing.B) {
		b.SetBytes(int64(total))
		cpu0 := cpuNow()
		for b.Loop() {
			buf, q = buf[:0], q[:0]
			for _, ev := range evs {
				buf, q, _, _ = AppendJSONQuoted(buf, q, ev.Record, "")
			}
		}
		perRecord(b, cpu0)
	})
	b.Run("CheckedThenAppendString", func(b *testing.B) {
		b.SetBytes(int64(total))
		cpu0 := cpuNow()
		for b.Loop() {
			buf, q = buf[:0], q[:0]
			for _, ev := range evs {
				start := len(buf)
				buf, _, _ = AppendJSONChecked(buf, ev.Record, "")
				q = AppendString(q, buf[start:])
			}
		}
		perRecord(b, cpu0)
	})
	b.Run("CheckedOnly", func(b *testing.B) {
		b.SetBytes(int64(total))
		cpu0 := cpuNow()
		for b.Loop() {
			buf = buf[:0]
			for _, ev := range evs {
				buf, _, _ = AppendJSONChecked(buf, ev.Record, "")
			}
		}
		perRecord(b, cpu0)
	})
}

// TestTranscoderMatchesPackage: a Transcoder's output is the package functions' for every record
// of a stream in which nested maps repeat (Kubernetes metadata), switching between the checked
// and the quoted form so that maps remembered by one are reused by the other, with repeated
// keys inside remembered maps, maps just below and above the size worth remembering, malformed
// records whose bytes start like a remembered map, and more maps than the memory holds.
func TestTranscoderMatchesPackage(t *testing.T) {
	var vals [][]byte
	_, gen := chunkgen.K8sChunk(9, 400, chunkgen.Options{Namespaces: 3, Containers: 3})
	for _, g := range gen {
		vals = append(vals, mp(g.Record))
	}
	meta := M{{"pod_name", "web-1"}, {"labels", M{{"app", "web"}, {"app", "web\"2"}}}, {"namespace_name", strings.Repeat("n", 60)}}
	small := M{{"a", "b"}}
	for i := 0; i < 3; i++ {
		vals = append(vals,
			mp(M{{"log", "x"}, {"kubernetes", meta}, {"small", small}}),
			mp(M{{"kubernetes", meta}, {"kubernetes", meta}, {"@timestamp", 1}}),
			mp(M{{"m", M{{"k", strings.Repeat("v", memoMin-8)}}}}),
			mp(M{{"m", M{{"k", strings.Repeat("v", memoMin)}}}}),
			mp(M{{"list", []any{meta, meta}}, {"deep", M{{"in", meta}}}}),
		)
		good := mp(M{{"kubernetes", meta}})
		vals = append(vals, good[:len(good)-3], cat(good, []byte{0xc0})) // truncated; trailing bytes
	}
	for i := 0; i < 1200; i++ { // more distinct maps than memoMaxEntries
		vals = append(vals, mp(M{{"kubernetes", M{{"pod_name", strings.Repeat("p", 70) + strconv.Itoa(i)}}}}))
	}
	vals = append(vals, mp(M{{"huge", M{{"k", strings.Repeat("h", memoMaxBytes/2)}}}}))
	vals = append(vals, vals[:50]...)
	var tr Transcoder
	for i, v := range vals {
		for _, reserved := range []string{"", "time"} {
			want, wantClean, wantErr := AppendJSONChecked([]byte("d"), v, reserved)
			var got []byte
			var clean bool
			var err error
			if (i+len(reserved))%3 == 0 {
				got, clean, err = tr.AppendJSONChecked([]byte("d"), v, reserved)
			} else {
				var q []byte
				got, q, clean, err = tr.AppendJSONQuoted([]byte("d"), []byte("q"), v, reserved)
				if wantErr == nil && !bytes.Equal(q, AppendString([]byte("q"), want[1:])) {
					t.Fatalf("record %d: Transcoder quoted JSON %.200q, want %.200q", i, q, AppendString([]byte("q"), want[1:]))
				}
			}
			if !bytes.Equal(got, want) || clean != wantClean || (err == nil) != (wantErr == nil) || err != nil && err.Error() != wantErr.Error() {
				t.Fatalf("record %d: Transcoder gives %.200q, %v, %v; package %.200q, %v, %v", i, got, clean, err, want, wantClean, wantErr)
			}
		}
	}
	if len(tr.buf) > memoMaxBytes || len(tr.index) > memoMaxEntries {
		t.Errorf("memory holds %d bytes, %d maps", len(tr.buf), len(tr.index))
	}
}

func TestTranscoderAllocatesNothing(t *testing.T) {
	_, gen := chunkgen.K8sChunk(1, 20, chunkgen.Options{})
	var recs [][]byte
	for _, g := range gen {
		recs = append(recs, mp(g.Record))
	}
	var tr Transcoder
	buf, q := make([]byte, 0, 1<<16), make([]byte, 0, 1<<17)
	run := func() {
		buf, q = buf[:0], q[:0]
		for _, r := range recs {
			buf, q, _, _ = tr.AppendJSONQuoted(buf, q, r, "time")
		}
	}
	run()
	if a := testing.AllocsPerRun(20, run); a != 0 {
		t.Errorf("%v allocs", a)
	}
}

// FuzzTranscoder: two records through one Transcoder (the second may reuse maps of the first)
// give the package functions' output.
func FuzzTranscoder(f *testing.F) {
	_, gen := chunkgen.K8sChunk(1, 2, chunkgen.Options{})
	f.Add(mp(gen[0].Record), mp(gen[1].Record), true)
	m := M{{"k", strings.Repeat("v", 70)}}
	f.Add(mp(M{{"a", m}}), mp(M{{"b", m}, {"b", m}}), false)
	f.Fuzz(func(t *testing.T, a, b []byte, quote bool) {
		var tr Transcoder
		for _, v := range [][]byte{a, b, a} {
			want, wantClean, wantErr := AppendJSONChecked(nil, v, "")
			got, clean, err := tr.AppendJSONChecked(nil, v, "")
			if quote {
				var q []byte
				got, q, clean, err = tr.AppendJSONQuoted(nil, nil, v, "")
				if wantErr == nil && !bytes.Equal(q, AppendString(nil, want)) {
					t.Fatalf("quoted %q, want %q", q, AppendString(nil, want))
				}
			}
			if !bytes.Equal(got, want) || clean != wantClean || (err == nil) != (wantErr == nil) {
				t.Fatalf("Transcoder(%x) = %q, %v, %v; package %q, %v, %v", v, got, clean, err, want, wantClean, wantErr)
			}
		}
	})
}

// TestTranscoderMemoryOffWhenItDoesNotPay: records whose nested maps never repeat make the
// Transcoder drop its memory after one window and write maps plainly for memoOffMaps maps,
// then look again; repeating maps keep it on. The output is the package's throughout.
func TestTranscoderMemoryOffWhenItDoesNotPay(t *testing.T) {
	distinct := func(i int) []byte {
		return mp(M{{"log", "x"}, {"req", M{{"id", strings.Repeat("r", 80) + strconv.Itoa(i)}}}})
	}
	same := mp(M{{"log", "y"}, {"kubernetes", M{{"pod_name", strings.Repeat("p", 80)}}}})
	var tr Transcoder
	check := func(v []byte) {
		t.Helper()
		want, _, _ := AppendJSONChecked(nil, v, "")
		got, _, _ := tr.AppendJSONChecked(nil, v, "")
		if !bytes.Equal(got, want) {
			t.Fatalf("Transcoder gives %.120q, package %.120q", got, want)
		}
	}
	for i := 0; i < memoWindow-1; i++ {
		check(distinct(i))
	}
	if tr.off != 0 || len(tr.index) == 0 {
		t.Fatalf("before the window ends: off=%d, %d maps remembered", tr.off, len(tr.index))
	}
	check(distinct(memoWindow))
	if tr.off != memoOffMaps || len(tr.index) != 0 || len(tr.buf) != 0 {
		t.Fatalf("after a window without hits: off=%d, %d maps, %d bytes; want off=%d and nothing kept", tr.off, len(tr.index), len(tr.buf), memoOffMaps)
	}
	for i := 0; i < memoOffMaps; i++ {
		check(same)
	}
	if tr.off != 0 || len(tr.index) != 0 || tr.looks != 0 {
		t.Fatalf("while off: off=%d, %d maps, %d lookups; want it to write plainly", tr.off, len(tr.index), tr.looks)
	}
	for i := 0; i < 2*memoWindow; i++ {
		check(same)
	}
	if tr.off != 0 || len(tr.index) != 1 {
		t.Fatalf("repeating maps: off=%d, %d maps; want the memory on with the one map", tr.off, len(tr.index))
	}
}

// BenchmarkTranscoderDistinctMaps: what the memory costs when no map repeats (a request id in
// a nested map), against the package function, until it turns itself off and after.
func BenchmarkTranscoderDistinctMaps(b *testing.B) {
	recs := make([][]byte, 5*memoWindow)
	for i := range recs {
		recs[i] = mp(M{{"log", strings.Repeat("l", 200)}, {"req", M{{"id", strings.Repeat("r", 150) + strconv.Itoa(i)}, {"path", "/api/v1/items"}}}})
	}
	buf := make([]byte, 0, 1<<16)
	b.Run("Package", func(b *testing.B) {
		i := 0
		for b.Loop() {
			buf, _, _ = AppendJSONChecked(buf[:0], recs[i%len(recs)], "")
			i++
		}
	})
	b.Run("Transcoder", func(b *testing.B) {
		var tr Transcoder
		i := 0
		for b.Loop() {
			buf, _, _ = tr.AppendJSONChecked(buf[:0], recs[i%len(recs)], "")
			i++
		}
	})
}
