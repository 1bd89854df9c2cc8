package bulk

import (
	"path"
	"strconv"
	"strings"
	"unicode/utf8"
)

// obj is a JSON object with its field order kept, so responses read like OpenSearch's.
type obj []field

type field struct {
	k string
	v any // string, int, int64, bool, obj, []any
}

// filterPath is OpenSearch's filter_path response filter: comma-separated dotted paths where a
// segment may hold * wildcards and ** matches any number of levels; arrays are transparent.
// Objects left empty by the filter are dropped, like OpenSearch does.
type filterPath [][]string

func parseFilterPath(s string) filterPath {
	if s == "" {
		return nil
	}
	var f filterPath
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" || strings.HasPrefix(p, "-") { // exclusions are not used by the plugin
			continue
		}
		f = append(f, strings.Split(p, "."))
	}
	return f
}

// apply returns the filtered value and whether anything is left.
func (f filterPath) apply(v any) (any, bool) {
	if f == nil {
		return v, true
	}
	return filterValue(v, f)
}

func filterValue(v any, pats [][]string) (any, bool) {
	for _, p := range pats {
		if len(p) == 0 {
			return v, true // a pattern ended here: keep the whole value
		}
	}
	switch t := v.(type) {
	case obj:
		var out obj
		for _, fl := range t {
			var next [][]string
			for _, p := range pats {
				next = append(next, advance(p, fl.k)...)
			}
			if len(next) == 0 {
				continue
			}
			if fv, ok := filterValue(fl.v, next); ok {
				out = append(out, field{fl.k, fv})
			}
		}
		return out, len(out) > 0
	case []any:
		var out []any
		for _, e := range t {
			if fv, ok := filterValue(e, pats); ok {
				out = append(out, fv)
			}
		}
		return out, len(out) > 0
	default:
		return nil, false // a scalar where the pattern wants to go deeper
	}
}

// advance returns the rest of pattern p after matching one field named k (several results for
// ** which may match zero or more levels).
func advance(p []string, k string) [][]string {
	if p[0] == "**" {
		var out [][]string
		out = append(out, p) // ** keeps matching deeper
		if len(p) > 1 {
			if ok, _ := path.Match(p[1], k); ok || p[1] == k {
				out = append(out, p[2:])
			}
		} else {
			out = append(out, p[1:])
		}
		return out
	}
	if ok, _ := path.Match(p[0], k); ok || p[0] == k {
		return [][]string{p[1:]}
	}
	return nil
}

func appendJSON(dst []byte, v any) []byte {
	switch t := v.(type) {
	case obj:
		dst = append(dst, '{')
		for i, f := range t {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendQuoted(dst, f.k)
			dst = append(dst, ':')
			dst = appendJSON(dst, f.v)
		}
		return append(dst, '}')
	case []any:
		dst = append(dst, '[')
		for i, e := range t {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSON(dst, e)
		}
		return append(dst, ']')
	case string:
		return appendQuoted(dst, t)
	case int:
		return strconv.AppendInt(dst, int64(t), 10)
	case int64:
		return strconv.AppendInt(dst, t, 10)
	case bool:
		return strconv.AppendBool(dst, t)
	case nil:
		return append(dst, "null"...)
	default:
		panic("bulk: unsupported response value")
	}
}

func appendQuoted(dst []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c == '\n':
			dst = append(dst, '\\', 'n')
		case c == '\r':
			dst = append(dst, '\\', 'r')
		case c == '\t':
			dst = append(dst, '\\', 't')
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		case c < utf8.RuneSelf:
			dst = append(dst, c)
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				dst = append(dst, "\ufffd"...)
			} else {
				dst = append(dst, s[i:i+size]...)
			}
			i += size
			continue
		}
		i++
	}
	return append(dst, '"')
}

// errorObj is OpenSearch's error object: type, reason and optional extra fields.
func errorObj(typ, reason string, extra ...field) obj {
	o := obj{{"type", typ}, {"reason", reason}}
	return append(o, extra...)
}

// requestError is the body of a whole-request failure: {"error":{"root_cause":[...],...},"status":N}.
func requestError(status int, typ, reason string) []byte {
	root := errorObj(typ, reason)
	body := obj{
		{"error", append(obj{{"root_cause", []any{root}}}, errorObj(typ, reason)...)},
		{"status", status},
	}
	return appendJSON(nil, body)
}
