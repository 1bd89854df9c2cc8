package event

import (
	"encoding/binary"
	"math"
	"strconv"
)

// problem is why bytes could not be read; 0 means none. Kept as a small code so the hot paths
// return no error values; it becomes a *MalformedError only when reported.
type problem uint8

const (
	probNone problem = iota
	probTruncated
	probInvalidByte
	probEventNotArray
	probEventSize
	probHeaderSize
	probBadTime
	probRecordNotMap
	probTooDeep
	probTrailing
	probNotMap
)

var problemText = [...]string{
	probNone:          "no problem",
	probTruncated:     "truncated msgpack",
	probInvalidByte:   "invalid msgpack byte 0xc1",
	probEventNotArray: "event is not an array",
	probEventSize:     "event array does not have 2 elements",
	probHeaderSize:    "event header array is empty",
	probBadTime:       "event timestamp is not a time",
	probRecordNotMap:  "event record is not a map",
	probTooDeep:       "nesting deeper than 512 levels",
	probTrailing:      "bytes after the value",
	probNotMap:        "value is not a map",
}

// MalformedError says where and why bytes are not a readable msgpack value or Fluent Bit event.
type MalformedError struct {
	Offset int    // byte offset of the problem in the chunk (Decode) or value (AppendJSON)
	Reason string // what was wrong
}

func (e *MalformedError) Error() string {
	return "malformed msgpack at byte " + strconv.Itoa(e.Offset) + ": " + e.Reason
}

func (p problem) at(off int) error { return &MalformedError{Offset: off, Reason: problemText[p]} }

// head is one decoded msgpack header. Scalars carry their value; str, bin and ext carry their
// payload span [data, next); arrays and maps carry their element count and next is the offset of
// their first element.
type head struct {
	kind  Kind
	ext   int8   // ext type
	u     uint64 // Int: int64 bits; Uint: value; Float: float64 bits; Bool: 0 or 1
	count int    // Array: elements; Map: pairs
	data  int    // start of the payload (str, bin, ext) or of the first element (array, map)
	next  int    // offset after header and payload
	f32   bool   // Float was encoded as float32
}

// readHead decodes the header at b[i:]. It checks that the payload of str, bin and ext fits in b
// and that an array or map could fit (each element takes at least one byte), so counts taken
// from hostile bytes never drive long loops.
func readHead(b []byte, i int) (h head, p problem) {
	if i < 0 || i >= len(b) {
		return h, probTruncated
	}
	c := b[i]
	switch {
	case c <= 0x7f:
		return head{kind: Int, u: uint64(c), data: i + 1, next: i + 1}, 0
	case c >= 0xe0:
		return head{kind: Int, u: uint64(int64(int8(c))), data: i + 1, next: i + 1}, 0
	case c <= 0x8f:
		return container(b, i, Map, int(c&0x0f), 1)
	case c <= 0x9f:
		return container(b, i, Array, int(c&0x0f), 1)
	case c <= 0xbf:
		return payload(b, i, String, int(c&0x1f), 1)
	}
	rest := len(b) - i
	switch c {
	case 0xc0:
		return head{kind: Nil, data: i + 1, next: i + 1}, 0
	case 0xc1:
		return h, probInvalidByte
	case 0xc2, 0xc3:
		return head{kind: Bool, u: uint64(c & 1), data: i + 1, next: i + 1}, 0
	case 0xc4, 0xc5, 0xc6: // bin 8/16/32
		n, hl, ok := length(b, i, c-0xc4)
		if !ok {
			return h, probTruncated
		}
		return payload(b, i, Binary, n, hl)
	case 0xc7, 0xc8, 0xc9: // ext 8/16/32: length, then type
		n, hl, ok := length(b, i, c-0xc7)
		if !ok || rest < hl+1 {
			return h, probTruncated
		}
		h, p = payload(b, i, Ext, n, hl+1)
		h.ext = int8(b[i+hl])
		return h, p
	case 0xca:
		if rest < 5 {
			return h, probTruncated
		}
		f := math.Float32frombits(binary.BigEndian.Uint32(b[i+1:]))
		return head{kind: Float, u: math.Float64bits(float64(f)), f32: true, data: i + 5, next: i + 5}, 0
	case 0xcb:
		if rest < 9 {
			return h, probTruncated
		}
		return head{kind: Float, u: binary.BigEndian.Uint64(b[i+1:]), data: i + 9, next: i + 9}, 0
	case 0xcc, 0xcd, 0xce, 0xcf: // uint 8/16/32/64
		w := 1 << (c - 0xcc)
		if rest < 1+w {
			return h, probTruncated
		}
		v := beUint(b[i+1:], w)
		k := Int
		if v > math.MaxInt64 {
			k = Uint
		}
		return head{kind: k, u: v, data: i + 1 + w, next: i + 1 + w}, 0
	case 0xd0, 0xd1, 0xd2, 0xd3: // int 8/16/32/64
		w := 1 << (c - 0xd0)
		if rest < 1+w {
			return h, probTruncated
		}
		v := beUint(b[i+1:], w)
		shift := 64 - 8*w
		return head{kind: Int, u: uint64(int64(v<<shift) >> shift), data: i + 1 + w, next: i + 1 + w}, 0
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1/2/4/8/16
		if rest < 2 {
			return h, probTruncated
		}
		h, p = payload(b, i, Ext, 1<<(c-0xd4), 2)
		h.ext = int8(b[i+1])
		return h, p
	case 0xd9, 0xda, 0xdb: // str 8/16/32
		n, hl, ok := length(b, i, c-0xd9)
		if !ok {
			return h, probTruncated
		}
		return payload(b, i, String, n, hl)
	case 0xdc, 0xdd: // array 16/32
		n, hl, ok := length(b, i, c-0xdc+1)
		if !ok {
			return h, probTruncated
		}
		return container(b, i, Array, n, hl)
	default: // 0xde, 0xdf: map 16/32
		n, hl, ok := length(b, i, c-0xde+1)
		if !ok {
			return h, probTruncated
		}
		return container(b, i, Map, n, hl)
	}
}

// length reads the big-endian length of width 1<<w bytes after the type byte at b[i].
func length(b []byte, i int, w byte) (n, hl int, ok bool) {
	bw := 1 << w
	if len(b)-i < 1+bw {
		return 0, 0, false
	}
	return int(beUint(b[i+1:], bw)), 1 + bw, true
}

func beUint(b []byte, w int) uint64 {
	switch w {
	case 1:
		return uint64(b[0])
	case 2:
		return uint64(binary.BigEndian.Uint16(b))
	case 4:
		return uint64(binary.BigEndian.Uint32(b))
	default:
		return binary.BigEndian.Uint64(b)
	}
}

func payload(b []byte, i int, k Kind, n, hl int) (head, problem) {
	if n < 0 || len(b)-i-hl < n {
		return head{}, probTruncated
	}
	return head{kind: k, data: i + hl, next: i + hl + n}, 0
}

func container(b []byte, i int, k Kind, n, hl int) (head, problem) {
	min := n
	if k == Map {
		min = 2 * n
	}
	if n < 0 || len(b)-i-hl < min {
		return head{}, probTruncated
	}
	return head{kind: k, count: n, data: i + hl, next: i + hl}, 0
}

// skip returns the offset after the complete value at b[i:], or where it could not be read. It
// walks nested values with a counter instead of recursion, so any nesting depth is safe. The
// formats that fill most records (small ints, short strings, str8, small maps and arrays) are
// decoded inline.
func skip(b []byte, i int) (int, problem) {
	pending := 1
	for pending > 0 {
		if i >= len(b) {
			return i, probTruncated
		}
		switch c := b[i]; {
		case c-0xa0 < 0x20: // fixstr, the most common by far (keys)
			n := i + 1 + int(c&0x1f)
			if n > len(b) {
				return i, probTruncated
			}
			i = n
		case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
			i++
		case c <= 0x8f:
			pending += 2 * int(c&0x0f)
			i++
		case c <= 0x9f:
			pending += int(c & 0x0f)
			i++
		case c == 0xd9:
			if i+1 >= len(b) || i+2+int(b[i+1]) > len(b) {
				return i, probTruncated
			}
			i += 2 + int(b[i+1])
		default:
			h, p := readHead(b, i)
			if p != 0 {
				return i, p
			}
			switch h.kind {
			case Array:
				pending += h.count
			case Map:
				pending += 2 * h.count
			}
			i = h.next
		}
		pending--
	}
	return i, 0
}
