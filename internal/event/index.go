package event

import "math"

// indexMax is the most pairs a MapIndex remembers; bigger maps are looked up by scanning.
const indexMax = 32

// MapIndex remembers where the keys and values of one msgpack map are, so that several lookups
// in the same map (a template's $kubernetes['namespace_name'], ['container_name'] and
// ['pod_name']) read the map once instead of once per lookup. The zero value is ready; Reset it
// for each map. It holds no pointers besides the map, so it lives on the stack.
type MapIndex struct {
	m []byte
	// n is the number of pairs remembered; -1: not indexed (not a map, malformed, too big), so
	// lookups scan the map instead.
	n int
	// ents are the pairs' key [ks, ke) and value [vs, ve) spans; ks < 0: a key that is not str
	// or bin, which no lookup matches. tail is the key's last eight bytes (keyTail): Kubernetes
	// keys share prefixes (container_name, container_hash), so most keys that are not the one
	// looked up differ there and cost no string comparison.
	ents [indexMax]indexEnt
}

type indexEnt struct {
	ks, ke, vs, ve int32
	tail           uint64
}

// keyTail is the last min(8, len(k)) bytes of k as a little-endian word, zero above them.
func keyTail[T string | []byte](k T) uint64 {
	if len(k) >= 8 {
		w := k[len(k)-8:]
		return uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
			uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56
	}
	var t uint64
	for i := 0; i < len(k); i++ {
		t |= uint64(k[i]) << (8 * i)
	}
	return t
}

// Reset indexes the map m (a map Value's Raw).
func (x *MapIndex) Reset(m []byte) {
	x.m, x.n = m, -1
	if len(m) == 0 {
		return
	}
	if n, end, p := x.walk(m, 0); p == 0 && end == len(m) { // bytes after the map: leave the verdict to Lookup
		x.n = n
	}
}

// walk indexes the map at b[i:], with spans relative to i, and returns how many pairs it
// remembered (-1 when the map is too big or too long to index, or not a map) and the offset
// after the map; p reports unreadable bytes.
func (x *MapIndex) walk(b []byte, i int) (n, end int, p problem) {
	h, p := readHead(b, i)
	if p != 0 {
		return -1, i, p
	}
	if h.kind != Map || h.count > indexMax || len(b)-i > math.MaxInt32 {
		end, p = skip(b, i)
		return -1, end, p
	}
	j := h.next
	for k := 0; k < h.count; k++ {
		ks, ke := -1, -1
		if j < len(b) && b[j]-0xa0 < 0x20 { // fixstr
			ks, ke = j+1, j+1+int(b[j]&0x1f)
			if ke > len(b) {
				return -1, j, probTruncated
			}
			j = ke
		} else {
			kh, p := readHead(b, j)
			if p != 0 {
				return -1, j, p
			}
			if kh.kind == String || kh.kind == Binary {
				ks, ke, j = kh.data, kh.next, kh.next
			} else if j, p = skip(b, j); p != 0 {
				return -1, j, p
			}
		}
		v := j
		if j >= len(b) {
			return -1, j, probTruncated
		}
		if c := b[j]; c == 0xd9 && j+1 < len(b) && j+2+int(b[j+1]) <= len(b) { // str8 and fixstr inline
			j += 2 + int(b[j+1])
		} else if c-0xa0 < 0x20 && j+1+int(c&0x1f) <= len(b) {
			j += 1 + int(c&0x1f)
		} else if j, p = skip(b, j); p != 0 {
			return -1, j, p
		}
		// Field by field: building the entry first and copying it stalls on store forwarding.
		e := &x.ents[k]
		e.vs, e.ve = int32(v-i), int32(j-i)
		if ks >= 0 {
			e.ks, e.ke, e.tail = int32(ks-i), int32(ke-i), keyTail(b[ks:ke])
		} else {
			e.ks, e.ke, e.tail = -1, -1, 0
		}
	}
	return h.count, j, 0
}

// ResetLookup returns Lookup(record, []PathElem{{Key: key}}) and, when that value is a map,
// Resets x to it, reading the map once for both (Lookup has to read past it anyway to find a
// later duplicate key). Templates look up one top-level map ($kubernetes) and then keys in it.
func (x *MapIndex) ResetLookup(record []byte, key string) Value {
	x.m, x.n = nil, -1
	var j, count int
	if len(record) > 0 && record[0]&0xf0 == 0x80 { // fixmap: nearly every record
		j, count = 1, int(record[0]&0x0f)
	} else {
		h, p := readHead(record, 0)
		if p != 0 || h.kind != Map {
			return Value{}
		}
		j, count = h.next, h.count
	}
	found, foundEnd, indexed, n := -1, -1, -1, -1
	for k := 0; k < count; k++ {
		ks, ke, v, ok := mapKey(record, j)
		if !ok {
			return Value{}
		}
		j = v
		match := ke-ks == len(key) && ks >= 0 && string(record[ks:ke]) == key
		if match && isMap(record[j]) {
			var p problem
			if n, j, p = x.walk(record, j); p != 0 {
				return Value{}
			}
			indexed = v
		} else if j, ok = skipValue(record, j); !ok {
			return Value{}
		}
		if match {
			found, foundEnd = v, j
		}
	}
	if found < 0 {
		return Value{}
	}
	if c := record[found]; c-0xa0 < 0x20 { // fixstr
		return Value{Kind: String, Bytes: record[found+1 : foundEnd : foundEnd], Raw: record[found:foundEnd:foundEnd]}
	}
	h, _ := readHead(record, found) // read once already: cannot fail
	v := makeValue(record, h, found, foundEnd)
	if v.Kind == Map {
		x.m = v.Raw
		if indexed == found {
			x.n = n
		}
	}
	return v
}

// Lookup returns Lookup(m, path) for the map of the last Reset.
func (x *MapIndex) Lookup(path []PathElem) Value {
	if x.n < 0 || len(path) == 0 || path[0].IsIndex {
		return Lookup(x.m, path)
	}
	key := path[0].Key
	tail := keyTail(key)
	for k := x.n - 1; k >= 0; k-- { // the last duplicate wins
		e := &x.ents[k]
		if e.tail != tail || int(e.ke-e.ks) != len(key) || e.ks < 0 || len(key) > 8 && string(x.m[e.ks:e.ke]) != key {
			continue
		}
		v := x.m[e.vs:e.ve:e.ve]
		if len(path) > 1 {
			return Lookup(v, path[1:])
		}
		if c := v[0]; c-0xa0 < 0x20 { // fixstr
			return Value{Kind: String, Bytes: v[1:], Raw: v}
		}
		h, _ := readHead(v, 0) // read by Reset already: cannot fail
		return makeValue(v, h, 0, len(v))
	}
	return Value{}
}
