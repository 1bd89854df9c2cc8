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
	// or bin, which no lookup matches.
	ents [indexMax]struct{ ks, ke, vs, ve int32 }
}

// Reset indexes the map m (a map Value's Raw).
func (x *MapIndex) Reset(m []byte) {
	x.m, x.n = m, -1
	if len(m) > math.MaxInt32 || len(m) == 0 {
		return
	}
	h, p := readHead(m, 0)
	if p != 0 || h.kind != Map || h.count > indexMax {
		return
	}
	j := h.next
	for k := 0; k < h.count; k++ {
		ks, ke := -1, -1
		if j < len(m) && m[j]-0xa0 < 0x20 { // fixstr
			ks, ke = j+1, j+1+int(m[j]&0x1f)
			if ke > len(m) {
				return
			}
			j = ke
		} else {
			kh, p := readHead(m, j)
			if p != 0 {
				return
			}
			if kh.kind == String || kh.kind == Binary {
				ks, ke, j = kh.data, kh.next, kh.next
			} else if j, p = skip(m, j); p != 0 {
				return
			}
		}
		v := j
		if j, p = skip(m, j); p != 0 {
			return
		}
		x.ents[k] = struct{ ks, ke, vs, ve int32 }{int32(ks), int32(ke), int32(v), int32(j)}
	}
	if j != len(m) {
		return // bytes after the map: leave the verdict to Lookup
	}
	x.n = h.count
}

// Lookup returns Lookup(m, path) for the map of the last Reset.
func (x *MapIndex) Lookup(path []PathElem) Value {
	if x.n < 0 || len(path) == 0 || path[0].IsIndex {
		return Lookup(x.m, path)
	}
	key := path[0].Key
	for k := x.n - 1; k >= 0; k-- { // the last duplicate wins
		e := &x.ents[k]
		if int(e.ke-e.ks) != len(key) || e.ks < 0 || string(x.m[e.ks:e.ke]) != key {
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
