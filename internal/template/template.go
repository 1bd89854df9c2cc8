// Package template turns one template string into a log group, log stream or index name per
// record. A template is compiled once (at Init) and rendered per record into a caller's buffer
// without allocating; the result is then made valid for its destination by the sanitizers in
// sanitize.go, and Namer (namer.go) applies the fallbacks of SPEC.md.
//
// The language, in one string:
//
//	$key  $key['a']["b"]  $key[0]   Fluent Bit record accessor; a bare key is [A-Za-z_][A-Za-z0-9_]*
//	$TAG  $TAG[n]                   the tag, or its n-th part (split on '.', from 0)
//	$(key) $(key['a']) $(a.b)       AWS Go plugin form: the text up to '[' or ')' is one key, as is
//	$(tag) $(tag[n])                ("a.b" is the key "a.b", not a path)
//	%Y %m %d %H  %%                 record time in UTC; a literal percent sign
//	$LOG_GROUP $LOG_STREAM          index templates only: the final group / stream, Lambda style
//
// A '$' that does not start one of the forms above (end of text, a digit, a space, '-', ...) is
// literal text, and any character may follow a variable: "$a/$b-$c" is three variables.
package template

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/cwos/cloudwatch-opensearch/internal/event"
)

// Kind says which name a template renders; it picks the sanitizer and allowed variables.
type Kind int

const (
	Group Kind = iota
	Stream
	Index
)

// String names the kind by its config key, as messages to users do.
func (k Kind) String() string {
	switch k {
	case Group:
		return "log_group_template"
	case Stream:
		return "log_stream_template"
	case Index:
		return "index_template"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// MaxTagIndex bounds n in $TAG[n] and $key[n]; larger numbers are compile errors.
const MaxTagIndex = 1 << 16

type opKind uint8

const (
	opLit       opKind = iota // literal text
	opKey                     // record value at path
	opTag                     // the whole tag
	opTagPart                 // tag part n
	opYear                    // %Y
	opMonth                   // %m
	opDay                     // %d
	opHour                    // %H
	opLogGroup                // $LOG_GROUP, Lambda-transformed
	opLogStream               // $LOG_STREAM, Lambda-transformed
)

type op struct {
	kind opKind
	lit  string           // opLit: the text
	path []event.PathElem // opKey
	n    int              // opTagPart
	src  string           // the variable as written, for messages
	col  int              // 1-based column of the variable
}

// Template is a compiled template. It is immutable and safe for concurrent use.
type Template struct {
	src      string
	kind     Kind
	ops      []op
	usesTime bool
	group    bool // uses $LOG_GROUP
	stream   bool // uses $LOG_STREAM
	lits     []litSpan
}

// litSpan is literal text and the byte offset in src where it was written.
type litSpan struct {
	at   int
	text string
}

// Source returns the text the template was compiled from.
func (t *Template) Source() string { return t.src }

// Kind returns the name the template renders.
func (t *Template) Kind() Kind { return t.kind }

// UsesLogGroup reports whether the template reads $LOG_GROUP (the config needs a group then).
func (t *Template) UsesLogGroup() bool { return t.group }

// UsesLogStream reports whether the template reads $LOG_STREAM.
func (t *Template) UsesLogStream() bool { return t.stream }

// Vars returns the variables of the template as written, in order ("$kubernetes['pod_name']",
// "%Y", ...), for tools that explain a template.
func (t *Template) Vars() []string {
	var out []string
	for _, o := range t.ops {
		if o.kind != opLit {
			out = append(out, o.src)
		}
	}
	return out
}

// SyntaxError is a template that does not compile. Column is 1-based and counts characters.
type SyntaxError struct {
	Template string
	Column   int
	Msg      string
}

func (e *SyntaxError) Error() string { return fmt.Sprintf("column %d: %s", e.Column, e.Msg) }

// Compile parses src for the given kind. Errors are *SyntaxError.
func Compile(src string, kind Kind) (*Template, error) {
	if kind != Group && kind != Stream && kind != Index {
		return nil, fmt.Errorf("template: unknown kind %d", int(kind))
	}
	p := parser{src: src, kind: kind}
	t, err := p.parse()
	if err != nil {
		return nil, err
	}
	return t, nil
}

// MustCompile is Compile for templates known to be valid (defaults, tests); it panics on error.
func MustCompile(src string, kind Kind) *Template {
	t, err := Compile(src, kind)
	if err != nil {
		panic("template: " + strconv.Quote(src) + ": " + err.Error())
	}
	return t
}

type parser struct {
	src  string
	kind Kind
	t    *Template
	lit  strings.Builder
}

func (p *parser) errorf(at int, format string, args ...any) error {
	return &SyntaxError{Template: p.src, Column: p.col(at), Msg: fmt.Sprintf(format, args...)}
}

// col converts a byte offset to a 1-based character column.
func (p *parser) col(at int) int {
	if at > len(p.src) {
		at = len(p.src)
	}
	return utf8.RuneCountInString(p.src[:at]) + 1
}

func (p *parser) flushLit() {
	if p.lit.Len() == 0 {
		return
	}
	s := p.lit.String()
	p.lit.Reset()
	// Merge with a previous literal (e.g. "%%" splits text) so rendering copies once.
	if n := len(p.t.ops); n > 0 && p.t.ops[n-1].kind == opLit {
		p.t.ops[n-1].lit += s
		return
	}
	p.t.ops = append(p.t.ops, op{kind: opLit, lit: s})
}

func (p *parser) add(o op) {
	p.flushLit()
	p.t.ops = append(p.t.ops, o)
}

func (p *parser) parse() (*Template, error) {
	p.t = &Template{src: p.src, kind: p.kind}
	if p.src == "" {
		return nil, p.errorf(0, "empty template")
	}
	s := p.src
	i := 0
	for i < len(s) {
		c := s[i]
		switch c {
		case '%':
			if i+1 >= len(s) {
				return nil, p.errorf(i, `"%%" at the end: write %%%% for a percent sign`)
			}
			k := opLit
			switch s[i+1] {
			case 'Y':
				k = opYear
			case 'm':
				k = opMonth
			case 'd':
				k = opDay
			case 'H':
				k = opHour
			case '%':
				p.lit.WriteByte('%')
				p.t.lits = append(p.t.lits, litSpan{at: i, text: "%"})
				i += 2
				continue
			default:
				r, _ := utf8.DecodeRuneInString(s[i+1:])
				return nil, p.errorf(i, "unsupported time directive %q: use %%Y, %%m, %%d, %%H (UTC) or %%%% for a percent sign", "%"+string(r))
			}
			p.t.usesTime = true
			p.add(op{kind: k, src: s[i : i+2], col: p.col(i)})
			i += 2
		case '$':
			n, err := p.dollar(i)
			if err != nil {
				return nil, err
			}
			if n == 0 { // literal '$'
				p.lit.WriteByte('$')
				p.t.lits = append(p.t.lits, litSpan{at: i, text: "$"})
				i++
				continue
			}
			i += n
		default:
			// Copy a run of plain text at once.
			j := i + 1
			for j < len(s) && s[j] != '%' && s[j] != '$' {
				j++
			}
			p.lit.WriteString(s[i:j])
			p.t.lits = append(p.t.lits, litSpan{at: i, text: s[i:j]})
			i = j
		}
	}
	p.flushLit()
	return p.t, nil
}

func isKeyStart(c byte) bool { return c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isKeyChar(c byte) bool  { return isKeyStart(c) || '0' <= c && c <= '9' }

// dollar parses the variable starting at s[at] == '$' and returns its length; 0 means the '$'
// is literal text.
func (p *parser) dollar(at int) (int, error) {
	s := p.src
	if at+1 >= len(s) {
		return 0, nil
	}
	if s[at+1] == '(' {
		return p.paren(at)
	}
	if !isKeyStart(s[at+1]) {
		return 0, nil
	}
	j := at + 1
	for j < len(s) && isKeyChar(s[j]) {
		j++
	}
	name := s[at+1 : j]
	subs, end, err := p.subscripts(j)
	if err != nil {
		return 0, err
	}
	src := s[at:end]
	col := p.col(at)
	switch name {
	case "TAG":
		return end - at, p.tagOp(at, src, col, subs)
	case "LOG_GROUP", "LOG_STREAM":
		if p.kind != Index {
			return 0, p.errorf(at, "$%s is only available in index_template (write $(%s) for a record key of that name)", name, name)
		}
		if len(subs) > 0 {
			return 0, p.errorf(j, "$%s takes no subscript", name)
		}
		if name == "LOG_GROUP" {
			p.t.group = true
			p.add(op{kind: opLogGroup, src: src, col: col})
		} else {
			p.t.stream = true
			p.add(op{kind: opLogStream, src: src, col: col})
		}
		return end - at, nil
	}
	path := append([]event.PathElem{{Key: name}}, subs...)
	p.add(op{kind: opKey, path: path, src: src, col: col})
	return end - at, nil
}

// paren parses $( ... ) starting at s[at] == '$'.
func (p *parser) paren(at int) (int, error) {
	s := p.src
	start := at + 2
	j := start
	for j < len(s) && s[j] != '[' && s[j] != ')' {
		j++
	}
	if j >= len(s) {
		return 0, p.errorf(at, `unterminated "$(": missing ")"`)
	}
	name := s[start:j]
	if name == "" {
		if s[j] == ')' {
			return 0, p.errorf(at, `empty "$()": write a key or tag inside, e.g. $(kubernetes['pod_name'])`)
		}
		return 0, p.errorf(j, `missing key before "[" in "$(...)"`)
	}
	subs, end, err := p.subscripts(j)
	if err != nil {
		return 0, err
	}
	if end >= len(s) {
		return 0, p.errorf(at, `unterminated "$(": missing ")"`)
	}
	if s[end] != ')' {
		return 0, p.errorf(end, `expected ")" or "[" after %q in "$(...)"`, s[at:end])
	}
	end++
	src := s[at:end]
	col := p.col(at)
	if name == "tag" {
		return end - at, p.tagOp(at, src, col, subs)
	}
	path := append([]event.PathElem{{Key: name}}, subs...)
	p.add(op{kind: opKey, path: path, src: src, col: col})
	return end - at, nil
}

func (p *parser) tagOp(at int, src string, col int, subs []event.PathElem) error {
	switch {
	case len(subs) == 0:
		p.add(op{kind: opTag, src: src, col: col})
	case len(subs) == 1 && subs[0].IsIndex:
		p.add(op{kind: opTagPart, n: subs[0].Index, src: src, col: col})
	default:
		return p.errorf(at, "%s: the tag takes one index such as [0], not a key", src)
	}
	return nil
}

// subscripts parses zero or more ['key'], ["key"] or [n] starting at s[at].
func (p *parser) subscripts(at int) ([]event.PathElem, int, error) {
	s := p.src
	var out []event.PathElem
	i := at
	for i < len(s) && s[i] == '[' {
		j := i + 1
		if j >= len(s) {
			return nil, 0, p.errorf(i, `unterminated "[": missing "]"`)
		}
		switch q := s[j]; {
		case q == '\'' || q == '"':
			k := strings.IndexByte(s[j+1:], q)
			if k < 0 {
				return nil, 0, p.errorf(j, "unterminated quoted key: missing %c", q)
			}
			key := s[j+1 : j+1+k]
			e := j + 1 + k + 1
			if e >= len(s) || s[e] != ']' {
				return nil, 0, p.errorf(e, `expected "]" after the quoted key %c%s%c`, q, key, q)
			}
			out = append(out, event.PathElem{Key: key})
			i = e + 1
		case '0' <= q && q <= '9':
			e := j
			for e < len(s) && '0' <= s[e] && s[e] <= '9' {
				e++
			}
			n, err := strconv.Atoi(s[j:e])
			if err != nil || n > MaxTagIndex {
				return nil, 0, p.errorf(j, "index %s is too large (at most %d)", s[j:e], MaxTagIndex)
			}
			if e >= len(s) || s[e] != ']' {
				return nil, 0, p.errorf(e, `expected "]" after the index %s`, s[j:e])
			}
			out = append(out, event.PathElem{Index: n, IsIndex: true})
			i = e + 1
		default:
			return nil, 0, p.errorf(i, `expected a quoted key ('name') or an index (0) after "["`)
		}
	}
	return out, i, nil
}

// Notes lists the literal characters of the template that its destination's sanitizer will
// change, each once, with its column, so a user sees the real name before deploying:
//
//	column 23: " " becomes "-" (a log group name allows only A-Z a-z 0-9 . - _ / #)
func (t *Template) Notes() []string {
	var out []string
	seen := map[rune]bool{}
	for _, l := range t.lits {
		for off, r := range l.text {
			at := l.at + off
			if seen[r] {
				continue
			}
			col := utf8.RuneCountInString(t.src[:at]) + 1
			note := ""
			switch t.kind {
			case Group:
				if r >= utf8.RuneSelf || !groupChar(byte(r)) {
					note = fmt.Sprintf("%q becomes \"-\" (a log group name allows only A-Z a-z 0-9 . - _ / #)", string(r))
				}
			case Stream:
				if r == ':' || r == '*' || r == utf8.RuneError {
					note = fmt.Sprintf("%q becomes \"-\" (a log stream name cannot contain : or *)", string(r))
				}
			case Index:
				switch {
				case r == utf8.RuneError || indexForbidden(r):
					note = fmt.Sprintf("%q becomes \"-\" (an index name cannot contain \\ / * ? \" < > | , # : or spaces)", string(r))
				case unicode.ToLower(r) != r:
					note = fmt.Sprintf("%q becomes %q (index names are lowercase)", string(r), string(unicode.ToLower(r)))
				}
			}
			if note == "" {
				continue
			}
			if r == '$' {
				note += "; a \"$\" not followed by a key, TAG or ( is literal text"
			}
			seen[r] = true
			out = append(out, fmt.Sprintf("column %d: %s", col, note))
		}
	}
	if t.kind == Index && len(t.ops) > 0 && t.ops[0].kind == opLit {
		if c := t.ops[0].lit[0]; c == '-' || c == '_' || c == '+' {
			out = append(out, fmt.Sprintf("column 1: a leading %q is removed (index names cannot start with - _ +)", string(c)))
		}
	}
	return out
}
