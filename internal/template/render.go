package template

import (
	"encoding/binary"
	"slices"
	"time"
	"unsafe"

	"github.com/cwos/cloudwatch-opensearch/internal/event"
)

// Input is what a template reads for one record.
type Input struct {
	Record []byte    // msgpack map
	Time   time.Time // record time; rendered in UTC
	Tag    string

	// Index templates only: the final group and stream of the record. Empty counts as missing.
	Group, Stream string

	// The last top-level value looked up for a nested path: "$k['a'].$k['b']" and the three
	// templates of one record scan the record map once for k, not once per variable.
	parentKey string
	parent    event.Value
	parentOf  *byte          // the record the parent belongs to, so a reused Input never reads a stale one
	index     event.MapIndex // the parent map's keys: each lookup in it does not scan it again
}

// lookup finds path in the record, reusing the parent map of the previous nested lookup.
func (in *Input) lookup(path []event.PathElem) event.Value {
	if len(path) == 1 {
		return event.Lookup(in.Record, path)
	}
	if rec := unsafe.SliceData(in.Record); in.parentOf != rec || in.parentKey != path[0].Key || rec == nil {
		if path[0].IsIndex { // not from a template: a variable starts with a key
			in.parent = event.Lookup(in.Record, path[:1])
			in.index.Reset(in.parent.Raw)
		} else {
			in.parent = in.index.ResetLookup(in.Record, path[0].Key) // one read of the map for both
		}
		in.parentKey, in.parentOf = path[0].Key, rec
	}
	switch in.parent.Kind {
	case event.Map:
		return in.index.Lookup(path[1:])
	case event.Array:
		return event.Lookup(in.parent.Raw, path[1:])
	}
	return event.Value{}
}

// Render appends the template rendered for in to dst. When a value is missing (absent key, null,
// map, array, tag part out of range, empty $LOG_GROUP / $LOG_STREAM) it returns dst unchanged
// and the variable as written (e.g. "$kubernetes['pod_name']"); missing is "" on success.
// Render does not sanitize and does not allocate.
func (t *Template) Render(dst []byte, in *Input) (out []byte, missing string) {
	out, i := t.render(dst, in)
	if i >= 0 {
		return out, t.ops[i].src
	}
	return out, ""
}

// render returns the index of the op whose value was missing, or -1.
func (t *Template) render(dst []byte, in *Input) ([]byte, int) {
	start := len(dst)
	var (
		year, day, hour int
		month           time.Month
		haveTime        bool
	)
	for i := range t.ops {
		o := &t.ops[i]
		switch o.kind {
		case opLit:
			dst = append(dst, o.lit...)
		case opKey:
			v := in.lookup(o.path)
			var ok bool
			dst, ok = v.AppendText(dst)
			if !ok {
				return dst[:start], i
			}
		case opTag:
			dst = append(dst, in.Tag...)
		case opTagPart:
			part, ok := tagPart(in.Tag, o.n)
			if !ok {
				return dst[:start], i
			}
			dst = append(dst, part...)
		case opLogGroup, opLogStream:
			name := in.Group
			if o.kind == opLogStream {
				name = in.Stream
			}
			if name == "" {
				return dst[:start], i
			}
			dst = AppendLambda(dst, name)
		default: // time
			if !haveTime {
				u := in.Time.UTC()
				year, month, day = u.Date()
				hour = u.Hour()
				haveTime = true
			}
			switch o.kind {
			case opYear:
				dst = appendYear(dst, year)
			case opMonth:
				dst = append2(dst, int(month))
			case opDay:
				dst = append2(dst, day)
			case opHour:
				dst = append2(dst, hour)
			}
		}
	}
	return dst, -1
}

// tagPart returns the n-th '.'-separated part of tag.
func tagPart(tag string, n int) (string, bool) {
	start := 0
	for i := 0; i <= len(tag); i++ {
		if i == len(tag) || tag[i] == '.' {
			if n == 0 {
				return tag[start:i], true
			}
			n--
			start = i + 1
		}
	}
	return "", false
}

// AppendLambda appends name transformed the way the CloudWatch -> OpenSearch Lambda builds
// index names from log groups: lowercased, '/' and '.' replaced by '-'. Non-ASCII letters are
// left to the index sanitizer, which lowercases them too.
func AppendLambda(dst []byte, name string) []byte {
	i := 0
	if len(name) >= 8 { // eight bytes at a time: a log group is tens of bytes
		n := len(dst)
		dst = slices.Grow(dst, len(name))[:n+len(name)]
		for ; i+8 <= len(name); i += 8 {
			binary.LittleEndian.PutUint64(dst[n+i:], lambdaWord(binary.LittleEndian.Uint64([]byte(name[i:i+8]))))
		}
		dst = dst[:n+i]
	}
	for ; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '/' || c == '.':
			c = '-'
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// lambdaWord is AppendLambda of eight bytes at once: each byte 'A'-'Z' gets 0x20 added, each
// '/' and '.' becomes '-', every other byte (non-ASCII too) stays.
func lambdaWord(x uint64) uint64 {
	const lo, hi, lo7 = 0x0101010101010101, 0x8080808080808080, 0x7f7f7f7f7f7f7f7f
	h := x & lo7 // no carry crosses a byte below: h+0x3f <= 0xbe
	upper := (h + lo*(0x80-'A')) &^ (h + lo*(0x80-'Z'-1)) &^ x & hi
	x |= upper >> 2 // 0x80 >> 2 = 0x20, a bit upper case letters do not have
	// zero is exact: 0x80 where a byte of t is 0, no borrows.
	zero := func(t uint64) uint64 { return ^((t&lo7 + lo7) | t) & hi }
	m := zero(x^(lo*'/')) | zero(x^(lo*'.'))
	mask := (m >> 7) * 0xff
	return x&^mask | lo*'-'&mask
}

func append2(dst []byte, v int) []byte {
	return append(dst, byte('0'+v/10%10), byte('0'+v%10))
}

// appendYear writes at least four digits, as strftime's %Y does for years 0-9999.
func appendYear(dst []byte, y int) []byte {
	if y < 0 {
		dst = append(dst, '-')
		y = -y
	}
	var b [20]byte
	i := len(b)
	for y > 0 || i > len(b)-4 {
		i--
		b[i] = byte('0' + y%10)
		y /= 10
	}
	return append(dst, b[i:]...)
}
