package event

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"testing"
	"time"
	"unsafe"

	"github.com/cwos/cloudwatch-opensearch/internal/chunkgen"
)

var t0 = time.Date(2023, 2, 22, 1, 2, 3, 456789012, time.UTC)

// ev2 is a v2 event with a fixext8 time and record {"i": i}.
func ev2(i int) []byte { return chunkgen.AppendV2(nil, t0, nil, gm(M{{"i", i}})) }

// extTime is a Fluent Bit event time in the ext8 (not fixext8) form.
func extTime(sec, nsec uint32) []byte {
	b := []byte{0xc7, 8, 0}
	b = binary.BigEndian.AppendUint32(b, sec)
	return binary.BigEndian.AppendUint32(b, nsec)
}

// event builds [header, record] from raw pieces.
func event(header, record []byte) []byte { return cat([]byte{0x92}, header, record) }

func TestDecode(t *testing.T) {
	rec := mp(M{{"log", "x"}})
	v2hdr := func(ts []byte) []byte { return cat([]byte{0x92}, ts, []byte{0x80}) }
	msgpackTS8 := func(sec int64, nsec uint32) []byte {
		return binary.BigEndian.AppendUint64([]byte{0xd7, 0xff}, uint64(nsec)<<34|uint64(sec))
	}
	msgpackTS12 := func(sec int64, nsec uint32) []byte {
		b := binary.BigEndian.AppendUint32([]byte{0xc7, 12, 0xff}, nsec)
		return binary.BigEndian.AppendUint64(b, uint64(sec))
	}
	type want struct {
		times              []time.Time
		markers, malformed int
		errOffset          int // -1: no error
	}
	tests := []struct {
		name  string
		chunk []byte
		want  want
	}{
		{"empty chunk", nil, want{nil, 0, 0, -1}},
		{"v2 fixext8", chunkgen.AppendV2(nil, t0, nil, gm(M{{"log", "x"}})), want{[]time.Time{t0}, 0, 0, -1}},
		{"v2 with metadata", chunkgen.AppendV2(nil, t0, map[string]any{"otlp": gm(M{{"a", 1}})}, gm(M{{"log", "x"}})), want{[]time.Time{t0}, 0, 0, -1}},
		{"v2 ext8 time", event(v2hdr(extTime(1677027723, 5)), rec), want{[]time.Time{time.Unix(1677027723, 5).UTC()}, 0, 0, -1}},
		{"v2 header without metadata", event(cat([]byte{0x91}, extTime(10, 0)), rec), want{[]time.Time{time.Unix(10, 0).UTC()}, 0, 0, -1}},
		{"legacy fixext8", chunkgen.AppendLegacy(nil, t0, chunkgen.TimeExt, gm(M{{"log", "x"}})), want{[]time.Time{t0}, 0, 0, -1}},
		{"legacy ext8", chunkgen.AppendLegacy(nil, t0, chunkgen.TimeExt8, gm(M{{"log", "x"}})), want{[]time.Time{t0}, 0, 0, -1}},
		{"legacy int", chunkgen.AppendLegacy(nil, t0, chunkgen.TimeInt, gm(M{{"log", "x"}})), want{[]time.Time{t0.Truncate(time.Second)}, 0, 0, -1}},
		{"legacy uint32 int", event(cat([]byte{0xce}, binary.BigEndian.AppendUint32(nil, 1677027723)), rec), want{[]time.Time{time.Unix(1677027723, 0).UTC()}, 0, 0, -1}},
		{"legacy float", event(mp(1677027723.25), rec), want{[]time.Time{time.Unix(1677027723, 250000000).UTC()}, 0, 0, -1}},
		{"legacy float32", event(mp(float32(1.5)), rec), want{[]time.Time{time.Unix(1, 500000000).UTC()}, 0, 0, -1}},
		{"msgpack timestamp 32", event(cat([]byte{0xd6, 0xff}, binary.BigEndian.AppendUint32(nil, 1677027723)), rec), want{[]time.Time{time.Unix(1677027723, 0).UTC()}, 0, 0, -1}},
		{"msgpack timestamp 64", event(msgpackTS8(1677027723, 999999999), rec), want{[]time.Time{time.Unix(1677027723, 999999999).UTC()}, 0, 0, -1}},
		{"msgpack timestamp 96", event(msgpackTS12(-5, 7), rec), want{[]time.Time{time.Unix(-5, 7).UTC()}, 0, 0, -1}},
		{"group markers skipped", cat(
			chunkgen.AppendGroupStart(nil, map[string]any{"m": 1}, gm(M{{"resource", "r"}})),
			ev2(1), ev2(2),
			chunkgen.AppendGroupEnd(nil),
		), want{[]time.Time{t0, t0}, 2, 0, -1}},
		{"group markers as negative ints", cat(
			event(cat([]byte{0x92, 0xff}, mp(map[string]any{})), mp(map[string]any{})),
			ev2(1),
			event(cat([]byte{0x92, 0xfe}, mp(map[string]any{})), mp(map[string]any{})),
		), want{[]time.Time{t0}, 2, 0, -1}},
		{"group markers as uint32 seconds", event(v2hdr(mp(uint32(0xFFFFFFFF))), rec), want{nil, 1, 0, -1}},
		{"v2 and legacy mixed", cat(ev2(1), chunkgen.AppendLegacy(nil, t0, chunkgen.TimeInt, gm(M{{"i", 2}})), ev2(3)),
			want{[]time.Time{t0, t0.Truncate(time.Second), t0}, 0, 0, -1}},
		{"record not a map is skipped", cat(ev2(1), event(v2hdr(extTime(1, 0)), mp("a string")), ev2(3)),
			want{[]time.Time{t0, t0}, 0, 1, len(ev2(1)) + 1 + 1 + 11 + 1}},
		{"record nil is skipped", cat(event(v2hdr(extTime(1, 0)), mp(nil)), ev2(3)), want{[]time.Time{t0}, 0, 1, 14}},
		{"string timestamp is skipped", cat(event(mp("2023-02-22"), rec), ev2(2)), want{[]time.Time{t0}, 0, 1, 1}},
		{"negative timestamp is skipped", cat(event(mp(-5), rec), ev2(2)), want{[]time.Time{t0}, 0, 1, 1}},
		{"NaN timestamp is skipped", cat(event(mp(math.NaN()), rec), ev2(2)), want{[]time.Time{t0}, 0, 1, 1}},
		{"ext of another type is skipped", cat(event(cat([]byte{0xd7, 1}, make([]byte, 8)), rec), ev2(2)), want{[]time.Time{t0}, 0, 1, 1}},
		{"ext 0 of 4 bytes is skipped", cat(event([]byte{0xd6, 0, 1, 2, 3, 4}, rec), ev2(2)), want{[]time.Time{t0}, 0, 1, 1}},
		{"event not an array is skipped", cat(rec, ev2(2)), want{[]time.Time{t0}, 0, 1, 0}},
		{"event of 3 elements is skipped", cat([]byte{0x93}, extTime(1, 0), rec, rec, ev2(2)), want{[]time.Time{t0}, 0, 1, 0}},
		{"empty header array is skipped", cat(event([]byte{0x90}, rec), ev2(2)), want{[]time.Time{t0}, 0, 1, 1}},
		{"problems are all counted, the first kept", cat(ev2(1), rec, event(mp("t"), rec), ev2(4)),
			want{[]time.Time{t0, t0}, 0, 2, len(ev2(1))}},
		{"truncated last event ends the decode", cat(ev2(1), ev2(2)[:10]), want{[]time.Time{t0}, 0, 1, len(ev2(1)) + 2}},
		{"unreadable byte ends the decode", cat(ev2(1), []byte{0x92, 0xc1}, ev2(3)), want{[]time.Time{t0}, 0, 1, len(ev2(1)) + 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, st := Decode(tt.chunk, nil)
			if st.Events != len(evs) || len(evs) != len(tt.want.times) {
				t.Fatalf("events = %d (stats %d), want %d", len(evs), st.Events, len(tt.want.times))
			}
			for i, ev := range evs {
				if !ev.Time.Equal(tt.want.times[i]) || ev.Time.Location() != time.UTC {
					t.Errorf("event %d time = %v, want %v UTC", i, ev.Time, tt.want.times[i])
				}
				if h, _ := readHead(ev.Record, 0); h.kind != Map {
					t.Errorf("event %d record is %v", i, h.kind)
				}
				if end, p := skip(ev.Record, 0); p != 0 || end != len(ev.Record) {
					t.Errorf("event %d record is not one complete value", i)
				}
			}
			if st.Markers != tt.want.markers || st.Malformed != tt.want.malformed {
				t.Errorf("markers, malformed = %d, %d; want %d, %d", st.Markers, st.Malformed, tt.want.markers, tt.want.malformed)
			}
			var me *MalformedError
			switch {
			case tt.want.errOffset < 0 && st.Err != nil:
				t.Errorf("unexpected error %v", st.Err)
			case tt.want.errOffset >= 0 && !errors.As(st.Err, &me):
				t.Errorf("error = %v, want a *MalformedError", st.Err)
			case tt.want.errOffset >= 0 && me.Offset != tt.want.errOffset:
				t.Errorf("error offset = %d (%v), want %d", me.Offset, me, tt.want.errOffset)
			}
		})
	}
}

func TestDecodeRecordBytes(t *testing.T) {
	chunk, gen := chunkgen.K8sChunk(7, 50, chunkgen.Options{Namespaces: 3, Containers: 2, Days: 2, GroupEvery: 20})
	evs, st := Decode(chunk, nil)
	if st.Events != 50 || st.Markers != 6 || st.Malformed != 0 || st.Err != nil {
		t.Fatalf("stats = %+v", st)
	}
	for i, ev := range evs {
		if !bytes.Equal(ev.Record, mp(gen[i].Record)) {
			t.Fatalf("record %d differs from what was written", i)
		}
		if !ev.Time.Equal(gen[i].Time) {
			t.Errorf("record %d time %v, want %v", i, ev.Time, gen[i].Time)
		}
		if !within(ev.Record, chunk) {
			t.Errorf("record %d does not alias the chunk", i)
		}
	}
}

// within reports whether sub lies inside buf's memory.
func within(sub, buf []byte) bool {
	if len(sub) == 0 {
		return true
	}
	s, b := uintptr(unsafe.Pointer(unsafe.SliceData(sub))), uintptr(unsafe.Pointer(unsafe.SliceData(buf)))
	return s >= b && s+uintptr(len(sub)) <= b+uintptr(len(buf))
}

func TestDecodeReusesDst(t *testing.T) {
	chunk, _ := chunkgen.K8sChunk(3, 100, chunkgen.Options{GroupEvery: 10})
	chunk = cat(chunk, mp("junk"), ev2(1)) // a malformed event in the middle costs nothing either
	dst := make([]Event, 0, 200)
	var st Stats
	allocs := testing.AllocsPerRun(20, func() {
		dst, st = Decode(chunk, dst)
	})
	if allocs > 1 { // the one *MalformedError
		t.Errorf("Decode allocated %v times per chunk", allocs)
	}
	if st.Events != 101 || st.Malformed != 1 {
		t.Errorf("stats %+v", st)
	}
	clean, _ := chunkgen.K8sChunk(3, 100, chunkgen.Options{})
	if allocs := testing.AllocsPerRun(20, func() { dst, st = Decode(clean, dst) }); allocs != 0 {
		t.Errorf("Decode of a clean chunk allocated %v times", allocs)
	}
}

func FuzzDecode(f *testing.F) {
	small, _ := chunkgen.K8sChunk(1, 3, chunkgen.Options{GroupEvery: 2})
	legacy, _ := chunkgen.K8sChunk(2, 2, chunkgen.Options{Legacy: true, TimeForm: chunkgen.TimeFloat})
	f.Add(small)
	f.Add(legacy)
	f.Add(cat(ev2(1), mp("junk"), event(mp("t"), mp(1)), ev2(2)))
	f.Add(event(mp(-1), []byte{0xdf, 0xff, 0xff, 0xff, 0xff}))
	f.Add([]byte{0x92, 0x92, 0xd7, 0x00})
	f.Fuzz(func(t *testing.T, chunk []byte) {
		evs, st := Decode(chunk, nil)
		if st.Events != len(evs) || st.Events < 0 || st.Markers < 0 || st.Malformed < 0 {
			t.Fatalf("stats %+v for %d events", st, len(evs))
		}
		if (st.Err == nil) != (st.Malformed == 0) {
			t.Fatalf("Err %v with %d malformed", st.Err, st.Malformed)
		}
		for i, ev := range evs {
			if !within(ev.Record, chunk) {
				t.Fatalf("record %d is outside the chunk", i)
			}
			if h, _ := readHead(ev.Record, 0); h.kind != Map {
				t.Fatalf("record %d is a %v", i, h.kind)
			}
			if end, p := skip(ev.Record, 0); p != 0 || end != len(ev.Record) {
				t.Fatalf("record %d is not one complete map", i)
			}
			if ev.Time.Location() != time.UTC {
				t.Fatalf("record %d time not UTC", i)
			}
		}
	})
}
