package event

import (
	"bytes"
	"encoding/binary"
	"hash/maphash"
	"math"
	"math/bits"
	"strconv"
	"sync"
	"time"
)

// maxDepth bounds the nesting of maps and arrays AppendJSON writes, so hostile records end in
// an error instead of a deep recursion.
const maxDepth = 512

// linearPairs is the map size up to which duplicate keys are found by comparing hashes with
// every earlier key; bigger maps use a hash index so a huge map stays linear.
const linearPairs = 16

// AppendJSON appends the JSON form of one msgpack value (normally a record map) to dst, by
// SPEC.md "Documents":
//   - str and bin become strings, escaped by AppendString: per RFC 8259 (", \ and control
//     characters; U+2028 and U+2029 too, for JavaScript readers; <, > and & stay raw);
//     invalid UTF-8 becomes U+FFFD;
//   - when a map repeats a key, the last one wins, at every level, and the output never
//     repeats a key (OpenSearch rejects such documents); keys that are not strings become
//     their text (1, 1.5, true, null; maps, arrays and ext keys their compact JSON);
//   - integers are exact (uint64 too); floats are the shortest form that reads back the same
//     value, in encoding/json's notation, with ".0" added to integral values so OpenSearch
//     maps the field as a floating point number; NaN and infinities become null;
//   - timestamps (ext type 0 with 8 bytes as Fluent Bit writes them, and the msgpack timestamp
//     ext -1) become RFC 3339 strings in UTC with nanoseconds; any other ext becomes null.
//
// Unreadable msgpack, bytes after the value, or nesting deeper than 512 give a
// *MalformedError and dst unchanged.
func AppendJSON(dst, value []byte) ([]byte, error) {
	var small [32]pair
	var sc *scratch
	e := jsonEnc{src: value, pairs: small[:0], sc: &sc}
	start := len(dst)
	out, end, p := e.whole(dst)
	if p != 0 {
		return dst[:start], p.at(end)
	}
	return out, nil
}

// AppendJSONChecked is AppendJSON that also says whether the value's fields can stand in for
// AppendFields with a skip list made of keys that start with '@' and of reserved: clean is true
// when value is a map none of whose top-level keys, as JSON text between the quotes (the text
// AppendFields compares), starts with '@' or equals reserved ("" reserves nothing). The
// fields are then out[start+1:len(out)-1], byte for byte what AppendFields writes for any such
// skip list, so a caller that needs the record both as JSON and as fields transcodes it once.
func AppendJSONChecked(dst, value []byte, reserved string) (out []byte, clean bool, err error) {
	return appendJSONChecked(dst, value, reserved, nil)
}

func appendJSONChecked(dst, value []byte, reserved string, memo *Transcoder) (out []byte, clean bool, err error) {
	var small [32]pair
	var sc *scratch
	e := jsonEnc{src: value, pairs: small[:0], sc: &sc, watch: true, reserved: reserved, memo: memo}
	start := len(dst)
	out, end, p := e.whole(dst)
	if p != 0 {
		return dst[:start], false, p.at(end)
	}
	return out, !e.hit && len(value) > 0 && isMap(value[0]), nil
}

// AppendJSONQuoted is AppendJSONChecked that also appends to quoted the JSON it writes, as one
// quoted JSON string: byte for byte AppendString(quoted, out[len(dst):]), the record's JSON as
// the string value of another document's field (the cwl document's @message). Both are written
// in one pass, which costs far less than escaping the JSON again afterwards. On error both
// buffers come back unchanged.
func AppendJSONQuoted(dst, quoted, value []byte, reserved string) (out, outQuoted []byte, clean bool, err error) {
	return appendJSONQuoted(dst, quoted, value, reserved, nil)
}

func appendJSONQuoted(dst, quoted, value []byte, reserved string, memo *Transcoder) (out, outQuoted []byte, clean bool, err error) {
	var small [32]pair
	var sc *scratch
	q := append(quoted, '"')
	start, qstart := len(dst), len(quoted)
	e := jsonEnc{src: value, pairs: small[:0], sc: &sc, watch: true, reserved: reserved, quote: true, q: &q, synced: start, memo: memo}
	out, end, p := e.whole(dst)
	if p != 0 {
		return dst[:start], quoted[:qstart], false, p.at(end)
	}
	if e.redo {
		q = appendEscapedJSON(append(quoted[:qstart], '"'), out[start:])
	} else {
		e.sync(out)
	}
	return out, append(q, '"'), !e.hit && len(value) > 0 && isMap(value[0]), nil
}

// whole writes e.src, which must be one complete value, releases the pooled memory and returns
// the output, the offset where writing stopped and the problem, if any.
func (e *jsonEnc) whole(dst []byte) ([]byte, int, problem) {
	out, end, p := e.value(dst, 0, 0)
	e.release()
	if p == 0 && end != len(e.src) {
		p = probTrailing
	}
	return out, end, p
}

// isMap reports whether c is the first byte of a msgpack map.
func isMap(c byte) bool { return c&0xf0 == 0x80 || c == 0xde || c == 0xdf }

// AppendFields appends the fields of the msgpack map record as `"k":v,"k2":v2`, without
// braces, by the rules of AppendJSON, leaving out keys whose JSON text (between the quotes)
// equals an entry of skip, so a caller can add its own fields of the same names. n is the
// number of fields written; when n is 0 nothing is appended.
func AppendFields(dst, record []byte, skip []string) ([]byte, int, error) {
	var small [32]pair
	var sc *scratch
	e := jsonEnc{src: record, pairs: small[:0], sc: &sc}
	start := len(dst)
	h, p := readHead(record, 0)
	end, n := 0, 0
	out := dst
	if p == 0 && h.kind != Map {
		p = probNotMap
	}
	if p == 0 {
		out, end, n, p = e.fields(dst, h, 1, skip)
		if p == 0 && end != len(record) {
			p = probTrailing
		}
	}
	e.release()
	if p != 0 {
		return dst[:start], 0, p.at(end)
	}
	return out, n, nil
}

// keySeed seeds the hash that finds repeated keys; it only has to be fixed within a call.
var keySeed = maphash.MakeSeed()

// scratchPool keeps the bookkeeping of records with big maps, so they allocate nothing in steady
// state either.
var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

type scratch struct {
	pairs []pair
	table []int32
}

// pair is one key and value written to dst: [start, keyEnd) is the quoted key, [start, end) the
// pair with its trailing comma.
type pair struct {
	h                  uint64
	start, keyEnd, end int
	dead               bool // a later pair has the same key
}

type jsonEnc struct {
	src   []byte
	pairs []pair    // the pairs of every map being written, outermost map first
	table []int32   // hash indexes of big maps being written, stacked the same way
	sc    **scratch // pooled memory once the stack arrays run out; behind a pointer so escape
	// analysis does not see e's own fields flowing to the pool

	// AppendJSONChecked: watch the top-level keys; hit is set when one starts with '@' or
	// equals reserved.
	watch    bool
	hit      bool
	reserved string

	// AppendJSONQuoted: *q gets what is written to dst, escaped again as the inside of a JSON
	// string. Strings go to both at once; the bytes between them (punctuation, numbers, null,
	// true, false), which escaping leaves as they are, are copied over in one go before the
	// next string: dst[synced:] is what q still lacks. q is behind a pointer, like sc, so that
	// growing it does not make escape analysis move e's stack arrays to the heap. A map that
	// repeats a key (rare) cuts pairs out of dst: quoting then stops (redo), and q is escaped
	// from the finished JSON instead.
	quote  bool
	redo   bool
	q      *[]byte
	synced int

	memo *Transcoder // nil: no memory of earlier records' maps
}

// sync copies to q what dst holds past synced (nothing that needs escaping).
func (e *jsonEnc) sync(dst []byte) {
	if e.synced < len(dst) {
		*e.q = append(*e.q, dst[e.synced:]...)
	}
	e.synced = len(dst)
}

// escaped brings q up to dst when dst[start:] holds JSON with strings in it (timestamps,
// non-string keys).
func (e *jsonEnc) escaped(dst []byte, start int) {
	e.sync(dst[:start])
	*e.q = appendEscapedJSON(*e.q, dst[start:])
	e.synced = len(dst)
}

// more makes room for n more pairs and tab more table slots, moving to pooled memory when the
// stack arrays run out. It never stores e.pairs into the pooled scratch, so the small arrays of
// AppendJSON stay on the stack.
func (e *jsonEnc) more(n, tab int) {
	if len(e.pairs)+n <= cap(e.pairs) && len(e.table)+tab <= cap(e.table) {
		return
	}
	sc := *e.sc
	if sc == nil {
		sc = scratchPool.Get().(*scratch)
		*e.sc = sc
	}
	if need := len(e.pairs) + n; need > cap(e.pairs) {
		np := sc.pairs[:0]
		if cap(np) < need {
			np = make([]pair, 0, max(need, 2*cap(np), 64))
		}
		np = append(np, e.pairs...)
		sc.pairs, e.pairs = np, np
	}
	if need := len(e.table) + tab; need > cap(e.table) {
		nt := sc.table[:0]
		if cap(nt) < need {
			nt = make([]int32, 0, max(need, 2*cap(nt), 256))
		}
		nt = append(nt, e.table...)
		sc.table, e.table = nt, nt
	}
}

func (e *jsonEnc) release() {
	if sc := *e.sc; sc != nil {
		scratchPool.Put(sc)
		*e.sc = nil
	}
}

// value writes the value at src[i:] and returns the offset after it, or where it failed.
func (e *jsonEnc) value(dst []byte, i, depth int) ([]byte, int, problem) {
	b := e.src
	if i < len(b) { // the common formats, without building a head
		c := b[i]
		switch {
		case c <= 0x7f:
			return strconv.AppendUint(dst, uint64(c), 10), i + 1, 0
		case c >= 0xa0 && c <= 0xbf:
			if n := i + 1 + int(c&0x1f); n <= len(b) {
				if e.quote {
					return e.strQuoted(dst, i+1, n), n, 0
				}
				return AppendString(dst, b[i+1:n]), n, 0
			}
		case c == 0xd9 && i+1 < len(b):
			if n := i + 2 + int(b[i+1]); n <= len(b) {
				if e.quote {
					return e.strQuoted(dst, i+2, n), n, 0
				}
				return AppendString(dst, b[i+2:n]), n, 0
			}
		}
	}
	h, p := readHead(b, i)
	if p != 0 {
		return dst, i, p
	}
	switch h.kind {
	case Nil:
		dst = append(dst, "null"...)
	case Bool:
		if h.u == 1 {
			dst = append(dst, "true"...)
		} else {
			dst = append(dst, "false"...)
		}
	case Int:
		dst = strconv.AppendInt(dst, int64(h.u), 10)
	case Uint:
		dst = strconv.AppendUint(dst, h.u, 10)
	case Float:
		dst = appendFloat(dst, math.Float64frombits(h.u), h.f32)
	case String, Binary:
		if e.quote {
			dst = e.strQuoted(dst, h.data, h.next)
		} else {
			dst = AppendString(dst, b[h.data:h.next])
		}
	case Ext:
		start := len(dst)
		dst = appendExt(dst, h.ext, b[h.data:h.next])
		if e.quote && dst[start] == '"' { // a timestamp
			e.escaped(dst, start)
		}
	case Array:
		if depth >= maxDepth {
			return dst, i, probTooDeep
		}
		dst = append(dst, '[')
		j := h.next
		for k := 0; k < h.count; k++ {
			if k > 0 {
				dst = append(dst, ',')
			}
			if dst, j, p = e.value(dst, j, depth+1); p != 0 {
				return dst, j, p
			}
		}
		return append(dst, ']'), j, 0
	case Map:
		if depth >= maxDepth {
			return dst, i, probTooDeep
		}
		if e.memo != nil && depth == 1 {
			if e.memo.off == 0 {
				return e.memoMap(dst, i, h, depth)
			}
			e.memo.off--
		}
		return e.mapValue(dst, h, depth)
	}
	return dst, h.next, 0
}

func (e *jsonEnc) mapValue(dst []byte, h head, depth int) ([]byte, int, problem) {
	dst = append(dst, '{')
	dst, j, _, p := e.fields(dst, h, depth+1, nil)
	if p != 0 {
		return dst, j, p
	}
	return append(dst, '}'), j, 0
}

// Transcoder is AppendJSONChecked and AppendJSONQuoted for one record after another, with a
// memory of the maps that were the values of earlier records' top-level keys: a pod's records
// repeat their Kubernetes metadata byte for byte, and copying its JSON costs a fraction of
// writing it again (the JSON of a map depends only on its bytes). Its output is exactly the
// package functions'. The zero value is ready. It is not safe for concurrent use, keeps copies
// rather than references of what it reads, and holds at most memoMaxBytes.
//
// The memory watches whether it pays: when fewer than one map in eight of a window of lookups
// was found (every map distinct, as in logs that carry a request id in a nested map), it is
// dropped and maps are written plainly for a while, then it tries again.
type Transcoder struct {
	index map[uint64]memoEnt
	buf   []byte

	looks, hits int // lookups and hits in the current window
	off         int // maps still to write without the memory
}

// memoEnt is one remembered map in Transcoder.buf: [off, rawEnd) its msgpack, [rawEnd, jsonEnd)
// its JSON, [jsonEnd, qEnd) that JSON escaped as the inside of a JSON string (qEnd == jsonEnd:
// not known yet).
type memoEnt struct{ off, rawEnd, jsonEnd, qEnd int }

const (
	memoMin        = 64      // smaller maps are written, not looked up
	memoMaxBytes   = 1 << 20 // the memory starts over past this, or past memoMaxEntries
	memoMaxEntries = 1024
	memoWindow     = 4096           // lookups per verdict on whether the memory pays
	memoMinHits    = memoWindow / 8 // fewer hits than this in a window: the memory is dropped
	memoOffMaps    = 16 * memoWindow
)

// AppendJSONChecked is the package's AppendJSONChecked, reusing the JSON of maps seen before.
func (t *Transcoder) AppendJSONChecked(dst, value []byte, reserved string) (out []byte, clean bool, err error) {
	return appendJSONChecked(dst, value, reserved, t)
}

// AppendJSONQuoted is the package's AppendJSONQuoted, reusing the JSON of maps seen before.
func (t *Transcoder) AppendJSONQuoted(dst, quoted, value []byte, reserved string) (out, outQuoted []byte, clean bool, err error) {
	return appendJSONQuoted(dst, quoted, value, reserved, t)
}

// memoMap writes the map h at src[i:] (a top-level value) from the Transcoder's memory, or
// writes it and remembers it.
func (e *jsonEnc) memoMap(dst []byte, i int, h head, depth int) ([]byte, int, problem) {
	end, p := skip(e.src, i)
	if p != 0 || end-i < memoMin {
		return e.mapValue(dst, h, depth) // errors as the plain path reports them
	}
	raw := e.src[i:end]
	t := e.memo
	hash := maphash.Bytes(keySeed, raw)
	if ent, ok := t.index[hash]; ok && bytes.Equal(t.buf[ent.off:ent.rawEnd], raw) {
		js := t.buf[ent.rawEnd:ent.jsonEnd]
		if e.quote {
			e.sync(dst)
			if ent.qEnd > ent.jsonEnd {
				*e.q = append(*e.q, t.buf[ent.jsonEnd:ent.qEnd]...)
			} else {
				*e.q = appendEscapedJSON(*e.q, js)
			}
			e.synced = len(dst) + len(js)
		}
		dst = append(dst, js...)
		t.tally(true) // last: it may drop the memory js lies in
		return dst, end, 0
	}
	start, qstart := len(dst), 0
	if e.quote {
		e.sync(dst)
		qstart = len(*e.q)
	}
	dst, j, p := e.mapValue(dst, h, depth)
	if p != 0 {
		return dst, j, p
	}
	var q []byte
	if e.quote { // still quoting: no repeated key cut q short
		e.sync(dst)
		q = (*e.q)[qstart:]
	}
	if t.tally(false); t.off == 0 {
		t.remember(hash, raw, dst[start:], q)
	}
	return dst, j, 0
}

// tally counts a lookup and, at the end of a window, drops the memory if it did not pay.
func (t *Transcoder) tally(hit bool) {
	t.looks++
	if hit {
		t.hits++
	}
	if t.looks < memoWindow {
		return
	}
	if t.hits < memoMinHits {
		clear(t.index)
		t.buf = t.buf[:0]
		t.off = memoOffMaps
	}
	t.looks, t.hits = 0, 0
}

// remember stores a map's msgpack, JSON and escaped JSON (nil: not known).
func (t *Transcoder) remember(hash uint64, raw, js, q []byte) {
	if t.index == nil {
		t.index = make(map[uint64]memoEnt, 64)
	}
	if len(t.buf)+len(raw)+len(js)+len(q) > memoMaxBytes || len(t.index) >= memoMaxEntries {
		clear(t.index)
		t.buf = t.buf[:0]
		if len(raw)+len(js)+len(q) > memoMaxBytes {
			return
		}
	}
	ent := memoEnt{off: len(t.buf)}
	t.buf = append(t.buf, raw...)
	ent.rawEnd = len(t.buf)
	t.buf = append(t.buf, js...)
	ent.jsonEnd = len(t.buf)
	t.buf = append(t.buf, q...)
	ent.qEnd = len(t.buf)
	t.index[hash] = ent
}

// fields writes the pairs of the map h as `"k":v,...`, leaving out keys in skipKeys, and returns
// the offset after the map and the number of pairs written. Each pair is written with a
// trailing comma; a pair whose key comes again later is marked dead and cut out at the end in
// one pass, so even a map made of repeated keys costs linear time. Keys are compared as written
// (escaped JSON), so keys that differ in msgpack but read the same in JSON count as repeats.
func (e *jsonEnc) fields(dst []byte, h head, depth int, skipKeys []string) ([]byte, int, int, problem) {
	b := e.src
	base, tbase := len(e.pairs), len(e.table)
	var tab []int32
	if h.count > linearPairs {
		size := 1 << bits.Len(uint(2*h.count-1))
		e.more(h.count, size)
		e.table = e.table[:tbase+size]
		tab = e.table[tbase:]
		clear(tab)
	}
	j, dead := h.next, 0
	var p problem
	for k := 0; k < h.count; k++ {
		start := len(dst)
		if dst, j, p = e.key(dst, j, depth); p != 0 {
			return dst, j, 0, p
		}
		keyEnd := len(dst)
		if e.watch && depth == 1 && !e.hit {
			text := dst[start+1 : keyEnd-1]
			e.hit = len(text) > 0 && text[0] == '@' || e.reserved != "" && string(text) == e.reserved
		}
		if skipKeys != nil && skipped(skipKeys, dst[start+1:keyEnd-1]) {
			dst = dst[:start]
			if e.quote { // AppendFields does not quote; but should it ever, q would have the key
				e.quote, e.redo = false, true
			}
			if j, p = skip(b, j); p != 0 {
				return dst, j, 0, p
			}
			continue
		}
		dst = append(dst, ':')
		if dst, j, p = e.value(dst, j, depth); p != 0 {
			return dst, j, 0, p
		}
		dst = append(dst, ',')
		key := dst[start:keyEnd]
		idx := len(e.pairs) // index of the new pair
		var hash uint64
		if tab == nil {
			// A few bytes and the length tell most keys apart; equal hashes are compared in full.
			n := len(key) // >= 2: the quotes
			hash = uint64(n)<<32 | uint64(key[1])<<16 | uint64(key[n/2])<<8 | uint64(key[n-2])
			for x := base; x < idx; x++ {
				q := &e.pairs[x]
				if q.h == hash && !q.dead && bytes.Equal(dst[q.start:q.keyEnd], key) {
					q.dead = true
					dead++
					break
				}
			}
		} else {
			hash = maphash.Bytes(keySeed, key) // big maps: a real hash keeps probing short
			mask := uint64(len(tab) - 1)
			for s := hash & mask; ; s = (s + 1) & mask {
				x := tab[s]
				if x == 0 {
					tab[s] = int32(idx - base + 1)
					break
				}
				q := &e.pairs[base+int(x)-1]
				if q.h == hash && bytes.Equal(dst[q.start:q.keyEnd], key) {
					q.dead = true
					dead++
					tab[s] = int32(idx - base + 1)
					break
				}
			}
		}
		if len(e.pairs) == cap(e.pairs) {
			e.more(1, 0)
		}
		e.pairs = e.pairs[:idx+1] // not append: a self-slice keeps the stack array on the stack
		e.pairs[idx] = pair{h: hash, start: start, keyEnd: keyEnd, end: len(dst)}
	}
	n := len(e.pairs) - base - dead
	if dead > 0 {
		if e.quote {
			e.quote, e.redo = false, true
		}
		w := e.pairs[base].start
		for _, q := range e.pairs[base:] {
			if !q.dead {
				w += copy(dst[w:], dst[q.start:q.end])
			}
		}
		dst = dst[:w]
	}
	if n > 0 {
		dst = dst[:len(dst)-1] // the last trailing comma
		if e.quote && e.synced > len(dst) {
			*e.q, e.synced = (*e.q)[:len(*e.q)-1], len(dst)
		}
	}
	e.pairs, e.table = e.pairs[:base], e.table[:tbase]
	return dst, j, n, 0
}

func skipped(keys []string, key []byte) bool {
	for _, s := range keys {
		if string(key) == s {
			return true
		}
	}
	return false
}

// key writes the map key at src[i:] as a JSON string.
func (e *jsonEnc) key(dst []byte, i, depth int) ([]byte, int, problem) {
	b := e.src
	if i < len(b) && b[i] >= 0xa0 && b[i] <= 0xbf { // fixstr: nearly every key
		if n := i + 1 + int(b[i]&0x1f); n <= len(b) {
			if e.quote {
				return e.strQuoted(dst, i+1, n), n, 0
			}
			return AppendString(dst, b[i+1:n]), n, 0
		}
	}
	if !e.quote {
		return e.otherKey(dst, i, depth)
	}
	// Written as usual, then escaped in one go: a key's own JSON (map, array, ext keys) must
	// not reach q as it is written, only as the key string it becomes.
	start := len(dst)
	e.quote = false
	dst, j, p := e.otherKey(dst, i, depth)
	e.quote = true
	if p == 0 {
		e.escaped(dst, start)
	}
	return dst, j, p
}

// otherKey writes a key that is not a fixstr.
func (e *jsonEnc) otherKey(dst []byte, i, depth int) ([]byte, int, problem) {
	b := e.src
	h, p := readHead(b, i)
	if p != 0 {
		return dst, i, p
	}
	switch h.kind {
	case String, Binary:
		return AppendString(dst, b[h.data:h.next]), h.next, 0
	case Nil:
		return append(dst, `"null"`...), h.next, 0
	case Bool, Int, Uint, Float:
		v, _ := valueAt(b, i)
		dst = append(dst, '"')
		dst, _ = v.AppendText(dst) // digits, '.', 'e', '+', '-', NaN, Inf, true, false
		return append(dst, '"'), h.next, 0
	}
	// A map, array or ext key: its compact JSON, written after dst and then moved back as a
	// string. Rare enough that the extra copy does not matter.
	start := len(dst)
	dst, j, p := e.value(dst, i, depth)
	if p != 0 {
		return dst[:start], j, p
	}
	raw := dst[start:]
	dst = AppendString(dst, raw) // raw keeps the old bytes even if dst moves
	n := copy(dst[start:], dst[start+len(raw):])
	return dst[:start+n], j, 0
}

// appendFloat writes f the way encoding/json does (shortest round trip, exponent only outside
// [1e-6, 1e21)), plus ".0" for integral values, and null for NaN and infinities.
func appendFloat(dst []byte, f float64, f32 bool) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, "null"...)
	}
	bitSize := 64
	abs := math.Abs(f)
	format := byte('f')
	if f32 {
		bitSize = 32
		if a := float32(abs); a != 0 && (a < 1e-6 || a >= 1e21) {
			format = 'e'
		}
	} else if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	start := len(dst)
	dst = strconv.AppendFloat(dst, f, format, -1, bitSize)
	if format == 'e' {
		// e-09 -> e-9, as encoding/json writes it
		if n := len(dst); n-start >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
		return dst
	}
	if bytes.IndexByte(dst[start:], '.') < 0 {
		dst = append(dst, ".0"...)
	}
	return dst
}

// appendExt writes timestamps as RFC 3339 strings and any other ext as null.
func appendExt(dst []byte, typ int8, d []byte) []byte {
	var sec, nsec int64
	switch {
	case typ == 0 && len(d) == 8:
		sec, nsec = int64(binary.BigEndian.Uint32(d)), int64(binary.BigEndian.Uint32(d[4:]))
	case typ == -1:
		var ok bool
		if sec, nsec, ok = msgpackTime(d); !ok {
			return append(dst, "null"...)
		}
	default:
		return append(dst, "null"...)
	}
	t := time.Unix(sec, nsec).UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		return append(dst, "null"...) // RFC 3339 has four-digit years only
	}
	dst = append(dst, '"')
	dst = t.AppendFormat(dst, time.RFC3339Nano)
	return append(dst, '"')
}
