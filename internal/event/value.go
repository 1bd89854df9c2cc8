package event

import (
	"math"
	"strconv"
)

// Kind is the msgpack type of a Value.
type Kind uint8

// Kinds of values. Missing is the zero value: an absent key or an unreadable value.
const (
	Missing Kind = iota
	Nil
	Bool
	Int // any integer that fits int64, whatever its msgpack format
	Uint
	Float
	String
	Binary
	Array
	Map
	Ext
)

var kindNames = [...]string{"missing", "nil", "bool", "int", "uint", "float", "string", "binary", "array", "map", "ext"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Value is one msgpack value read in place; Bytes and Raw alias the record.
//
// Int holds every integer that fits int64 (Uint then holds it too when it is not negative);
// Kind Uint is only for integers above math.MaxInt64. Float holds float32 and float64 values.
// Bytes is the payload of String, Binary and Ext (Int is then the ext type). Uint is the element
// count of Array and Map. Raw is the whole encoded value, for AppendJSON.
type Value struct {
	Kind  Kind
	Bytes []byte
	Int   int64
	Uint  uint64
	Float float64
	Bool  bool
	Raw   []byte
}

// AppendText appends the text a template renders for a scalar: strings and binary as their
// bytes, integers in decimal, floats in the shortest form that reads back the same value (1.5,
// 1e+21), booleans true/false. Maps, arrays, nil, ext and missing values have no text: it
// returns dst unchanged and false, so the caller falls back.
func (v Value) AppendText(dst []byte) ([]byte, bool) {
	switch v.Kind {
	case String, Binary:
		return append(dst, v.Bytes...), true
	case Int:
		return strconv.AppendInt(dst, v.Int, 10), true
	case Uint:
		return strconv.AppendUint(dst, v.Uint, 10), true
	case Float:
		bits := 64
		if len(v.Raw) > 0 && v.Raw[0] == 0xca {
			bits = 32 // float32 reads back as float32: 0.1 stays 0.1
		}
		return strconv.AppendFloat(dst, v.Float, 'g', -1, bits), true
	case Bool:
		if v.Bool {
			return append(dst, "true"...), true
		}
		return append(dst, "false"...), true
	}
	return dst, false
}

// PathElem is one step of a Lookup path: a map key, or an array index when IsIndex.
type PathElem struct {
	Key     string
	Index   int
	IsIndex bool
}

// Lookup walks path through the msgpack value record (normally a record map) and returns the
// value it reaches, reading only the bytes on the way. Keys match str and bin map keys byte for
// byte; when a map repeats a key the last one wins, as in the JSON documents. Anything absent,
// a step into the wrong kind of value, or unreadable bytes give Kind Missing.
func Lookup(record []byte, path []PathElem) Value {
	i, end := 0, -1 // end: where the value at i ends, when a map scan found it (-1: unknown)
	for _, pe := range path {
		if pe.IsIndex {
			h, p := readHead(record, i)
			if p != 0 || h.kind != Array || pe.Index < 0 || pe.Index >= h.count {
				return Value{}
			}
			j := h.next
			for k := 0; k < pe.Index; k++ {
				if j, p = skip(record, j); p != 0 {
					return Value{}
				}
			}
			i, end = j, -1
			continue
		}
		var j, count int
		if i < len(record) && record[i]&0xf0 == 0x80 { // fixmap: nearly every map
			// No "could it fit" check: at most 15 pairs, and reading past the end fails below.
			j, count = i+1, int(record[i]&0x0f)
		} else {
			h, p := readHead(record, i)
			if p != 0 || h.kind != Map {
				return Value{}
			}
			j, count = h.next, h.count
		}
		found, foundEnd := -1, -1
		for k := 0; k < count; k++ {
			ks, ke, v, ok := mapKey(record, j)
			if !ok {
				return Value{}
			}
			if j, ok = skipValue(record, v); !ok {
				return Value{}
			}
			if ke-ks == len(pe.Key) && ks >= 0 && string(record[ks:ke]) == pe.Key {
				found, foundEnd = v, j
			}
		}
		if found < 0 {
			return Value{}
		}
		i, end = found, foundEnd
	}
	if end < 0 {
		v, _ := valueAt(record, i)
		return v
	}
	if c := record[i]; c-0xa0 < 0x20 { // fixstr: what templates read most
		return Value{Kind: String, Bytes: record[i+1 : end : end], Raw: record[i:end:end]}
	}
	h, _ := readHead(record, i) // read once already: cannot fail
	return makeValue(record, h, i, end)
}

// valueAt reads the complete value at b[i:] and returns it with the offset after it.
func valueAt(b []byte, i int) (Value, int) {
	h, p := readHead(b, i)
	if p != 0 {
		return Value{}, i
	}
	end := h.next
	if h.kind == Array || h.kind == Map {
		if end, p = skip(b, i); p != 0 {
			return Value{}, i
		}
	}
	return makeValue(b, h, i, end), end
}

// makeValue builds the Value of the head h read at b[i:], which ends at end.
func makeValue(b []byte, h head, i, end int) Value {
	v := Value{Kind: h.kind, Raw: b[i:end:end]}
	switch h.kind {
	case Bool:
		v.Bool = h.u == 1
	case Int:
		v.Int = int64(h.u)
		if v.Int >= 0 {
			v.Uint = h.u
		}
	case Uint:
		v.Uint = h.u
	case Float:
		v.Float = math.Float64frombits(h.u)
	case String, Binary:
		v.Bytes = b[h.data:h.next:h.next]
	case Ext:
		v.Bytes = b[h.data:h.next:h.next]
		v.Int = int64(h.ext)
	case Array, Map:
		v.Uint = uint64(h.count)
	}
	return v
}

// mapKey reads the map key at record[j:]: its text record[ks:ke] if it is a str or bin (else
// ks = ke = -1) and the offset of its value, which lies inside record when ok.
func mapKey(record []byte, j int) (ks, ke, v int, ok bool) {
	ks, ke = -1, -1
	if j < len(record) && record[j]-0xa0 < 0x20 { // fixstr
		ks, ke = j+1, j+1+int(record[j]&0x1f)
		if ke > len(record) {
			return 0, 0, 0, false
		}
		j = ke
	} else {
		kh, p := readHead(record, j)
		if p != 0 {
			return 0, 0, 0, false
		}
		if kh.kind == String || kh.kind == Binary {
			ks, ke, j = kh.data, kh.next, kh.next
		} else if j, p = skip(record, j); p != 0 {
			return 0, 0, 0, false
		}
	}
	return ks, ke, j, j < len(record)
}

// skipValue returns the offset after the value at record[j:] (j < len(record)). Most values
// are short strings or small ints: skipped without a call.
func skipValue(record []byte, j int) (int, bool) {
	if c := record[j]; c-0xa0 < 0x20 && j+1+int(c&0x1f) <= len(record) {
		return j + 1 + int(c&0x1f), true
	} else if c == 0xd9 && j+1 < len(record) && j+2+int(record[j+1]) <= len(record) {
		return j + 2 + int(record[j+1]), true
	} else if c <= 0x7f {
		return j + 1, true
	}
	j, p := skip(record, j)
	return j, p == 0
}
