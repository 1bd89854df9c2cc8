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
	const slack = 17 // the closing quote, and room for an 8-byte store or an escape
	n := len(dst)
	if cap(dst)-n < len(s)+1+slack {
		dst = slices.Grow(dst, len(s)+1+slack)
	}
	buf := dst[:cap(dst)] // invariant: len(buf)-n >= len(s)-i+slack before each step
	buf[n] = '"'
	n++
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
			const lo, hi, lo7 uint64 = 0x0101010101010101, 0x8080808080808080, 0x7f7f7f7f7f7f7f7f
			if (x-lo*0x20|x)&hi != 0 { // a control or non-ASCII byte: one byte at a time
				k := bits.TrailingZeros64(m) / 8
				i, n = i+k, n+k
				break
			}
			// Only quotes and backslashes, as in a record's JSON: flag them exactly (no borrows),
			// then put a backslash before each and the rest of the word after it.
			q, bs := x^(lo*'"'), x^(lo*'\\')
			m = ^((q&lo7 + lo7) | q) | ^((bs&lo7 + lo7) | bs)
			m &= hi
			at := n
			for m != 0 {
				k := bits.TrailingZeros64(m) / 8
				buf[at+k] = '\\'
				binary.LittleEndian.PutUint64(buf[at+k+1:], x>>(8*k))
				at++
				m &= m - 1
			}
			n = at + 8
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
	buf[n] = '"'
	return buf[:n+1]
}
