package event

// Lookup and skip as they were before their fast paths, kept as the reference for the
// differential tests and fuzz targets.

// lookupOld walks path through the msgpack value record (normally a record map) and returns the
// value it reaches, reading only the bytes on the way. Keys match str and bin map keys byte for
// byte; when a map repeats a key the last one wins, as in the JSON documents. Anything absent,
// a step into the wrong kind of value, or unreadable bytes give Kind Missing.
func lookupOld(record []byte, path []PathElem) Value {
	i := 0
	for _, pe := range path {
		h, p := readHead(record, i)
		if p != 0 {
			return Value{}
		}
		if pe.IsIndex {
			if h.kind != Array || pe.Index < 0 || pe.Index >= h.count {
				return Value{}
			}
			j := h.next
			for k := 0; k < pe.Index; k++ {
				if j, p = skipOld(record, j); p != 0 {
					return Value{}
				}
			}
			i = j
			continue
		}
		if h.kind != Map {
			return Value{}
		}
		j, found := h.next, -1
		for k := 0; k < h.count; k++ {
			ks, ke := -1, -1                                               // the key's text, if it is a str or bin
			if j < len(record) && record[j] >= 0xa0 && record[j] <= 0xbf { // fixstr
				ks, ke = j+1, j+1+int(record[j]&0x1f)
				if ke > len(record) {
					return Value{}
				}
				j = ke
			} else {
				kh, p := readHead(record, j)
				if p != 0 {
					return Value{}
				}
				if kh.kind == String || kh.kind == Binary {
					ks, ke, j = kh.data, kh.next, kh.next
				} else if j, p = skipOld(record, j); p != 0 {
					return Value{}
				}
			}
			if ks >= 0 && ke-ks == len(pe.Key) && string(record[ks:ke]) == pe.Key {
				found = j
			}
			if j, p = skipOld(record, j); p != 0 {
				return Value{}
			}
		}
		if found < 0 {
			return Value{}
		}
		i = found
	}
	v, _ := valueAt(record, i)
	return v
}

// skipOld returns the offset after the complete value at b[i:], or where it could not be read. It
// walks nested values with a counter instead of recursion, so any nesting depth is safe. The
// formats that fill most records (small ints, short strings, str8, small maps and arrays) are
// decoded inline.
func skipOld(b []byte, i int) (int, problem) {
	pending := 1
	for pending > 0 {
		if i >= len(b) {
			return i, probTruncated
		}
		switch c := b[i]; {
		case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
			i++
		case c <= 0x8f:
			pending += 2 * int(c&0x0f)
			i++
		case c <= 0x9f:
			pending += int(c & 0x0f)
			i++
		case c <= 0xbf:
			n := i + 1 + int(c&0x1f)
			if n > len(b) {
				return i, probTruncated
			}
			i = n
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
