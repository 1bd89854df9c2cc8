package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cwos/cloudwatch-opensearch/internal/config"
	"github.com/cwos/cloudwatch-opensearch/internal/event"
)

const (
	exampleTag = "application.var.log.containers.iam-dev-7c9d8b6f5-x2x9k_aws-awssdk_iam-dev-4f2d9c1b.log"
	stream     = "ip-10-0-1-23-" + exampleTag
)

// seedEnv sets what the DaemonSet would set from the cluster-info ConfigMap.
func seedEnv(t *testing.T) {
	t.Setenv("CLUSTER_NAME", "bys-dev-eks-main")
	t.Setenv("AWS_REGION", "ap-northeast-2")
	t.Setenv("HOST_NAME", "ip-10-0-1-23")
	t.Setenv("OPENSEARCH_ENDPOINT", "https://search-bys-dev-opensearch-eks.ap-northeast-2.es.amazonaws.com")
}

func runCLI(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func lines(s string) []string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func equalLines(t *testing.T, what, got string, want []string) {
	t.Helper()
	g := lines(got)
	if len(g) != len(want) {
		t.Errorf("%s: %d lines, want %d:\n%s", what, len(g), len(want), got)
		return
	}
	for i := range g {
		if g[i] != want[i] {
			t.Errorf("%s line %d\n got %s\nwant %s", what, i+1, g[i], want[i])
		}
	}
}

// The seed's names, byte for byte, for the bundled records, from the classic and the YAML file.
var exampleNames = []string{
	`{"log_group":"/aws/containerinsights/bys-dev-eks-main.aws-awssdk.iam-dev","log_stream":"` + stream + `","index":"cwl-aws-containerinsights-bys-dev-eks-main-aws-awssdk-iam-dev-2023.02.22","fallback":[]}`,
	`{"log_group":"/aws/containerinsights/bys-dev-eks-main.kube-system.coredns","log_stream":"` + stream + `","index":"cwl-aws-containerinsights-bys-dev-eks-main-kube-system-coredns-2023.02.22","fallback":[]}`,
	`{"log_group":"/aws/containerinsights/bys-dev-eks-main.payments.api","log_stream":"` + stream + `","index":"cwl-aws-containerinsights-bys-dev-eks-main-payments-api-2023.02.22","fallback":[]}`,
	`{"log_group":"/aws/containerinsights/bys-dev-eks-main","log_stream":"` + stream + `","index":"cwl-aws-containerinsights-bys-dev-eks-main-2023.02.22","fallback":["group"]}`,
	`{"log_group":"/aws/containerinsights/bys-dev-eks-main.aws-awssdk.iam-dev","log_stream":"` + stream + `","index":"cwl-aws-containerinsights-bys-dev-eks-main-aws-awssdk-iam-dev-2023.02.23","fallback":[]}`,
}

func TestRenderExamples(t *testing.T) {
	seedEnv(t)
	for _, file := range []string{"../../examples/fluent-bit.conf", "../../examples/fluent-bit.yaml"} {
		t.Run(filepath.Ext(file), func(t *testing.T) {
			code, out, errOut := runCLI(t, "", "render", "--config", file, "--records", "../../examples/records.jsonl",
				"--tag", exampleTag, "--time", "2023-02-22T01:00:00Z")
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			equalLines(t, "stdout", out, exampleNames)
			// The fallback of record 4 is warned, naming the template and the key.
			want := `log_group_template "/aws/containerinsights/bys-dev-eks-main.$kubernetes['namespace_name'].$kubernetes['container_name']": ` +
				`$kubernetes['namespace_name'] is absent from the record (it has no kubernetes); tag "` + exampleTag + `"; using log_group_name "/aws/containerinsights/bys-dev-eks-main"`
			if len(lines(errOut)) != 1 || !strings.HasSuffix(errOut, want+"\n") {
				t.Errorf("stderr:\n%s\nwant one warning ending\n%s", errOut, want)
			}
		})
	}
}

func TestRenderOneRecord(t *testing.T) {
	seedEnv(t)
	record := `{"log":"x","kubernetes":{"namespace_name":"aws-awssdk","container_name":"iam-dev"}}`
	want := []string{exampleNames[0]}
	for _, args := range [][]string{
		{"--record", record},
		{"--output", "cwos", "--record", record},
		{"--output", "1", "--records", "-"}, // stdin
		{"--output", "CWOS"},                // stdin by default; aliases ignore case
	} {
		args = append([]string{"render", "--config", "../../examples/fluent-bit.conf", "--tag", exampleTag, "--time", "2023-02-22T10:11:12+09:00"}, args...)
		code, out, errOut := runCLI(t, record+"\n\n", args...)
		if code != 0 || errOut != "" {
			t.Errorf("%q: exit %d: %s", args, code, errOut)
		}
		equalLines(t, strings.Join(args, " "), out, want)
	}
}

func TestRenderNow(t *testing.T) {
	seedEnv(t)
	var out, errb bytes.Buffer
	c := &cli{stdin: strings.NewReader(`{"kubernetes":{"namespace_name":"a","container_name":"b"}}`), stdout: &out, stderr: &errb,
		now: func() time.Time { return time.Date(2031, 12, 30, 23, 0, 0, 0, time.FixedZone("x", -3600)) }, lookupEnv: os.LookupEnv}
	if code := c.run([]string{"render", "--config", "../../examples/fluent-bit.yaml"}); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var l line
	if err := json.Unmarshal(out.Bytes(), &l); err != nil {
		t.Fatal(err)
	}
	// No --time: now, in UTC (already the next day there); no --tag: DefaultTag.
	if *l.Index != "cwl-aws-containerinsights-bys-dev-eks-main-a-b-2031.12.31" || l.LogStream != "ip-10-0-1-23-"+DefaultTag {
		t.Errorf("got %+v index %q", l, *l.Index)
	}
}

func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRenderBadRecords(t *testing.T) {
	seedEnv(t)
	in := `{"kubernetes":{"namespace_name":"a","container_name":"b"}}
{"kubernetes":
["not a record"]
{"kubernetes":{"namespace_name":"c","container_name":"d"}}
`
	code, out, errOut := runCLI(t, in, "render", "--config", "../../examples/fluent-bit.conf", "--tag", "t", "--time", "2023-02-22T00:00:00Z")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	equalLines(t, "stdout", out, []string{
		`{"log_group":"/aws/containerinsights/bys-dev-eks-main.a.b","log_stream":"ip-10-0-1-23-t","index":"cwl-aws-containerinsights-bys-dev-eks-main-a-b-2023.02.22","fallback":[]}`,
		`{"log_group":"/aws/containerinsights/bys-dev-eks-main.c.d","log_stream":"ip-10-0-1-23-t","index":"cwl-aws-containerinsights-bys-dev-eks-main-c-d-2023.02.22","fallback":[]}`,
	})
	equalLines(t, "stderr", errOut, []string{
		"error: stdin:2: invalid JSON: unexpected end",
		"error: stdin:3: expected a record object or [time, record]",
	})
}

func TestRenderOpenSearchOff(t *testing.T) {
	cfg := writeFile(t, "f.conf", `[OUTPUT]
    Name                cloudwatch_opensearch
    Match               *
    region              us-east-1
    opensearch          off
    log_group_name      /fallback
    log_group_template  /app/$TAG[1]/$(kubernetes['namespace_name'])
    log_stream_template $kubernetes['pod_name']
    log_stream_name     default
`)
	code, out, errOut := runCLI(t, `{"kubernetes":{"namespace_name":"Payments NS","pod_name":"api:1"}}`+"\n"+`{"kubernetes":{}}`,
		"render", "--config", cfg, "--tag", "kube.web", "--time", "2023-02-22T00:00:00Z")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	equalLines(t, "stdout", out, []string{
		`{"log_group":"/app/web/Payments-NS","log_stream":"api-1","index":null,"fallback":[]}`,
		`{"log_group":"/fallback","log_stream":"default","index":null,"fallback":["group","stream"]}`,
	})
}

func TestRenderUsageAndLoadErrors(t *testing.T) {
	seedEnv(t)
	two := writeFile(t, "two.yaml", `pipeline:
  outputs:
    - name: cloudwatch_opensearch
      alias: a
      match: '*'
      log_group_name: /a
      log_stream_prefix: a-
      opensearch_endpoint: http://127.0.0.1:9200
    - name: stdout
      match: '*'
    - name: cloudwatch_opensearch
      alias: b
      match: '*'
      log_group_name: /b
      log_stream_prefix: b-
      opensearch_endpoint: http://127.0.0.1:9200
`)
	none := writeFile(t, "none.conf", "[OUTPUT]\n    Name stdout\n")
	bad := writeFile(t, "bad.conf", "[OUTPUT]\n    Name cloudwatch_opensearch\n    Match *\n    region us-east-1\n    log_stream_name s\n    opensearch off\n    log_group_template /x/$(a\n")
	rec := `{"a":1}`
	for _, tc := range []struct {
		args   []string
		code   int
		out    string
		stderr string // prefix of the first line
	}{
		{[]string{}, 2, "", "usage:"},
		{[]string{"frobnicate"}, 2, "", `cwos: unknown command "frobnicate"`},
		{[]string{"help"}, 0, "usage:", ""},
		{[]string{"render", "--nope"}, 2, "", "flag provided but not defined: -nope"},
		{[]string{"render", "--config", two, "--time", "yesterday"}, 2, "", `cwos render: --time "yesterday": expected RFC 3339`},
		{[]string{"render", "--config", two, "--record", rec, "--records", "x"}, 2, "", "cwos render: use --record or --records, not both"},
		{[]string{"render", "--config", two, "extra"}, 2, "", `cwos render: unexpected argument "extra"`},
		{[]string{"render", "--record", rec}, 1, "", "error: --config is required"},
		{[]string{"render", "--config", "/nonexistent/f.conf"}, 1, "", "error: /nonexistent/f.conf: open /nonexistent/f.conf: no such file or directory"},
		{[]string{"render", "--config", none, "--record", rec}, 1, "", "error: " + none + ": no [OUTPUT] with Name cloudwatch_opensearch"},
		{[]string{"render", "--config", two, "--record", rec}, 1, "", "error: " + two + " has 2 cloudwatch_opensearch outputs; pick one with --output (alias or 1..2)"},
		{[]string{"render", "--config", two, "--output", "zz", "--record", rec}, 1, "", "error: --output zz: no cloudwatch_opensearch output with that alias or position; the file has #1 (alias a), #2 (alias b)"},
		{[]string{"render", "--config", two, "--output", "b", "--record", rec, "--tag", "t", "--time", "2023-02-22T00:00:00Z"}, 0,
			`{"log_group":"/b","log_stream":"b-t","index":"cwl-b-2023.02.22","fallback":[]}`, ""},
		{[]string{"render", "--config", two, "--output", "1", "--record", rec, "--tag", "t", "--time", "2023-02-22T00:00:00Z"}, 0,
			`{"log_group":"/a","log_stream":"a-t","index":"cwl-a-2023.02.22","fallback":[]}`, ""},
		{[]string{"render", "--config", bad, "--record", rec}, 1, "", bad + ":1: [OUTPUT] cloudwatch_opensearch #1"},
		{[]string{"render", "--config", two, "--output", "a", "--records", "/nonexistent/r.jsonl"}, 1, "", "error: open /nonexistent/r.jsonl: no such file or directory"},
	} {
		code, out, errOut := runCLI(t, "", tc.args...)
		if code != tc.code || !strings.HasPrefix(out, tc.out) || !strings.HasPrefix(errOut, tc.stderr) || (tc.stderr == "") != (errOut == "") {
			t.Errorf("%q: exit %d\nstdout %s\nstderr %s\nwant exit %d, stdout %q..., stderr %q...", tc.args, code, out, errOut, tc.code, tc.out, tc.stderr)
		}
	}
}

func TestCheckExamples(t *testing.T) {
	seedEnv(t)
	for _, tc := range []struct{ file, header string }{
		{"../../examples/fluent-bit.conf", "../../examples/fluent-bit.conf:31: [OUTPUT] cloudwatch_opensearch #1 (alias cwos)"},
		{"../../examples/fluent-bit.yaml", "../../examples/fluent-bit.yaml:25: [OUTPUT] cloudwatch_opensearch #1 (alias cwos)"},
	} {
		code, out, errOut := runCLI(t, "", "check", "--config", tc.file)
		if code != 0 || errOut != "" {
			t.Errorf("%s: exit %d %s", tc.file, code, errOut)
		}
		equalLines(t, tc.file, out, []string{tc.header, "1 output, 0 errors, 0 warnings"})
	}
}

func TestCheckWarnings(t *testing.T) {
	t.Setenv("NOPE_VAR", "")
	cfg := writeFile(t, "w.conf", `[OUTPUT]
    Name                cloudwatch_opensearch
    Match               *
    region              us-east-1
    log_group_name      /aws/my group
    log_group_tempalte  /aws/$x
    log_stream_prefix   ${NOPE_VAR}node:
    tls.verify          off
    opensearch_endpoint http://127.0.0.1:9200
    index_template      Logs-$kubernetes['namespace_name']-%Y
    log_group_name      /second
    opensearch_password hunter2
    opensearch_password hunter3
`)
	code, out, errOut := runCLI(t, "", "check", "--config", cfg)
	if code != 0 || errOut != "" {
		t.Errorf("exit %d, stderr %s", code, errOut)
	}
	equalLines(t, "check", out, []string{
		cfg + ":1: [OUTPUT] cloudwatch_opensearch #1",
		"warning: workers is not set: with 0 workers Fluent Bit runs every flush of this plugin on its engine thread; set workers 1 or more",
		"warning: Retry_Limit is not set: Fluent Bit's default (1) drops a chunk after one retry; set Retry_Limit no_limits",
		"warning: unknown key log_group_tempalte: Fluent Bit ignores it silently; did you mean log_group_template?",
		"warning: log_stream_prefix: ${NOPE_VAR} is not set, so it expands to nothing",
		"warning: tls.verify is a Fluent Bit network setting this plugin never sees; use opensearch_endpoint, opensearch_tls_verify, opensearch_tls_ca_file or cloudwatch_endpoint",
		`warning: log_group_name is set twice (lines 5 and 11): Fluent Bit passes only the first, "/aws/my group"`,
		`warning: opensearch_password is set twice (lines 12 and 13): Fluent Bit passes only the first, "****"`,
		`warning: index_template: column 1: "L" becomes "l" (index names are lowercase)`,
		`warning: log_group_name "/aws/my group" is not a valid name; the plugin uses "/aws/my-group"`,
		`warning: log_stream_prefix "node:" is not a valid name; the plugin uses "node-"`,
		"1 output, 0 errors, 10 warnings",
	})
	if strings.Contains(out, "hunter") {
		t.Error("a secret reached the output")
	}
}

// TestCheckErrors: the error lines are exactly config.Parse's, i.e. what Init logs.
func TestCheckErrors(t *testing.T) {
	text := `pipeline:
  outputs:
    - name: cloudwatch_opensearch
      match: '*'
      workers: 1
      retry_limit: no_limits
      region: us-east-1
      log_group_template: /aws/$(kubernetes['namespace_name']
      log_stream_name: s
      opensearch: off
`
	cfg := writeFile(t, "e.yaml", text)
	code, out, _ := runCLI(t, "", "check", "--config", cfg)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	_, perr := config.Parse(config.MapSource{
		"name": "cloudwatch_opensearch", "match": "*", "workers": "1", "retry_limit": "no_limits", "region": "us-east-1",
		"log_group_template": "/aws/$(kubernetes['namespace_name']", "log_stream_name": "s", "opensearch": "off",
	})
	if perr == nil {
		t.Fatal("config.Parse accepted the block")
	}
	want := []string{cfg + ":3: [OUTPUT] cloudwatch_opensearch #1"}
	for _, l := range lines(perr.Error()) {
		want = append(want, "error: "+l)
	}
	want = append(want, "1 output, "+plural(len(want)-1, "error")+", 0 warnings")
	equalLines(t, "check", out, want)
	if !strings.Contains(out, `log_group_template`) || !strings.Contains(out, `column 6: unterminated "$(": missing ")"`) {
		t.Errorf("the template error must name the key and the column:\n%s", out)
	}
}

func TestCheckSeveralOutputs(t *testing.T) {
	cfg := writeFile(t, "two.conf", `[OUTPUT]
    Name cloudwatch_opensearch
    Alias first
    Workers 1
    Retry_Limit no_limits
    region us-east-1
    log_group_name /a
    log_stream_prefix a-
    opensearch off
[OUTPUT]
    Name cloudwatch_opensearch
    Workers 1
    Retry_Limit no_limits
    region us-east-1
    log_stream_prefix b-
    opensearch off
`)
	code, out, _ := runCLI(t, "", "check", "--config", cfg)
	if code != 1 {
		t.Errorf("exit %d, want 1 (the second block has no log_group_name)", code)
	}
	l := lines(out)
	if len(l) != 4 || l[0] != cfg+":1: [OUTPUT] cloudwatch_opensearch #1 (alias first)" || l[1] != cfg+":10: [OUTPUT] cloudwatch_opensearch #2" ||
		!strings.HasPrefix(l[2], "error: config: log_group_name") || l[3] != "2 outputs, 1 error, 0 warnings" {
		t.Errorf("output:\n%s", out)
	}
	if code, out, _ := runCLI(t, "", "check", "--config", cfg, "--output", "first"); code != 0 || !strings.HasSuffix(out, "1 output, 0 errors, 0 warnings\n") {
		t.Errorf("--output first: exit %d\n%s", code, out)
	}
}

func TestRecordFromJSON(t *testing.T) {
	if _, _, _, err := recordFromJSON([]byte(`{"f":1e400}`)); err == nil || err.Error() != "invalid number 1e400" {
		t.Fatalf("1e400: %v", err)
	}
	rec, _, hasTime, err := recordFromJSON([]byte(`{"a":1,"b":{"c":[true,null,1.5,"x"]},"a":2,"big":18446744073709551615,"neg":-9223372036854775808,"é":"ü"}`))
	if err != nil || hasTime {
		t.Fatal(err, hasTime)
	}
	js, err := event.AppendJSON(nil, rec)
	if err != nil {
		t.Fatal(err)
	}
	// Key order kept, a repeated key resolved as in the documents (the last wins), integers exact.
	if want := `{"b":{"c":[true,null,1.5,"x"]},"a":2,"big":18446744073709551615,"neg":-9223372036854775808,"é":"ü"}`; string(js) != want {
		t.Errorf("JSON of the record\n got %s\nwant %s", js, want)
	}
	if v := event.Lookup(rec, []event.PathElem{{Key: "a"}}); v.Kind != event.Int || v.Int != 2 {
		t.Errorf("a = %+v", v)
	}

	rec, tm, hasTime, err := recordFromJSON([]byte(` [1677114000.25, {"k":"v"}] `))
	if err != nil || !hasTime || !tm.Equal(time.Date(2023, 2, 23, 1, 0, 0, 250_000_000, time.UTC)) {
		t.Errorf("event form: %v %v %v", tm, hasTime, err)
	}
	if v := event.Lookup(rec, []event.PathElem{{Key: "k"}}); string(v.Bytes) != "v" {
		t.Errorf("k = %+v", v)
	}
	for in, want := range map[string]string{
		`[1, 2]`:          "expected a record object after the event time",
		`["t", {}]`:       "expected a record object or [time, record]",
		`[1, {}, 3]`:      "expected ] after [time, record]",
		`[-1, {}]`:        "invalid event time -1",
		`"text"`:          "expected a record object or [time, record]",
		`{"a":1} {"b":2}`: "unexpected data after the record",
		`{"a":}`:          "invalid JSON",
		`{"a":1`:          "invalid JSON: unexpected end",
		strings.Repeat(`{"a":`, 300) + "1" + strings.Repeat("}", 300):       "record nested too deeply",
		`{"a":` + strings.Repeat("[", 300) + strings.Repeat("]", 300) + "}": "record nested too deeply",
	} {
		if _, _, _, err := recordFromJSON([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%.40s: err = %v, want %q", in, err, want)
		}
	}
}

// FuzzRecordFromJSON: any input is rejected or becomes a record the event package reads back.
func FuzzRecordFromJSON(f *testing.F) {
	f.Add(`{"kubernetes":{"namespace_name":"a"},"n":[1,2.5,null,true]}`)
	f.Add(`[1677114000.5,{"a":"b"}]`)
	f.Add(`{"a":"\u00e9\ud800"}`)
	f.Fuzz(func(t *testing.T, in string) {
		rec, _, _, err := recordFromJSON([]byte(in))
		if err != nil {
			return
		}
		if _, err := event.AppendJSON(nil, rec); err != nil {
			t.Fatalf("%q: record does not read back: %v", in, err)
		}
		if !json.Valid([]byte(in)) {
			t.Fatalf("%q accepted but is not JSON", in)
		}
	})
}

func TestGoPluginFormExample(t *testing.T) {
	seedEnv(t)
	code, out, errOut := runCLI(t, "", "render", "--config", "../../examples/go-plugin-form.conf", "--tag", "kube.x",
		"--record", `{"kubernetes":{"namespace_name":"aws-awssdk","pod_name":"iam-dev-7c9d8b6f5-x2x9k"}}`)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	equalLines(t, "render", out, []string{
		`{"log_group":"/aws/containerinsights/bys-dev-eks-main/aws-awssdk/iam-dev-7c9d8b6f5-x2x9k","log_stream":"ip-10-0-1-23-kube.x","index":null,"fallback":[]}`,
	})
	if code, out, _ := runCLI(t, "", "check", "--config", "../../examples/go-plugin-form.conf"); code != 0 || !strings.HasSuffix(out, "1 output, 0 errors, 0 warnings\n") {
		t.Errorf("check: exit %d\n%s", code, out)
	}
}

// TestDocsShowRealOutput: every rendered line in README.md is what cwos prints today.
func TestDocsShowRealOutput(t *testing.T) {
	seedEnv(t)
	doc, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, l := range lines(string(doc)) {
		if strings.HasPrefix(l, `{"log_group"`) {
			want = append(want, l)
		}
	}
	var got []string
	for _, args := range [][]string{
		{"render", "--config", "../../examples/go-plugin-form.conf", "--tag", "kube.x",
			"--record", `{"kubernetes":{"namespace_name":"aws-awssdk","pod_name":"iam-dev-7c9d8b6f5-x2x9k"}}`},
		{"render", "--config", "../../examples/fluent-bit.conf", "--tag", "kube.x", "--time", "2023-02-22T01:00:00Z",
			"--record", `{"kubernetes":{"namespace_name":"aws-awssdk","container_name":"iam-dev"}}`},
		{"render", "--config", "../../examples/fluent-bit.yaml", "--records", "../../examples/records.jsonl", "--tag", exampleTag, "--time", "2023-02-22T01:00:00Z"},
	} {
		_, out, _ := runCLI(t, "", args...)
		got = append(got, lines(out)...)
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("README.md shows\n%s\ncwos prints\n%s", strings.Join(want, "\n"), strings.Join(got, "\n"))
	}
}
