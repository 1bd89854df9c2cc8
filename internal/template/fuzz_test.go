package template

import (
	"errors"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/cwos/cloudwatch-opensearch/internal/event"
)

func FuzzCompile(f *testing.F) {
	for _, s := range []string{seedTemplate, LambdaIndex, "$(tag[2])-%H", "$a['b'][0]", "$(", "%", "$TAG[", "é$x%%"} {
		f.Add(s, uint8(0))
		f.Add(s, uint8(2))
	}
	f.Fuzz(func(t *testing.T, src string, k uint8) {
		kind := Kind(k % 3)
		tpl, err := Compile(src, kind)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Compile(%q) error %v is not *SyntaxError", src, err)
			}
			if se.Template != src || se.Column < 1 || se.Column > utf8.RuneCountInString(src)+1 {
				t.Fatalf("Compile(%q): bad error %+v", src, se)
			}
			return
		}
		if tpl.Source() != src || tpl.Kind() != kind {
			t.Fatal("Source / Kind")
		}
		in := &Input{Record: testRecord, Time: testTime, Tag: testTag, Group: "/g", Stream: "s"}
		out, missing := tpl.Render(nil, in)
		if missing != "" {
			if len(out) != 0 {
				t.Fatalf("missing %q but wrote %q", missing, out)
			}
			return
		}
		if name := Sanitize(kind, nil, out); len(name) > 0 {
			if err := Valid(kind, string(name)); err != nil {
				t.Fatalf("Compile(%q): %v", src, err)
			}
		}
	})
}

// FuzzNames renders arbitrary templates over arbitrary (possibly malformed) record bytes: no
// panic, and every name is valid for its destination.
func FuzzNames(f *testing.F) {
	f.Add(seedTemplate, "$kubernetes['pod_name']", LambdaIndex, k8s("aws-awssdk", "iam-dev"), seedTag, int64(1677027600))
	f.Add("$log", "$(tag[1]):*", "$LOG_STREAM-%Y", rec(m{{"log", "A b/C"}}), "x.y", int64(-1))
	f.Add("$(x)", "$TAG", "..", []byte{0x81, 0xa1, 'x', 0xdb, 0xff}, "", int64(0))
	f.Fuzz(func(t *testing.T, g, s, i string, record []byte, tag string, unix int64) {
		o := NamerOptions{GroupName: "/fallback", StreamPrefix: "p-"}
		o.Group, _ = Compile(g, Group)
		o.Stream, _ = Compile(s, Stream)
		o.Index, _ = Compile(i, Index)
		if o.Index == nil {
			o.Index = MustCompile(LambdaIndex, Index)
		}
		var sc Scratch
		names := NewNamer(o).Names(&sc, &event.Event{Time: time.Unix(unix%(1<<40), 0).UTC(), Record: record}, tag)
		for k, name := range map[Kind]string{Group: names.Group, Stream: names.Stream, Index: names.Index} {
			if err := Valid(k, name); err != nil {
				t.Fatalf("%v: %v (group %q stream %q index %q)", k, err, g, s, i)
			}
		}
	})
}

func FuzzSanitize(f *testing.F) {
	for _, s := range []string{"/aws/x", "A:b*c", "-_+.", "..", "é\xff\u00a0Σ", string(make([]byte, 600))} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, name []byte) {
		for _, k := range []Kind{Group, Stream, Index} {
			out := Sanitize(k, nil, name)
			if len(out) == 0 {
				if k != Index && len(name) > 0 {
					t.Fatalf("%v: %q sanitized to nothing", k, name)
				}
				continue
			}
			if err := Valid(k, string(out)); err != nil {
				t.Fatalf("%v: %q -> %q: %v", k, name, out, err)
			}
			if again := Sanitize(k, nil, out); string(again) != string(out) {
				t.Fatalf("%v: not idempotent: %q -> %q", k, out, again)
			}
		}
	})
}
