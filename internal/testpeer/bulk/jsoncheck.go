package bulk

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// maxJSONDepth bounds nesting like OpenSearch's JSON parser limits do (and keeps this recursive
// checker safe on hostile input).
const maxJSONDepth = 1000

// CheckDocument validates a _bulk source line the way OpenSearch's parser would reject it:
// strict RFC 8259 JSON, valid UTF-8, a single object, no trailing bytes, and no key repeated
// in any object (OpenSearch's strict duplicate detection answers "Duplicate field" with a
// mapper_parsing_exception).
func CheckDocument(b []byte) error {
	p := jsonChecker{b: b}
	p.ws()
	if p.i >= len(b) || b[p.i] != '{' {
		return errors.New("source is not a JSON object")
	}
	if err := p.value(0); err != nil {
		return err
	}
	p.ws()
	if p.i != len(b) {
		return fmt.Errorf("unexpected character at offset %d after the document", p.i)
	}
	return nil
}

type jsonChecker struct {
	b []byte
	i int
}

func (p *jsonChecker) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *jsonChecker) fail(what string) error {
	return fmt.Errorf("%s at offset %d", what, p.i)
}

func (p *jsonChecker) value(depth int) error {
	if depth > maxJSONDepth {
		return p.fail("nesting too deep")
	}
	p.ws()
	if p.i >= len(p.b) {
		return p.fail("unexpected end of input")
	}
	switch c := p.b[p.i]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth)
	case c == '"':
		_, err := p.str(false)
		return err
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	default:
		for _, lit := range []string{"true", "false", "null"} {
			if len(p.b)-p.i >= len(lit) && string(p.b[p.i:p.i+len(lit)]) == lit {
				p.i += len(lit)
				return nil
			}
		}
		return p.fail("unexpected character")
	}
}

func (p *jsonChecker) object(depth int) error {
	p.i++ // {
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == '}' {
		p.i++
		return nil
	}
	var small [16]string
	keys := small[:0]
	var seen map[string]struct{} // past 16 keys
	for {
		p.ws()
		if p.i >= len(p.b) || p.b[p.i] != '"' {
			return p.fail("expected a field name")
		}
		key, err := p.str(true)
		if err != nil {
			return err
		}
		dup := false
		if seen != nil {
			_, dup = seen[key]
			seen[key] = struct{}{}
		} else {
			for _, k := range keys {
				dup = dup || k == key
			}
			if keys = append(keys, key); len(keys) == len(small) {
				seen = make(map[string]struct{}, 2*len(small))
				for _, k := range keys {
					seen[k] = struct{}{}
				}
			}
		}
		if dup {
			return fmt.Errorf("Duplicate field '%s'", key)
		}
		p.ws()
		if p.i >= len(p.b) || p.b[p.i] != ':' {
			return p.fail("expected ':'")
		}
		p.i++
		if err := p.value(depth + 1); err != nil {
			return err
		}
		p.ws()
		if p.i >= len(p.b) {
			return p.fail("unexpected end of object")
		}
		switch p.b[p.i] {
		case ',':
			p.i++
		case '}':
			p.i++
			return nil
		default:
			return p.fail("expected ',' or '}'")
		}
	}
}

func (p *jsonChecker) array(depth int) error {
	p.i++ // [
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == ']' {
		p.i++
		return nil
	}
	for {
		if err := p.value(depth + 1); err != nil {
			return err
		}
		p.ws()
		if p.i >= len(p.b) {
			return p.fail("unexpected end of array")
		}
		switch p.b[p.i] {
		case ',':
			p.i++
		case ']':
			p.i++
			return nil
		default:
			return p.fail("expected ',' or ']'")
		}
	}
}

// str reads a string; with decode it returns the unescaped text (for duplicate detection).
func (p *jsonChecker) str(decode bool) (string, error) {
	p.i++ // "
	start := p.i
	var out []byte
	for p.i < len(p.b) {
		c := p.b[p.i]
		if c >= 0x20 && c < utf8.RuneSelf && c != '"' && c != '\\' {
			if out != nil {
				out = append(out, c)
			}
			p.i++
			continue
		}
		switch {
		case c == '"':
			s := p.b[start:p.i]
			p.i++
			if !decode {
				return "", nil
			}
			if out == nil {
				return string(s), nil
			}
			return string(out), nil
		case c < 0x20:
			return "", p.fail("control character in string")
		case c == '\\':
			if decode && out == nil {
				out = append([]byte{}, p.b[start:p.i]...)
			}
			p.i++
			if p.i >= len(p.b) {
				return "", p.fail("unexpected end of string")
			}
			e := p.b[p.i]
			switch e {
			case '"', '\\', '/':
				out = append(out, e)
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				if len(p.b)-p.i < 5 {
					return "", p.fail("short \\u escape")
				}
				v, err := strconv.ParseUint(string(p.b[p.i+1:p.i+5]), 16, 32)
				if err != nil {
					return "", p.fail("bad \\u escape")
				}
				out = utf8.AppendRune(out, rune(v))
				p.i += 4
			default:
				return "", p.fail("bad escape")
			}
			p.i++
		case c < utf8.RuneSelf:
			if out != nil {
				out = append(out, c)
			}
			p.i++
		default:
			r, size := utf8.DecodeRune(p.b[p.i:])
			if r == utf8.RuneError && size == 1 {
				return "", p.fail("invalid UTF-8")
			}
			if out != nil {
				out = append(out, p.b[p.i:p.i+size]...)
			}
			p.i += size
		}
	}
	return "", p.fail("unterminated string")
}

func (p *jsonChecker) number() error {
	b := p.b
	if p.i < len(b) && b[p.i] == '-' {
		p.i++
	}
	switch {
	case p.i < len(b) && b[p.i] == '0':
		p.i++
	case p.i < len(b) && b[p.i] >= '1' && b[p.i] <= '9':
		for p.i < len(b) && b[p.i] >= '0' && b[p.i] <= '9' {
			p.i++
		}
	default:
		return p.fail("bad number")
	}
	if p.i < len(b) && b[p.i] == '.' {
		p.i++
		n := p.i
		for p.i < len(b) && b[p.i] >= '0' && b[p.i] <= '9' {
			p.i++
		}
		if p.i == n {
			return p.fail("bad fraction")
		}
	}
	if p.i < len(b) && (b[p.i] == 'e' || b[p.i] == 'E') {
		p.i++
		if p.i < len(b) && (b[p.i] == '+' || b[p.i] == '-') {
			p.i++
		}
		n := p.i
		for p.i < len(b) && b[p.i] >= '0' && b[p.i] <= '9' {
			p.i++
		}
		if p.i == n {
			return p.fail("bad exponent")
		}
	}
	return nil
}
