package cloudwatch

import (
	"strconv"
	"unicode/utf8"
)

// msgFlags say how a message differs from its record's bytes once sent.
type msgFlags uint8

const (
	flagInvalidUTF8 msgFlags = 1 << iota // invalid bytes replaced by U+FFFD, one per byte
	flagTruncated                        // cut to the size limit, marker appended
)

const replacementLen = len(string(utf8.RuneError)) // 3 bytes in UTF-8

// truncMarker ends a message that was cut to fit one event; it says how long the original was,
// so a reader of the log line knows data is missing and how much.
func truncMarker(orig int) string {
	return "...[truncated by cloudwatch_opensearch: original message " + strconv.Itoa(orig) + " bytes]"
}

// measure returns the size in bytes of msg as it will be sent, and how it was changed. The size
// is what CloudWatch counts: UTF-8 bytes after invalid bytes become U+FFFD (the SDK's JSON
// encoder would do the same replacement, so the count must include it), cut to max with the
// marker when longer.
func measure(msg []byte, max int) (int, msgFlags) {
	var fl msgFlags
	n := len(msg)
	if !utf8.Valid(msg) {
		fl |= flagInvalidUTF8
		_, n = cut(msg, int(^uint(0)>>1))
	}
	if n <= max {
		return n, fl
	}
	m := truncMarker(len(msg))
	_, out := cut(msg, max-len(m))
	return out + len(m), fl | flagTruncated
}

// appendMessage appends msg as it will be sent; fl and max must be what measure saw, and the
// appended length is then exactly measure's size.
func appendMessage(dst, msg []byte, fl msgFlags, max int) []byte {
	if fl == 0 {
		return append(dst, msg...)
	}
	if fl&flagTruncated == 0 {
		return appendValid(dst, msg)
	}
	m := truncMarker(len(msg))
	in, _ := cut(msg, max-len(m))
	dst = appendValid(dst, msg[:in])
	return append(dst, m...)
}

// cut returns how many leading bytes of msg fit in budget bytes once sanitized, never splitting
// a character, and their sanitized size.
func cut(msg []byte, budget int) (in, out int) {
	for in < len(msg) {
		w, ow := 1, 1
		if c := msg[in]; c >= utf8.RuneSelf {
			var r rune
			r, w = utf8.DecodeRune(msg[in:])
			ow = w
			if r == utf8.RuneError && w == 1 {
				ow = replacementLen
			}
		}
		if out+ow > budget {
			break
		}
		in += w
		out += ow
	}
	return in, out
}

// appendValid appends msg with every invalid byte replaced by U+FFFD.
func appendValid(dst, msg []byte) []byte {
	for len(msg) > 0 {
		i := 0
		for i < len(msg) && msg[i] < utf8.RuneSelf {
			i++
		}
		dst = append(dst, msg[:i]...)
		msg = msg[i:]
		if len(msg) == 0 {
			break
		}
		r, w := utf8.DecodeRune(msg)
		if r == utf8.RuneError && w == 1 {
			dst = utf8.AppendRune(dst, utf8.RuneError)
		} else {
			dst = append(dst, msg[:w]...)
		}
		msg = msg[w:]
	}
	return dst
}
