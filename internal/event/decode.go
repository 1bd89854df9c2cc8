package event

import (
	"encoding/binary"
	"math"
	"time"
)

// Stats counts what Decode met in a chunk.
type Stats struct {
	Events    int   // records returned
	Markers   int   // group start/end markers skipped
	Malformed int   // events skipped because they could not be read
	Err       error // the first problem, a *MalformedError with its byte offset; nil if none
}

// Group marker seconds (FLB_LOG_EVENT_GROUP_START -1 and GROUP_END -2 written as uint32).
const (
	groupStartSec = 0xFFFFFFFF
	groupEndSec   = 0xFFFFFFFE
)

// Decode appends the records of a Fluent Bit chunk to dst[:0] and returns it. It accepts v2
// events [[ts, meta], record] and legacy events [ts, record]; ts is ext type 0 (or the msgpack
// timestamp ext -1), a non-negative integer or a float of seconds. Group markers are skipped.
//
// Malformed input never stops the good records around it: an event of the wrong shape, with a
// bad timestamp or a record that is not a map is skipped and counted, and decoding goes on with
// the next event. Bytes that cannot be read as msgpack at all (truncated, or the never-used byte
// 0xc1) hide where the next event starts, so they end the decode. Records alias chunk.
func Decode(chunk []byte, dst []Event) ([]Event, Stats) {
	dst = dst[:0]
	var st Stats
	bad := func(p problem, off int) {
		st.Malformed++
		if st.Err == nil {
			st.Err = p.at(off)
		}
	}
	for off := 0; off < len(chunk); {
		ev, end, marker, p, at := decodeEvent(chunk, off)
		if end < 0 { // unreadable: where the next event starts is unknown
			bad(p, at)
			break
		}
		switch {
		case p != 0:
			bad(p, at)
		case marker:
			st.Markers++
		default:
			dst = append(dst, ev)
		}
		off = end
	}
	st.Events = len(dst)
	return dst, st
}

// decodeEvent reads the event at b[off:] and returns the offset after it. A problem with a
// non-negative end means the event is skipped but the next one can be read; end < 0 means the
// bytes cannot be read. The usual shape is read in one pass: each part is skipped only once.
func decodeEvent(b []byte, off int) (ev Event, end int, marker bool, p problem, at int) {
	h, p := readHead(b, off)
	if p != 0 {
		return ev, -1, false, p, off
	}
	if h.kind != Array || h.count != 2 {
		end, p := skip(b, off)
		if p != 0 {
			return ev, -1, false, p, end
		}
		if h.kind != Array {
			return ev, end, false, probEventNotArray, off
		}
		return ev, end, false, probEventSize, off
	}
	tsOff := h.next
	recOff, p := skip(b, tsOff)
	if p != 0 {
		return ev, -1, false, p, recOff
	}
	end, p = skip(b, recOff)
	if p != 0 {
		return ev, -1, false, p, end
	}
	if th, _ := readHead(b, tsOff); th.kind == Array { // v2 header [ts, meta]; meta is not needed
		if th.count < 1 {
			return ev, end, false, probHeaderSize, tsOff
		}
		tsOff = th.next
	}
	sec, nsec, ok := timestamp(b, tsOff)
	if !ok {
		return ev, end, false, probBadTime, tsOff
	}
	if sec == groupStartSec || sec == groupEndSec {
		return ev, end, true, 0, 0
	}
	if b[recOff]&0xf0 != 0x80 && b[recOff] != 0xde && b[recOff] != 0xdf {
		return ev, end, false, probRecordNotMap, recOff
	}
	ev.Time = time.Unix(sec, nsec).UTC()
	ev.Record = b[recOff:end:end]
	return ev, end, false, 0, 0
}

// timestamp reads an event time. Negative integers -1 and -2 (and floats -1.0, -2.0) are the
// group markers of the v2 encoding and come back as their uint32 seconds; other negative times
// are bad. Nanoseconds of 1e9 or more are normalized by time.Unix rather than rejected.
func timestamp(b []byte, i int) (sec, nsec int64, ok bool) {
	h, p := readHead(b, i)
	if p != 0 {
		return 0, 0, false
	}
	switch h.kind {
	case Ext:
		d := b[h.data:h.next]
		switch {
		case h.ext == 0 && len(d) == 8: // Fluent Bit event time
			return int64(binary.BigEndian.Uint32(d)), int64(binary.BigEndian.Uint32(d[4:])), true
		case h.ext == -1:
			return msgpackTime(d)
		}
		return 0, 0, false
	case Int:
		v := int64(h.u)
		switch {
		case v == -1:
			return groupStartSec, 0, true
		case v == -2:
			return groupEndSec, 0, true
		case v < 0:
			return 0, 0, false
		}
		return v, 0, true
	case Float:
		f := math.Float64frombits(h.u)
		switch {
		case f == -1:
			return groupStartSec, 0, true
		case f == -2:
			return groupEndSec, 0, true
		case !(f >= 0 && f < 1<<62): // also rejects NaN
			return 0, 0, false
		}
		s, frac := math.Modf(f)
		ns := int64(math.Round(frac * 1e9))
		return int64(s), ns, true
	}
	return 0, 0, false
}

// msgpackTime reads the payload of the msgpack timestamp extension (type -1).
func msgpackTime(d []byte) (sec, nsec int64, ok bool) {
	switch len(d) {
	case 4:
		return int64(binary.BigEndian.Uint32(d)), 0, true
	case 8:
		v := binary.BigEndian.Uint64(d)
		return int64(v & (1<<34 - 1)), int64(v >> 34), true
	case 12:
		return int64(binary.BigEndian.Uint64(d[4:])), int64(binary.BigEndian.Uint32(d)), true
	}
	return 0, 0, false
}
