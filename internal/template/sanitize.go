package template

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// Limits of each destination.
const (
	MaxGroupLen  = 512 // CloudWatch log group name, characters
	MaxStreamLen = 512 // CloudWatch log stream name, characters
	MaxIndexLen  = 255 // OpenSearch index name, UTF-8 bytes

	hashLen = 9 // "-" + 8 hex digits appended to a name that was cut
)

// Sanitize appends name made valid for kind to dst (see SanitizeGroup, SanitizeStream,
// SanitizeIndex). It appends nothing when nothing valid is left: the caller falls back.
func Sanitize(kind Kind, dst, name []byte) []byte {
	switch kind {
	case Group:
		return SanitizeGroup(dst, name)
	case Stream:
		return SanitizeStream(dst, name)
	default:
		return SanitizeIndex(dst, name)
	}
}

func groupChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '.' || c == '-' || c == '_' || c == '/' || c == '#'
}

// SanitizeGroup appends a valid CloudWatch log group name: every character outside
// [.\-_/#A-Za-z0-9] (and every byte that is not UTF-8) becomes '-'; names over 512 characters
// are cut and end with "-" + 8 hex digits of a hash of the whole sanitized name.
func SanitizeGroup(dst, name []byte) []byte {
	start := len(dst)
	for i := 0; i < len(name); {
		c := name[i]
		if c < utf8.RuneSelf {
			if !groupChar(c) {
				c = '-'
			}
			dst = append(dst, c)
			i++
			continue
		}
		_, size := utf8.DecodeRune(name[i:])
		dst = append(dst, '-')
		i += size
	}
	if len(dst)-start > MaxGroupLen {
		dst = cut(dst, start, start+MaxGroupLen-hashLen)
	}
	return dst
}

// SanitizeStream appends a valid CloudWatch log stream name: ':' and '*' (and every byte that is
// not UTF-8) become '-'; names over 512 characters are cut and end with "-" + 8 hex digits of a
// hash of the whole sanitized name.
func SanitizeStream(dst, name []byte) []byte {
	start := len(dst)
	runes := 0
	keep := -1 // byte offset where the first MaxStreamLen-hashLen characters end
	for i := 0; i < len(name); {
		if runes == MaxStreamLen-hashLen {
			keep = len(dst)
		}
		runes++
		c := name[i]
		if c < utf8.RuneSelf {
			if c == ':' || c == '*' {
				c = '-'
			}
			dst = append(dst, c)
			i++
			continue
		}
		r, size := utf8.DecodeRune(name[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, '-')
		} else {
			dst = append(dst, name[i:i+size]...)
		}
		i += size
	}
	if runes > MaxStreamLen {
		dst = cut(dst, start, keep)
	}
	return dst
}

func indexForbidden(r rune) bool {
	switch r {
	case '\\', '/', '*', '?', '"', '<', '>', '|', ',', '#', ':':
		return true
	}
	return unicode.IsSpace(r)
}

// SanitizeIndex appends a valid OpenSearch index name: lowercased; \ / * ? " < > | , # : and
// whitespace (and every byte that is not UTF-8) become '-'; leading '-', '_' and '+' are removed;
// "." and ".." give nothing; names over 255 bytes are cut on a character boundary and end with
// "-" + 8 hex digits of a hash of the whole sanitized name.
func SanitizeIndex(dst, name []byte) []byte {
	start := len(dst)
	for i := 0; i < len(name); {
		c := name[i]
		if c < utf8.RuneSelf {
			i++
			switch {
			case 'A' <= c && c <= 'Z':
				c += 'a' - 'A'
			case indexForbidden(rune(c)):
				c = '-'
			}
			if len(dst) == start && (c == '-' || c == '_' || c == '+') {
				continue
			}
			dst = append(dst, c)
			continue
		}
		r, size := utf8.DecodeRune(name[i:])
		i += size
		switch {
		case r == utf8.RuneError && size == 1, indexForbidden(r):
			if len(dst) > start {
				dst = append(dst, '-')
			}
		default:
			dst = utf8.AppendRune(dst, unicode.ToLower(r))
		}
	}
	if s := dst[start:]; len(s) == 1 && s[0] == '.' || len(s) == 2 && s[0] == '.' && s[1] == '.' {
		return dst[:start]
	}
	if len(dst)-start > MaxIndexLen {
		keep := start + MaxIndexLen - hashLen
		for keep > start && !utf8.RuneStart(dst[keep]) {
			keep--
		}
		dst = cut(dst, start, keep)
	}
	return dst
}

// cut keeps dst[:keep] and appends "-" + 8 hex digits of the FNV-1a hash of dst[start:].
func cut(dst []byte, start, keep int) []byte {
	h := uint32(2166136261)
	for _, c := range dst[start:] {
		h ^= uint32(c)
		h *= 16777619
	}
	dst = append(dst[:keep], '-')
	const hex = "0123456789abcdef"
	for shift := 28; shift >= 0; shift -= 4 {
		dst = append(dst, hex[h>>uint(shift)&0xf])
	}
	return dst
}

// Valid reports why name is not a valid name for kind, or nil. It checks the destination's
// rules directly (not by sanitizing), so tests and fuzzers can hold the sanitizers to them.
func Valid(kind Kind, name string) error {
	switch kind {
	case Group:
		if name == "" || len(name) > MaxGroupLen {
			return fmt.Errorf("log group name %q: length %d, want 1 to %d", name, len(name), MaxGroupLen)
		}
		for i := 0; i < len(name); i++ {
			if !groupChar(name[i]) {
				return fmt.Errorf("log group name %q: character %q at %d is outside [.\\-_/#A-Za-z0-9]", name, name[i], i)
			}
		}
	case Stream:
		if !utf8.ValidString(name) {
			return fmt.Errorf("log stream name %q: not UTF-8", name)
		}
		if n := utf8.RuneCountInString(name); n == 0 || n > MaxStreamLen {
			return fmt.Errorf("log stream name %q: %d characters, want 1 to %d", name, n, MaxStreamLen)
		}
		for i, r := range name {
			if r == ':' || r == '*' {
				return fmt.Errorf("log stream name %q: %q at %d is not allowed", name, r, i)
			}
		}
	case Index:
		if name == "" || len(name) > MaxIndexLen {
			return fmt.Errorf("index name %q: %d bytes, want 1 to %d", name, len(name), MaxIndexLen)
		}
		if !utf8.ValidString(name) {
			return fmt.Errorf("index name %q: not UTF-8", name)
		}
		if name == "." || name == ".." {
			return fmt.Errorf("index name %q is reserved", name)
		}
		switch name[0] {
		case '-', '_', '+':
			return fmt.Errorf("index name %q starts with %q", name, name[0])
		}
		for i, r := range name {
			if indexForbidden(r) {
				return fmt.Errorf("index name %q: %q at %d is not allowed", name, r, i)
			}
			if unicode.ToLower(r) != r {
				return fmt.Errorf("index name %q: %q at %d is not lowercase", name, r, i)
			}
		}
	default:
		return fmt.Errorf("template: unknown kind %d", int(kind))
	}
	return nil
}
