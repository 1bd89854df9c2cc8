package event

import (
	"encoding/binary"
	"math/bits"
	"slices"
	"unicode/utf8"
)

const hexDigits = "0123456789abcdef"

// escapes says what AppendString does with each byte: 0 copies it as it is, 1 starts a UTF-8
// sequence to check, anything else is the letter after the backslash ('u' for \u00XX).
var escapes = func() (t [256]byte) {
	for c := 0; c < 0x20; c++ {
		t[c] = 'u'
	}
	t['\n'], t['\r'], t['\t'], t['\b'], t['\f'] = 'n', 'r', 't', 'b', 'f'
	t['"'], t['\\'] = '"', '\\'
	for c := utf8.RuneSelf; c < 256; c++ {
		t[c] = 1
	}
	return t
}()

// special flags (high bit of each byte) the bytes of x that a JSON string cannot hold raw or
// that need a UTF-8 check: < 0x20, '"', '\\', >= 0x80. A borrow can only flag bytes above a
// true hit, so the lowest flagged byte is always one.
func special(x uint64) uint64 {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	q := x ^ (lo * '"')
	bs := x ^ (lo * '\\')
	return ((x - lo*0x20) | x | ((q - lo) & ^q) | ((bs - lo) & ^bs)) & hi
}

// AppendString appends s to dst as one quoted JSON string, the only JSON string escaper of the
// plugin (record JSON, @message, index names, group and stream names), so every JSON string it
// writes follows the same rules (SPEC.md "Documents"):
//   - RFC 8259: '"' and '\\' are backslashed; \n \r \t \b \f get their short escapes and the
//     other control characters (< 0x20) \u00XX; DEL and everything else ASCII stays raw
//     (<, > and & too);
//   - valid UTF-8 is copied raw, except U+2028 and U+2029, written \u2028 and \u2029 for
//     JavaScript readers;
//   - each byte that does not start a valid UTF-8 sequence becomes U+FFFD.
//
// The output is therefore always valid JSON and valid UTF-8. It reserves room once and then
// copies eight bytes at a time, stopping only at the bytes that need care, so a string costs
// no copy call per plain run. Like append it writes into dst's spare capacity, and it may
// leave scratch bytes there past the result.
func AppendString[T string | []byte](dst []byte, s T) []byte {
	return appendEscaped(append(dst, '"'), s, true)
}

// escapeSlack is the room appendEscaped keeps past what is left to write: the closing quote,
// and room for an 8-byte store or an escape.
const escapeSlack = 17

// appendEscaped appends s escaped as the inside of a JSON string by AppendString's rules, and
// the closing quote when close is set.
func appendEscaped[T string | []byte](dst []byte, s T, close bool) []byte {
	const slack = escapeSlack
	n := len(dst)
	if cap(dst)-n < len(s)+slack {
		dst = slices.Grow(dst, len(s)+slack)
	}
	buf := dst[:cap(dst)] // invariant: len(buf)-n >= len(s)-i+slack before each step
	for i := 0; ; {
		for i+8 <= len(s) {
			// Eight single-byte loads the compiler merges into one, for strings and slices alike;
			// slicing first leaves one bounds check.
			w := s[i : i+8]
			x := uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
				uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56
			binary.LittleEndian.PutUint64(buf[n:], x) // whole word; what follows a hit is overwritten
			m := special(x)
			if m == 0 {
				i, n = i+8, n+8
				continue
			}
			const lo, hi uint64 = 0x0101010101010101, 0x8080808080808080
			if (x-lo*0x20|x)&hi != 0 { // a control or non-ASCII byte: one byte at a time
				k := bits.TrailingZeros64(m) / 8
				i, n = i+k, n+k
				break
			}
			// Only quotes and backslashes, as in a record's JSON: flag them exactly (no borrows),
			// then put a backslash before each and the rest of the word after it.
			n = putBackslashed(buf, n, x, quotesBackslashes(x))
			i += 8
			if len(buf)-n < len(s)-i+slack {
				buf = slices.Grow(buf[:n], len(s)-i+slack)
				buf = buf[:cap(buf)]
			}
		}
		for i < len(s) && escapes[s[i]] == 0 {
			buf[n] = s[i]
			i, n = i+1, n+1
		}
		if i == len(s) {
			break
		}
		switch c := s[i]; escapes[c] {
		case 1:
			// At most 4 bytes: the conversion of a []byte stays on the stack.
			r, size := utf8.DecodeRuneInString(string(s[i:min(i+utf8.UTFMax, len(s))]))
			switch {
			case r == utf8.RuneError && size == 1:
				n += copy(buf[n:], "\uFFFD")
				i++
			case r == '\u2028' || r == '\u2029': // 3 bytes in, 6 out
				buf[n], buf[n+1], buf[n+2], buf[n+3], buf[n+4], buf[n+5] = '\\', 'u', '2', '0', '2', hexDigits[r&0xf]
				i, n = i+size, n+6
			default:
				for k := 0; k < size; k++ {
					buf[n+k] = s[i+k]
				}
				i, n = i+size, n+size
			}
		case 'u':
			buf[n], buf[n+1], buf[n+2], buf[n+3], buf[n+4], buf[n+5] = '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf]
			i, n = i+1, n+6
		default:
			buf[n], buf[n+1] = '\\', escapes[c]
			i, n = i+1, n+2
		}
		if len(buf)-n < len(s)-i+slack { // an escape took more room than its byte
			buf = slices.Grow(buf[:n], len(s)-i+slack)
			buf = buf[:cap(buf)]
		}
	}
	if close {
		buf[n] = '"'
		n++
	}
	return buf[:n]
}

// appendEscapedJSON appends js, JSON text that this package's transcoder wrote, escaped as the
// inside of a JSON string (no quotes around it): byte for byte what AppendString writes between
// its quotes for js. Such text is valid UTF-8 and holds no control character, U+2028 or U+2029
// (AppendString escaped them all), so only '"' and '\\' are left to escape. For any other input
// the result is unspecified: use AppendString.
func appendEscapedJSON(dst, js []byte) []byte {
	const slack = 16 // room for an 8-byte store after seven backslashes
	n := len(dst)
	if cap(dst)-n < len(js)+slack {
		dst = slices.Grow(dst, len(js)+slack)
	}
	buf := dst[:cap(dst)] // invariant: len(buf)-n >= len(js)-i+slack before each step
	i := 0
	for i+8 <= len(js) {
		x := binary.LittleEndian.Uint64(js[i:])
		binary.LittleEndian.PutUint64(buf[n:], x) // whole word; what follows a hit is overwritten
		m := quotesBackslashes(x)
		i += 8
		if m == 0 {
			n += 8
			continue
		}
		n = putBackslashed(buf, n, x, m)
		if len(buf)-n < len(js)-i+slack {
			buf = slices.Grow(buf[:n], len(js)-i+slack)
			buf = buf[:cap(buf)]
		}
	}
	for ; i < len(js); i++ { // fewer than 8 bytes: at most 14 out, within the slack
		c := js[i]
		if c == '"' || c == '\\' {
			buf[n] = '\\'
			n++
		}
		buf[n] = c
		n++
	}
	return buf[:n]
}

// strQuoted appends the string src[from:to] to dst as AppendString does, and to *e.q what dst
// holds past e.synced (JSON text without '"' or '\\': punctuation, numbers) followed by that
// same string escaped again as the inside of a JSON string (appendEscapedJSON of what dst got).
// A plain string goes to both word by word in one pass, its last word read past to while src
// goes on (more record follows), so short strings cost a word or two.
func (e *jsonEnc) strQuoted(dst []byte, from, to int) []byte {
	const slack = 8 // a whole-word store at the end
	b, q, pre := e.src, *e.q, dst[e.synced:]
	size := to - from
	n, k := len(dst), len(q)
	if cap(dst)-n < size+2+slack {
		dst = slices.Grow(dst, size+2+slack)
	}
	if cap(q)-k < len(pre)+size+4+slack {
		q = slices.Grow(q, len(pre)+size+4+slack)
	}
	bd, bq := dst[:cap(dst)], q[:cap(q)]
	if len(pre) == 1 { // a ',' or ':' mostly
		bq[k] = pre[0]
		k++
	} else {
		k += copy(bq[k:], pre)
	}
	bd[n] = '"'
	bq[k], bq[k+1] = '\\', '"'
	n, k = n+1, k+2
	i, plain := from, true
	for i+8 <= to {
		x := binary.LittleEndian.Uint64(b[i:])
		if special(x) != 0 {
			plain = false
			break
		}
		binary.LittleEndian.PutUint64(bd[n:], x)
		binary.LittleEndian.PutUint64(bq[k:], x)
		i, n, k = i+8, n+8, k+8
	}
	if plain && i < to {
		if r := to - i; i+8 <= len(b) {
			// The string's last bytes and whatever follows them: only the string's bytes are
			// checked (a borrow only flags bytes above a true hit), all eight are stored and
			// the ones past the string overwritten next.
			x := binary.LittleEndian.Uint64(b[i:])
			if special(x)&(1<<(8*r)-1) != 0 {
				plain = false
			} else {
				binary.LittleEndian.PutUint64(bd[n:], x)
				binary.LittleEndian.PutUint64(bq[k:], x)
				i, n, k = to, n+r, k+r
			}
		} else {
			for ; i < to && escapes[b[i]] == 0; i++ {
				bd[n], bq[k] = b[i], b[i]
				n, k = n+1, k+1
			}
			plain = i == to
		}
	}
	if !plain { // from i on, something to escape or check: the general escaper takes over
		dst = appendEscaped(bd[:n], b[i:to], true)
		q = appendEscapedJSON(bq[:k], dst[n:len(dst)-1])
		*e.q, e.synced = append(q, '\\', '"'), len(dst)
		return dst
	}
	bd[n] = '"'
	bq[k], bq[k+1] = '\\', '"'
	*e.q, e.synced = bq[:k+2], n+1
	return bd[:n+1]
}

// quotesBackslashes flags (high bit of each byte) exactly the '"' and '\\' bytes of x: a byte of
// q (or bs) is 0 only at a hit, and the masked add cannot borrow across bytes.
func quotesBackslashes(x uint64) uint64 {
	const lo, hi, lo7 uint64 = 0x0101010101010101, 0x8080808080808080, 0x7f7f7f7f7f7f7f7f
	q, bs := x^(lo*'"'), x^(lo*'\\')
	return (^((q&lo7 + lo7) | q) | ^((bs&lo7 + lo7) | bs)) & hi
}

// putBackslashed writes the word x at buf[n:] with a backslash before each byte flagged in m
// and returns the end. buf needs 8 + popcount(m) bytes of room after n.
func putBackslashed(buf []byte, n int, x, m uint64) int {
	for m != 0 {
		k := bits.TrailingZeros64(m) / 8
		buf[n+k] = '\\'
		binary.LittleEndian.PutUint64(buf[n+k+1:], x>>(8*k))
		n++
		m &= m - 1
	}
	return n + 8
}
