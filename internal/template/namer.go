package template

import (
	"fmt"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/cwos/cloudwatch-opensearch/internal/event"
	"github.com/cwos/cloudwatch-opensearch/internal/report"
)

// Counter names of names that fell back, per name.
const (
	CounterFallbackGroup  = "template_fallback_group"
	CounterFallbackStream = "template_fallback_stream"
	CounterFallbackIndex  = "template_fallback_index"
)

// NamerOptions configures a Namer. Every name is sanitized, so the options may hold any text.
type NamerOptions struct {
	Group        *Template // log_group_template; may be nil
	GroupName    string    // log_group_name: the fallback group ("" when CloudWatch is off)
	Stream       *Template // log_stream_template; may be nil
	StreamName   string    // log_stream_name
	StreamPrefix string    // log_stream_prefix (stream = prefix + tag)
	Index        *Template // index_template; nil when OpenSearch is off (Names.Index is "")

	// Report counts fallbacks (CounterFallback*) and prints one warning per template variable
	// per report.Interval naming the template and the key. May be nil.
	Report *report.Reporter
	Now    func() time.Time // clock for the warning rate limit; nil = time.Now
}

// Namer turns an event into its log group, log stream and index. It is safe for concurrent use;
// per-goroutine state lives in Scratch.
type Namer struct {
	o          NamerOptions
	groupName  string // sanitized fallbacks
	streamName string
	warns      [3][]warnState // per kind, per op of the template, plus one for "empty after sanitizing"

	// indexBy says that the index template reads only the group, the stream and the time (as
	// the default, the Lambda's name, does): its name is then remembered per (group, stream,
	// hour or day) in Scratch.indexes instead of being rendered for every record. 0: it reads
	// more (record values, the tag); else the seconds in one time step (3600 or 86400).
	indexBy int64
}

type warnState struct {
	last       atomic.Int64 // unix ns of the last printed warning
	suppressed atomic.Int64 // fallbacks since then
}

// NewNamer returns a Namer for o.
func NewNamer(o NamerOptions) *Namer {
	if o.Now == nil {
		o.Now = time.Now
	}
	n := &Namer{o: o}
	n.groupName = string(SanitizeGroup(nil, []byte(o.GroupName)))
	n.streamName = string(SanitizeStream(nil, []byte(o.StreamName)))
	for k, t := range []*Template{o.Group, o.Stream, o.Index} {
		if t != nil {
			n.warns[k] = make([]warnState, len(t.ops)+1)
		}
	}
	if t := o.Index; t != nil {
		n.indexBy = 86400
		for _, op := range t.ops {
			switch op.kind {
			case opHour:
				n.indexBy = 3600
			case opKey, opTag, opTagPart:
				n.indexBy = 0 // (a tag may alias memory its caller reuses: not a cache key)
			}
			if n.indexBy == 0 {
				break
			}
		}
	}
	return n
}

// indexKey identifies an index name that depends only on the group, the stream and the time.
// Group and stream are strings that Names made (interned or configured), so equal pointers and
// lengths mean equal text, and the pointers keep that text alive while it is a key.
type indexKey struct {
	group, stream *byte
	gl, sl        int
	step          int64 // floor(unix seconds / Namer.indexBy)
}

// Fallback says which names fell back to their configured default for one record.
type Fallback uint8

// Fallback bits.
const (
	FallbackGroup Fallback = 1 << iota
	FallbackStream
	FallbackIndex
)

// List returns the names that fell back ("group", "stream", "index"), in that order.
func (f Fallback) List() []string {
	out := []string{}
	for i, name := range []string{"group", "stream", "index"} {
		if f&(1<<i) != 0 {
			out = append(out, name)
		}
	}
	return out
}

// String lists the names that fell back, comma-separated ("" when none did).
func (f Fallback) String() string { return strings.Join(f.List(), ",") }

// Names are the three names of one record, sanitized and valid for their destination.
type Names struct {
	Group, Stream, Index string
	Fallback             Fallback
}

// LambdaIndex is the default index template: the names the CloudWatch -> OpenSearch Lambda
// (LogsToElasticsearch) wrote, byte for byte, so cwl-* index patterns and ISM policies keep working.
const LambdaIndex = "cwl$LOG_GROUP-%Y.%m.%d"

// InternLimit bounds a Scratch's intern table; it is emptied when it grows past this.
const InternLimit = 4096

// Scratch holds one goroutine's buffers and intern table. The zero value is ready; reuse it
// across records and flushes so that steady-state naming does not allocate.
type Scratch struct {
	raw, clean []byte
	intern     map[string]string
	// Per slot (Group, Stream, Index): rendered name -> its sanitized, interned form ("" when
	// nothing valid is left). Most records render a name seen before, and a lookup costs less
	// than sanitizing again. Emptied with intern, so equal names stay the same string.
	named [3]map[string]string

	// The last prefix + tag stream: every record of a flush has the same tag.
	streamOf          *Namer
	streamTag, stream string

	// in is the record being named, kept here so that its map index (hundreds of bytes) is not
	// cleared for every record: Names resets what a lookup reads.
	in Input

	// Index names by group, stream and time step (Namer.indexBy), for the Namer indexOf.
	// Emptied with intern.
	indexes map[indexKey]string
	indexOf *Namer
}

// str returns b as a string, the same string for equal bytes while the table is not reset.
func (s *Scratch) str(b []byte) string {
	if v, ok := s.intern[string(b)]; ok {
		return v
	}
	if s.intern == nil {
		s.intern = make(map[string]string, 64)
	} else if len(s.intern) >= InternLimit {
		clear(s.intern)
		for _, m := range s.named {
			clear(m)
		}
		clear(s.indexes)
	}
	v := string(b)
	s.intern[v] = v
	return v
}

// Names computes the names of ev. Rules (SPEC.md): group = template if it renders, else
// log_group_name; stream = template if it renders, else log_stream_name, else prefix + tag;
// index = template if it renders, else the Lambda's name for the group: "cwl" + group
// lowercased with '/' and '.' as '-' + "-YYYY.MM.DD" ("cwl-YYYY.MM.DD" when there is no group).
func (n *Namer) Names(s *Scratch, ev *event.Event, tag string) Names {
	var out Names
	in := &s.in
	in.Record, in.Time, in.Tag, in.Group, in.Stream = ev.Record, ev.Time, tag, "", ""
	in.parentKey, in.parent, in.parentOf = "", event.Value{}, nil

	out.Group = n.groupName
	if t := n.o.Group; t != nil {
		if name, ok := n.render(s, Group, t, in, tag); ok {
			out.Group = name
		} else {
			out.Fallback |= FallbackGroup
		}
	}

	switch {
	case n.o.Stream != nil:
		if name, ok := n.render(s, Stream, n.o.Stream, in, tag); ok {
			out.Stream = name
			break
		}
		out.Fallback |= FallbackStream
		out.Stream = n.defaultStream(s, tag)
	default:
		out.Stream = n.defaultStream(s, tag)
	}

	if t := n.o.Index; t != nil {
		in.Group, in.Stream = out.Group, out.Stream
		var key indexKey
		if n.indexBy != 0 {
			if s.indexOf != n {
				clear(s.indexes)
				s.indexOf = n
			}
			sec := ev.Time.Unix()
			key.step = sec / n.indexBy
			if t.group {
				key.group, key.gl = unsafe.StringData(out.Group), len(out.Group)
			}
			if t.stream {
				key.stream, key.sl = unsafe.StringData(out.Stream), len(out.Stream)
			}
			if sec%n.indexBy < 0 {
				key.step-- // floor for times before 1970
			}
			if name, ok := s.indexes[key]; ok {
				out.Index = name
				return out
			}
		}
		if name, ok := n.render(s, Index, t, in, tag); ok {
			out.Index = name
			if n.indexBy != 0 {
				if s.indexes == nil {
					s.indexes = make(map[indexKey]string, 64)
				} else if len(s.indexes) >= InternLimit {
					clear(s.indexes)
				}
				s.indexes[key] = name
			}
		} else {
			out.Fallback |= FallbackIndex
			s.raw = append(AppendLambda(append(s.raw[:0], "cwl"...), out.Group), '-')
			u := ev.Time.UTC()
			y, m, d := u.Date()
			s.raw = append2(append(append2(append(appendYear(s.raw, y), '.'), int(m)), '.'), d)
			s.clean = SanitizeIndex(s.clean[:0], s.raw)
			out.Index = s.str(s.clean)
		}
	}
	return out
}

func (n *Namer) defaultStream(s *Scratch, tag string) string {
	if n.streamName != "" {
		return n.streamName
	}
	if s.streamOf == n && s.streamTag == tag { // one flush is one tag
		return s.stream
	}
	s.raw = append(append(s.raw[:0], n.o.StreamPrefix...), tag...)
	s.clean = SanitizeStream(s.clean[:0], s.raw)
	s.stream = s.str(s.clean)
	s.streamOf, s.streamTag = n, tag
	return s.stream
}

// render renders t for the name slot, sanitizes and interns; on failure it counts and warns.
// The slot, not t.Kind(), picks the sanitizer, so a misplaced template still gives valid names.
func (n *Namer) render(s *Scratch, slot Kind, t *Template, in *Input, tag string) (string, bool) {
	var miss int
	s.raw, miss = t.render(s.raw[:0], in)
	if miss < 0 {
		name, ok := s.named[slot][string(s.raw)]
		if !ok {
			s.clean = Sanitize(slot, s.clean[:0], s.raw)
			if len(s.clean) > 0 {
				name = s.str(s.clean) // before the store: str may empty the named maps
			}
			m := s.named[slot]
			if m == nil {
				m = make(map[string]string, 64)
				s.named[slot] = m
			} else if len(m) >= InternLimit {
				clear(m)
			}
			m[string(s.raw)] = name
		}
		if name != "" {
			return name, true
		}
		miss = len(t.ops) // the "empty after sanitizing" slot
	}
	n.fallback(slot, t, miss, in, tag)
	return "", false
}

func (n *Namer) fallback(slot Kind, t *Template, miss int, in *Input, tag string) {
	r := n.o.Report
	if r == nil {
		return
	}
	switch slot {
	case Group:
		r.Add(CounterFallbackGroup, 1)
	case Stream:
		r.Add(CounterFallbackStream, 1)
	default:
		r.Add(CounterFallbackIndex, 1)
	}
	w := &n.warns[slot][miss]
	now := n.o.Now().UnixNano()
	last := w.last.Load()
	if last != 0 && now-last < int64(report.Interval) || !w.last.CompareAndSwap(last, now) {
		w.suppressed.Add(1)
		return
	}
	// Slow path: at most once per Interval per variable.
	var why string
	if miss == len(t.ops) {
		why = "the rendered name " + fmt.Sprintf("%q", string(renderAgain(in, t))) + " is empty once made valid"
	} else {
		why = n.describe(t, &t.ops[miss], in)
	}
	msg := fmt.Sprintf("%s %q: %s; tag %q; using %s", slot, t.src, why, tag, n.fallbackText(slot, in, tag))
	if k := w.suppressed.Swap(0); k > 0 {
		msg += fmt.Sprintf(" (%d more since the last message)", k)
	}
	r.Warnf("%s", msg)
}

// renderAgain renders t again (slow path, for the message).
func renderAgain(in *Input, t *Template) []byte {
	b, _ := t.render(nil, in)
	return b
}

// describe says why the value of o is missing.
func (n *Namer) describe(t *Template, o *op, in *Input) string {
	switch o.kind {
	case opTagPart:
		return fmt.Sprintf("%s: the tag has %d parts", o.src, strings.Count(in.Tag, ".")+1)
	case opLogGroup:
		return "$LOG_GROUP is empty: no log group (set log_group_name)"
	case opLogStream:
		return "$LOG_STREAM is empty"
	case opKey:
		for i := 1; i < len(o.path); i++ {
			switch v := event.Lookup(in.Record, o.path[:i]); v.Kind {
			case event.Missing:
				return fmt.Sprintf("%s is absent from the record (it has no %s)", o.src, pathText(o.path[:i]))
			case event.Map, event.Array:
			default:
				return fmt.Sprintf("%s is absent from the record (%s is %s, not a map)", o.src, pathText(o.path[:i]), kindText(v.Kind))
			}
		}
		v := event.Lookup(in.Record, o.path)
		what := "is absent from the record"
		switch v.Kind {
		case event.Nil:
			what = "is null"
		case event.Map:
			what = "is a map, not a value"
		case event.Array:
			what = "is an array, not a value"
		case event.Missing:
		default:
			what = "has no text form"
		}
		return o.src + " " + what
	}
	return o.src + " is missing"
}

func (n *Namer) fallbackText(k Kind, in *Input, tag string) string {
	switch k {
	case Group:
		if n.groupName == "" {
			return "no log group (log_group_name is not set)"
		}
		return fmt.Sprintf("log_group_name %q", n.groupName)
	case Stream:
		if n.streamName != "" {
			return fmt.Sprintf("log_stream_name %q", n.streamName)
		}
		return fmt.Sprintf("log_stream_prefix + tag %q", n.o.StreamPrefix+tag)
	default:
		return "the Lambda index name of the log group (cwl" + string(AppendLambda(nil, in.Group)) + "-%Y.%m.%d)"
	}
}

// pathText writes a path the way the record accessor does: kubernetes['labels'][0].
func pathText(path []event.PathElem) string {
	var b strings.Builder
	for i, e := range path {
		switch {
		case i == 0:
			b.WriteString(e.Key)
		case e.IsIndex:
			fmt.Fprintf(&b, "[%d]", e.Index)
		default:
			fmt.Fprintf(&b, "['%s']", e.Key)
		}
	}
	return b.String()
}

func kindText(k event.Kind) string {
	switch k {
	case event.Nil:
		return "null"
	case event.Bool:
		return "a boolean"
	case event.Int, event.Uint:
		return "an integer"
	case event.Float:
		return "a number"
	case event.String:
		return "a string"
	case event.Binary:
		return "binary"
	}
	return "an extension value"
}
