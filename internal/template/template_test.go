package template

import (
	"bytes"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

var testRecord = rec(m{
	{"log", "hello"},
	{"kubernetes", m{
		{"namespace_name", "aws-awssdk"},
		{"container_name", "iam-dev"},
		{"pod_name", "iam-7d9f"},
		{"labels", m{{"app.kubernetes.io/name", "iam"}}},
		{"host", nil},
	}},
	{"n", 42}, {"neg", -7}, {"big", uint64(1<<63 + 5)}, {"f", 1.5}, {"f32", float32(0.1)},
	{"t", true}, {"fa", false}, {"nul", nil}, {"arr", []any{"a0", 1}}, {"empty", ""}, {"b", bin("raw")},
	{"a.b", "dotted"}, {"my-key", "dash"}, {"tag", "record-tag-key"}, {"TAG", "record-TAG-key"},
	{"LOG_GROUP", "rec-lg"}, {"dup", "first"}, {"dup", "last"},
})

const testTag = "kube.var.log.containers.iam-7d9f_aws-awssdk_iam-dev-abc.log"

// 2023-02-22 08:00 in Seoul is 2023-02-21 23:00 UTC: names use UTC.
var testTime = time.Date(2023, 2, 22, 8, 0, 0, 0, time.FixedZone("KST", 9*3600))

func TestRender(t *testing.T) {
	in := &Input{Record: testRecord, Time: testTime, Tag: testTag}
	for _, tc := range []struct {
		src     string
		want    string
		missing string
	}{
		// Record accessor.
		{"$log", "hello", ""},
		{"$kubernetes['namespace_name']", "aws-awssdk", ""},
		{`$kubernetes["container_name"]`, "iam-dev", ""},
		{"$kubernetes['labels']['app.kubernetes.io/name']", "iam", ""},
		{"$arr[0]", "a0", ""},
		{"$arr[1]", "1", ""},
		{"$dup", "last", ""},
		// Value types.
		{"$n", "42", ""},
		{"$neg", "-7", ""},
		{"$big", "9223372036854775813", ""},
		{"$f", "1.5", ""},
		{"$f32", "0.1", ""},
		{"$t/$fa", "true/false", ""},
		{"$b", "raw", ""},
		{"[$empty]", "[]", ""},
		// Missing values: the name falls back.
		{"x$arr[2]", "", "$arr[2]"},
		{"$nul", "", "$nul"},
		{"$arr", "", "$arr"},
		{"$kubernetes", "", "$kubernetes"},
		{"a-$nope-b", "", "$nope"},
		{"$kubernetes['host']", "", "$kubernetes['host']"},
		{"$log['x']", "", "$log['x']"},
		{"$n-$TAG[6]-$nope", "", "$TAG[6]"},
		// Tag.
		{"$TAG", testTag, ""},
		{"$TAG[0]/$TAG[5]", "kube/log", ""},
		{"$(tag)", testTag, ""},
		{"$(tag[4])", "iam-7d9f_aws-awssdk_iam-dev-abc", ""},
		{"$tag", "record-tag-key", ""}, // a bare lowercase key is a record key
		{"$(TAG)", "record-TAG-key", ""},
		// AWS Go plugin form.
		{"$(kubernetes['pod_name'])", "iam-7d9f", ""},
		{"$(a.b)", "dotted", ""},
		{"$(my-key)", "dash", ""},
		{"$(LOG_GROUP)", "rec-lg", ""},
		// Time, UTC.
		{"%Y.%m.%d-%H", "2023.02.21-23", ""},
		{"100%%", "100%", ""},
		{"%%Y", "%Y", ""},
		// Any character after a variable; '$' without a variable start is literal.
		{"$n/$t-$log", "42/true-hello", ""},
		{"$log.$n", "hello.42", ""},
		{"$n$n", "4242", ""},
		{"$$log", "$hello", ""},
		{"cost $5", "cost $5", ""},
		{"end$", "end$", ""},
		{"$ x $-", "$ x $-", ""},
		{"${X}", "${X}", ""},
		{"é-$log", "é-hello", ""},
		// The seed.
		{"/aws/containerinsights/bys-dev-eks-main.$kubernetes['namespace_name'].$kubernetes['container_name']",
			"/aws/containerinsights/bys-dev-eks-main.aws-awssdk.iam-dev", ""},
	} {
		tpl, err := Compile(tc.src, Group)
		if err != nil {
			t.Errorf("Compile(%q): %v", tc.src, err)
			continue
		}
		got, missing := tpl.Render([]byte("pre:"), in)
		want := "pre:" + tc.want
		if tc.missing != "" {
			want = "pre:" // dst unchanged
		}
		if string(got) != want || missing != tc.missing {
			t.Errorf("Render(%q) = %q, missing %q; want %q, missing %q", tc.src, got, missing, want, tc.missing)
		}
	}
}

func TestRenderIndexVars(t *testing.T) {
	tpl := MustCompile("cwl$LOG_GROUP-%Y.%m.%d", Index)
	if !tpl.UsesLogGroup() || tpl.UsesLogStream() {
		t.Error("UsesLogGroup / UsesLogStream")
	}
	if got := tpl.Vars(); !reflect.DeepEqual(got, []string{"$LOG_GROUP", "%Y", "%m", "%d"}) {
		t.Errorf("Vars = %q", got)
	}
	in := &Input{Time: testTime, Group: "/aws/containerinsights/Bys.x", Stream: "Host/a.b"}
	if got, miss := tpl.Render(nil, in); string(got) != "cwl-aws-containerinsights-bys-x-2023.02.21" || miss != "" {
		t.Errorf("got %q %q", got, miss)
	}
	s := MustCompile("$LOG_STREAM", Index)
	if got, _ := s.Render(nil, in); string(got) != "host-a-b" || !s.UsesLogStream() {
		t.Errorf("$LOG_STREAM = %q", got)
	}
	in.Group = ""
	if got, miss := tpl.Render(nil, in); len(got) != 0 || miss != "$LOG_GROUP" {
		t.Errorf("empty group: %q %q", got, miss)
	}
}

func TestTimeFormats(t *testing.T) {
	tpl := MustCompile("%Y-%m-%d %H", Group)
	for _, tc := range []struct {
		t    time.Time
		want string
	}{
		{time.Date(2023, 12, 31, 23, 59, 59, 999999999, time.UTC), "2023-12-31 23"},
		{time.Date(999, 1, 2, 3, 0, 0, 0, time.UTC), "0999-01-02 03"},
		{time.Date(12345, 1, 2, 3, 0, 0, 0, time.UTC), "12345-01-02 03"},
		{time.Unix(0, 0), "1970-01-01 00"},
	} {
		if got, _ := tpl.Render(nil, &Input{Time: tc.t}); string(got) != tc.want {
			t.Errorf("%v: %q, want %q", tc.t, got, tc.want)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	for _, tc := range []struct {
		src  string
		kind Kind
		col  int
		msg  string
	}{
		{"", Group, 1, "empty template"},
		{"abc%", Group, 4, `"%" at the end: write %% for a percent sign`},
		{"%M", Group, 1, `unsupported time directive "%M"`},
		{"x%é", Group, 2, `unsupported time directive "%é"`},
		{"é%M", Group, 2, `unsupported time directive "%M"`}, // columns count characters
		{"/aws/$(kubernetes", Group, 6, `unterminated "$(": missing ")"`},
		{"$()", Group, 1, `empty "$()"`},
		{"$(['a'])", Group, 3, `missing key before "["`},
		{"$(a['b']x)", Group, 9, `expected ")" or "[" after "$(a['b']"`},
		{"$(a['b']", Group, 1, `unterminated "$("`},
		{"$a['b", Group, 4, "unterminated quoted key: missing '"},
		{`$a["b`, Group, 4, `unterminated quoted key: missing "`},
		{"$a['b'x", Group, 7, `expected "]" after the quoted key 'b'`},
		{"$a[x]", Group, 3, `expected a quoted key ('name') or an index (0) after "["`},
		{"$a[", Group, 3, `unterminated "["`},
		{"$a[1", Group, 5, `expected "]" after the index 1`},
		{"$a[99999999]", Group, 4, "index 99999999 is too large"},
		{"$TAG['x']", Group, 1, "$TAG['x']: the tag takes one index such as [0], not a key"},
		{"$TAG[0][1]", Group, 1, "the tag takes one index"},
		{"$(tag['x'])", Stream, 1, "the tag takes one index"},
		{"$LOG_GROUP", Group, 1, "$LOG_GROUP is only available in index_template (write $(LOG_GROUP) for a record key of that name)"},
		{"x$LOG_STREAM", Stream, 2, "$LOG_STREAM is only available in index_template"},
		{"$LOG_GROUP[0]", Index, 11, "$LOG_GROUP takes no subscript"},
	} {
		_, err := Compile(tc.src, tc.kind)
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("Compile(%q) err = %v, want *SyntaxError", tc.src, err)
			continue
		}
		if se.Template != tc.src || se.Column != tc.col || !strings.Contains(se.Msg, tc.msg) {
			t.Errorf("Compile(%q) = %+v; want column %d, msg containing %q", tc.src, se, tc.col, tc.msg)
		}
		if want := "column " + strconv.Itoa(tc.col) + ": " + se.Msg; err.Error() != want {
			t.Errorf("Error() = %q, want %q", err.Error(), want)
		}
	}
	if _, err := Compile("x", Kind(7)); err == nil {
		t.Error("unknown kind accepted")
	}
}

func TestKindString(t *testing.T) {
	if Group.String() != "log_group_template" || Stream.String() != "log_stream_template" || Index.String() != "index_template" {
		t.Error("Kind.String")
	}
}

func TestNotes(t *testing.T) {
	for _, tc := range []struct {
		src  string
		kind Kind
		want []string
	}{
		{seedTemplate, Group, nil},
		{LambdaIndex, Index, nil},
		{"/aws/my app/$x/ns:$y 100%%", Group, []string{
			`column 8: " " becomes "-" (a log group name allows only A-Z a-z 0-9 . - _ / #)`,
			`column 18: ":" becomes "-" (a log group name allows only A-Z a-z 0-9 . - _ / #)`,
			`column 25: "%" becomes "-" (a log group name allows only A-Z a-z 0-9 . - _ / #)`,
		}},
		{"cost-$-é", Group, []string{
			`column 6: "$" becomes "-" (a log group name allows only A-Z a-z 0-9 . - _ / #); a "$" not followed by a key, TAG or ( is literal text`,
			`column 8: "é" becomes "-" (a log group name allows only A-Z a-z 0-9 . - _ / #)`,
		}},
		{"$TAG:*x", Stream, []string{
			`column 5: ":" becomes "-" (a log stream name cannot contain : or *)`,
			`column 6: "*" becomes "-" (a log stream name cannot contain : or *)`,
		}},
		{"_Logs $x-%Y", Index, []string{
			`column 2: "L" becomes "l" (index names are lowercase)`,
			`column 6: " " becomes "-" (an index name cannot contain \ / * ? " < > | , # : or spaces)`,
			`column 1: a leading "_" is removed (index names cannot start with - _ +)`,
		}},
	} {
		got := MustCompile(tc.src, tc.kind).Notes()
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Notes(%q)\n got %q\nwant %q", tc.src, got, tc.want)
		}
	}
}

// TestAppendLambdaWords: the eight-bytes-at-a-time AppendLambda equals the byte rule for every
// byte value at every position of the word and the tail, after any dst.
func TestAppendLambdaWords(t *testing.T) {
	ref := func(dst []byte, name string) []byte {
		for i := 0; i < len(name); i++ {
			c := name[i]
			switch {
			case c == '/' || c == '.':
				c = '-'
			case 'A' <= c && c <= 'Z':
				c += 'a' - 'A'
			}
			dst = append(dst, c)
		}
		return dst
	}
	var names []string
	for c := 0; c < 256; c++ {
		for _, pad := range []string{"", "x", "AbCdEfG", "/aws/Containerinsights/Demo.app"} {
			names = append(names, pad+string([]byte{byte(c)})+"Z/.a@[`{\x80\xff")
			names = append(names, string([]byte{byte(c), byte(c), byte(c), byte(c), byte(c), byte(c), byte(c), byte(c), byte(c)})+pad)
		}
	}
	names = append(names, "", "/", "ABCDEFGH", "/aws/containerinsights/Demo.payments.aws-node", "주문/Ünïcode.NAME")
	for _, name := range names {
		for _, dst := range [][]byte{nil, []byte("cwl"), make([]byte, 3, 100)} {
			want := ref(append([]byte(nil), dst...), name)
			if got := AppendLambda(dst, name); !bytes.Equal(got, want) {
				t.Fatalf("AppendLambda(%q, %q) = %q, want %q", dst, name, got, want)
			}
		}
	}
}
