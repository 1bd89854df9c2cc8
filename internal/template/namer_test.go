package template

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/cwos/cloudwatch-opensearch/internal/event"
	"github.com/cwos/cloudwatch-opensearch/internal/report"
)

const (
	seedTemplate = "/aws/containerinsights/bys-dev-eks-main.$kubernetes['namespace_name'].$kubernetes['container_name']"
	seedGroup    = "/aws/containerinsights/bys-dev-eks-main"
	seedTag      = "application.var.log.containers.iam-dev-6f7c_aws-awssdk_iam-dev-0123.log"
)

var seedTime = time.Date(2023, 2, 22, 1, 0, 0, 0, time.UTC)

func k8s(ns, container string) []byte {
	var k m
	if ns != "" {
		k = append(k, kv{"namespace_name", ns})
	}
	if container != "" {
		k = append(k, kv{"container_name", container})
	}
	return rec(m{{"log", "GET /healthz 200"}, {"stream", "stdout"}, {"kubernetes", k}})
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newReporter(buf *bytes.Buffer, c *clock) *report.Reporter {
	r := report.New("test", buf)
	r.SetClock(c.now)
	return r
}

// TestSeedNames: the seed's configuration gives the seed's names byte for byte.
func TestSeedNames(t *testing.T) {
	n := NewNamer(NamerOptions{
		Group:        MustCompile(seedTemplate, Group),
		GroupName:    seedGroup,
		StreamPrefix: "ip-10-0-1-23-",
		Index:        MustCompile(LambdaIndex, Index),
	})
	var s Scratch
	got := n.Names(&s, &event.Event{Time: seedTime, Record: k8s("aws-awssdk", "iam-dev")}, seedTag)
	want := Names{
		Group:  "/aws/containerinsights/bys-dev-eks-main.aws-awssdk.iam-dev",
		Stream: "ip-10-0-1-23-" + seedTag,
		Index:  "cwl-aws-containerinsights-bys-dev-eks-main-aws-awssdk-iam-dev-2023.02.22",
	}
	if got != want {
		t.Errorf("seed names\n got %+v\nwant %+v", got, want)
	}
}

func TestNamesFallback(t *testing.T) {
	seed := MustCompile(seedTemplate, Group)
	lambda := MustCompile(LambdaIndex, Index)
	ev := func(r []byte) *event.Event { return &event.Event{Time: seedTime, Record: r} }
	for _, tc := range []struct {
		name string
		o    NamerOptions
		ev   *event.Event
		tag  string
		want Names
	}{
		{
			name: "group key absent: log_group_name, and the index of that group",
			o:    NamerOptions{Group: seed, GroupName: seedGroup, StreamName: "s", Index: lambda},
			ev:   ev(k8s("", "iam-dev")), tag: "t",
			want: Names{Group: seedGroup, Stream: "s", Index: "cwl-aws-containerinsights-bys-dev-eks-main-2023.02.22", Fallback: FallbackGroup},
		},
		{
			name: "group value sanitized, not a fallback",
			o:    NamerOptions{Group: seed, GroupName: seedGroup, StreamName: "s", Index: lambda},
			ev:   ev(k8s("kube system", "Iam:Dev")), tag: "t",
			want: Names{Group: seedGroup + ".kube-system.Iam-Dev", Stream: "s", Index: "cwl-aws-containerinsights-bys-dev-eks-main-kube-system-iam-dev-2023.02.22"},
		},
		{
			name: "stream template missing: log_stream_name",
			o:    NamerOptions{GroupName: "g", Stream: MustCompile("$kubernetes['pod_name']", Stream), StreamName: "fallback", StreamPrefix: "p-"},
			ev:   ev(k8s("ns", "c")), tag: "t",
			want: Names{Group: "g", Stream: "fallback", Fallback: FallbackStream},
		},
		{
			name: "stream template missing, no name: prefix + tag, sanitized",
			o:    NamerOptions{GroupName: "g", Stream: MustCompile("$nope", Stream), StreamPrefix: "host:1-"},
			ev:   ev(k8s("ns", "c")), tag: "kube.*",
			want: Names{Group: "g", Stream: "host-1-kube.-", Fallback: FallbackStream},
		},
		{
			name: "stream template renders",
			o:    NamerOptions{GroupName: "g", Stream: MustCompile("$kubernetes['namespace_name']/$TAG[1]:x", Stream), StreamPrefix: "p-"},
			ev:   ev(k8s("ns", "c")), tag: "a.b.c",
			want: Names{Group: "g", Stream: "ns/b-x"},
		},
		{
			name: "index template missing: the Lambda name of the group",
			o:    NamerOptions{Group: seed, GroupName: seedGroup, StreamPrefix: "p-", Index: MustCompile("logs-$kubernetes['labels']['app']-%Y.%m", Index)},
			ev:   ev(k8s("aws-awssdk", "iam-dev")), tag: "t",
			want: Names{Group: seedGroup + ".aws-awssdk.iam-dev", Stream: "p-t", Index: "cwl-aws-containerinsights-bys-dev-eks-main-aws-awssdk-iam-dev-2023.02.22", Fallback: FallbackIndex},
		},
		{
			name: "index empty once sanitized: falls back",
			o:    NamerOptions{GroupName: "/G", StreamPrefix: "p-", Index: MustCompile("$log", Index)},
			ev:   ev(rec(m{{"log", "-_+"}})), tag: "t",
			want: Names{Group: "/G", Stream: "p-t", Index: "cwl-g-2023.02.22", Fallback: FallbackIndex},
		},
		{
			name: "index template sanitized",
			o:    NamerOptions{GroupName: "g", StreamPrefix: "p-", Index: MustCompile("_Logs $LOG_STREAM %Y", Index)},
			ev:   ev(rec(m{})), tag: "App.X",
			want: Names{Group: "g", Stream: "p-App.X", Index: "logs-p-app-x-2023"},
		},
		{
			name: "CloudWatch off, no group at all: cwl-YYYY.MM.DD",
			o:    NamerOptions{Index: lambda},
			ev:   ev(rec(m{})), tag: "t",
			want: Names{Stream: "t", Index: "cwl-2023.02.22", Fallback: FallbackIndex},
		},
		{
			name: "CloudWatch off, group template fails without log_group_name",
			o:    NamerOptions{Group: seed, Index: lambda},
			ev:   ev(rec(m{})), tag: "t",
			want: Names{Stream: "t", Index: "cwl-2023.02.22", Fallback: FallbackGroup | FallbackIndex},
		},
		{
			name: "OpenSearch off: no index",
			o:    NamerOptions{Group: seed, GroupName: seedGroup, StreamName: "s"},
			ev:   ev(k8s("a", "b")), tag: "t",
			want: Names{Group: seedGroup + ".a.b", Stream: "s"},
		},
		{
			name: "configured names are sanitized too",
			o:    NamerOptions{GroupName: "/my group", StreamName: "a:b", Index: lambda},
			ev:   ev(rec(m{})), tag: "t",
			want: Names{Group: "/my-group", Stream: "a-b", Index: "cwl-my-group-2023.02.22"},
		},
		{
			name: "long group: cut and hashed, index cut too",
			o:    NamerOptions{Group: MustCompile("/$log", Group), GroupName: "g", StreamName: "s", Index: lambda},
			ev:   ev(rec(m{{"log", strings.Repeat("A", 600)}})), tag: "t",
			want: Names{
				Group:  hashed("/"+strings.Repeat("A", 502), "/"+strings.Repeat("A", 600)),
				Stream: "s",
				Index:  "", // checked below: valid and 255 bytes
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s Scratch
			got := NewNamer(tc.o).Names(&s, tc.ev, tc.tag)
			if tc.want.Index == "" && tc.o.Index != nil {
				if len(got.Index) != MaxIndexLen || !strings.HasPrefix(got.Index, "cwl-aaaa") {
					t.Errorf("long index %q (%d bytes)", got.Index, len(got.Index))
				}
				got.Index = ""
			}
			if got != tc.want {
				t.Errorf("\n got %+v\nwant %+v", got, tc.want)
			}
			for k, name := range map[Kind]string{Group: got.Group, Stream: got.Stream, Index: got.Index} {
				if name != "" {
					if err := Valid(k, name); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
}

func TestFallbackString(t *testing.T) {
	for f, want := range map[Fallback]string{0: "", FallbackGroup: "group", FallbackGroup | FallbackIndex: "group,index", FallbackGroup | FallbackStream | FallbackIndex: "group,stream,index"} {
		if f.String() != want || len(f.List()) != strings.Count(want, ",")+min(1, len(want)) {
			t.Errorf("%d: %q %q", f, f.String(), f.List())
		}
	}
	if FallbackStream.List() == nil || len(Fallback(0).List()) != 0 {
		t.Error("List of no fallback must be an empty, non-nil list (JSON [])")
	}
}

// TestFallbackCountedAndWarned: every fallback is counted; warnings name the template and the
// key, once per variable per report.Interval, with the number suppressed in between.
func TestFallbackCountedAndWarned(t *testing.T) {
	var buf bytes.Buffer
	c := &clock{t: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
	rep := newReporter(&buf, c)
	n := NewNamer(NamerOptions{
		Group: MustCompile(seedTemplate, Group), GroupName: seedGroup, StreamPrefix: "p-",
		Index: MustCompile("x-$kubernetes['labels']", Index), Report: rep, Now: c.now,
	})
	var s Scratch
	names := func(r []byte) { n.Names(&s, &event.Event{Time: seedTime, Record: r}, "kube.a") }

	names(k8s("", "c"))  // warns: namespace absent
	names(k8s("", "c"))  // suppressed
	names(k8s("ns", "")) // another key: warns
	c.t = c.t.Add(report.Interval)
	names(k8s("", "c")) // warns again, with the suppressed count

	if got := rep.Count(CounterFallbackGroup); got != 4 {
		t.Errorf("%s = %d, want 4", CounterFallbackGroup, got)
	}
	if got := rep.Count(CounterFallbackIndex); got != 4 {
		t.Errorf("%s = %d, want 4", CounterFallbackIndex, got)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	var group []string
	for _, l := range lines {
		if strings.Contains(l, "log_group_template") {
			group = append(group, l)
		}
	}
	if len(group) != 3 {
		t.Fatalf("group warnings = %d, want 3:\n%s", len(group), buf.String())
	}
	want0 := `[warn] [output:cloudwatch_opensearch:test] log_group_template "` + seedTemplate + `": $kubernetes['namespace_name'] is absent from the record; tag "kube.a"; using log_group_name "` + seedGroup + `"`
	if !strings.HasSuffix(group[0], want0[len("[warn] "):]) || !strings.Contains(group[0], "[ warn]") {
		t.Errorf("warning\n got %s\nwant ...%s", group[0], want0)
	}
	if !strings.Contains(group[1], "$kubernetes['container_name'] is absent") {
		t.Errorf("second key: %s", group[1])
	}
	if !strings.HasSuffix(group[2], "(1 more since the last message)") {
		t.Errorf("suppressed count missing: %s", group[2])
	}
	var index string
	for _, l := range lines {
		if strings.Contains(l, "index_template") {
			index = l
			break
		}
	}
	if !strings.Contains(index, `$kubernetes['labels'] is absent from the record`) ||
		!strings.Contains(index, `using the Lambda index name of the log group (cwl-aws-containerinsights-bys-dev-eks-main-%Y.%m.%d)`) {
		t.Errorf("index warning: %s", index)
	}
}

func TestFallbackDescribesValue(t *testing.T) {
	for _, tc := range []struct {
		rec  []byte
		src  string
		want string
	}{
		{rec(m{{"k", nil}}), "$k", "$k is null"},
		{rec(m{{"k", m{}}}), "$k", "$k is a map, not a value"},
		{rec(m{{"k", []any{}}}), "$k", "$k is an array, not a value"},
		{rec(m{}), "$TAG[3]", "$TAG[3]: the tag has 2 parts"},
		{rec(m{}), "$(k['a'][0]['b'])", "$(k['a'][0]['b']) is absent from the record (it has no k)"},
		{rec(m{{"k", m{{"a", []any{m{}}}}}}), "$(k['a'][0]['b'])", "$(k['a'][0]['b']) is absent from the record; tag"},
		{rec(m{{"k", m{{"a", []any{}}}}}), "$(k['a'][0]['b'])", "$(k['a'][0]['b']) is absent from the record (it has no k['a'][0])"},
		{rec(m{{"k", "text"}}), "$k['a']", "$k['a'] is absent from the record (k is a string, not a map)"},
		{rec(m{{"k", "::"}}), "$k", `the rendered name "::" is empty once made valid`},
	} {
		var buf bytes.Buffer
		c := &clock{t: time.Unix(1, 0)}
		o := NamerOptions{GroupName: "g", StreamName: "s", Report: newReporter(&buf, c), Now: c.now}
		if strings.Contains(tc.want, "empty once") {
			o.Index = MustCompile(tc.src, Index)
		} else {
			o.Group = MustCompile(tc.src, Group)
		}
		n := NewNamer(o)
		var s Scratch
		n.Names(&s, &event.Event{Time: seedTime, Record: tc.rec}, "a.b")
		if !strings.Contains(buf.String(), tc.want) {
			t.Errorf("%s: %s, want %q", tc.src, buf.String(), tc.want)
		}
	}
}

func TestInterning(t *testing.T) {
	n := NewNamer(NamerOptions{Group: MustCompile(seedTemplate, Group), GroupName: seedGroup, StreamPrefix: "p-", Index: MustCompile(LambdaIndex, Index)})
	var s Scratch
	ev := &event.Event{Time: seedTime, Record: k8s("a", "b")}
	a := n.Names(&s, ev, "tag.one")
	b := n.Names(&s, &event.Event{Time: seedTime, Record: k8s("a", "b")}, "tag.one")
	if unsafe.StringData(a.Group) != unsafe.StringData(b.Group) || unsafe.StringData(a.Stream) != unsafe.StringData(b.Stream) || unsafe.StringData(a.Index) != unsafe.StringData(b.Index) {
		t.Error("equal names are not the same string")
	}
	for i := 0; i < 3*InternLimit; i++ {
		n.Names(&s, ev, fmt.Sprintf("tag.%d", i))
		if len(s.intern) > InternLimit {
			t.Fatalf("intern table grew to %d", len(s.intern))
		}
	}
}

func TestNamesDoNotAllocate(t *testing.T) {
	var buf bytes.Buffer
	c := &clock{t: time.Unix(1, 0)}
	n := NewNamer(NamerOptions{
		Group: MustCompile(seedTemplate, Group), GroupName: seedGroup, StreamPrefix: "ip-10-0-1-23-",
		Index: MustCompile(LambdaIndex, Index), Report: newReporter(&buf, c), Now: c.now,
	})
	var s Scratch
	ok := &event.Event{Time: seedTime, Record: k8s("aws-awssdk", "iam-dev")}
	missing := &event.Event{Time: seedTime, Record: k8s("", "iam-dev")}
	n.Names(&s, ok, seedTag)
	n.Names(&s, missing, seedTag) // first warning allocates; the rest are suppressed
	for name, ev := range map[string]*event.Event{"rendered": ok, "fallback": missing} {
		if a := testing.AllocsPerRun(200, func() { n.Names(&s, ev, seedTag) }); a != 0 {
			t.Errorf("%s: %v allocations per record, want 0", name, a)
		}
	}
}

func TestNamerConcurrent(t *testing.T) {
	n := NewNamer(NamerOptions{Group: MustCompile(seedTemplate, Group), GroupName: seedGroup, StreamPrefix: "p-", Index: MustCompile(LambdaIndex, Index), Report: report.New("t", &bytes.Buffer{})})
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var s Scratch
			for i := 0; i < 500; i++ {
				ns := fmt.Sprintf("ns%d", i%7)
				if i%5 == 0 {
					ns = ""
				}
				got := n.Names(&s, &event.Event{Time: seedTime, Record: k8s(ns, "c")}, "t")
				want := seedGroup + "." + ns + ".c"
				if ns == "" {
					want = seedGroup
				}
				if got.Group != want {
					t.Errorf("group %q, want %q", got.Group, want)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// TestScratchSharedByNamers: a Scratch reused across tags and Namers never returns another's
// stream.
func TestScratchSharedByNamers(t *testing.T) {
	a := NewNamer(NamerOptions{GroupName: "g", StreamPrefix: "a-"})
	b := NewNamer(NamerOptions{GroupName: "g", StreamPrefix: "b-"})
	var s Scratch
	ev := &event.Event{Time: seedTime, Record: rec(m{})}
	for _, tc := range []struct {
		n         *Namer
		tag, want string
	}{{a, "x", "a-x"}, {a, "x", "a-x"}, {b, "x", "b-x"}, {b, "y:z", "b-y-z"}, {a, "y:z", "a-y-z"}} {
		if got := tc.n.Names(&s, ev, tc.tag).Stream; got != tc.want {
			t.Errorf("stream %q, want %q", got, tc.want)
		}
	}
}

// TestMisplacedTemplate: a template compiled for another kind still yields valid names for the
// slot it is given, and never panics.
func TestMisplacedTemplate(t *testing.T) {
	var buf bytes.Buffer
	n := NewNamer(NamerOptions{
		Group: MustCompile("Logs $LOG_GROUP", Index), GroupName: "/g",
		Stream: MustCompile("a:b", Group), Index: MustCompile("/Idx:$x", Stream),
		Report: report.New("t", &buf),
	})
	var s Scratch
	got := n.Names(&s, &event.Event{Time: seedTime, Record: rec(m{{"x", "Y"}})}, "t")
	want := Names{Group: "/g", Stream: "a-b", Index: "idx-y", Fallback: FallbackGroup}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}
