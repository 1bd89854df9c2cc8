package opensearch

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/cwos/cloudwatch-opensearch/internal/chunkgen"
	"github.com/cwos/cloudwatch-opensearch/internal/config"
	"github.com/cwos/cloudwatch-opensearch/internal/event"
	"github.com/cwos/cloudwatch-opensearch/internal/sink"
)

func TestAppendString(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", `""`},
		{"plain", `"plain"`},
		{`q"b\`, `"q\"b\\"`},
		{"a\nb\rc\td\x01\x1f", `"a\nb\rc\td\u0001\u001f"`},
		{"주문 ✓ <&>", `"주문 ✓ <&>"`},
		{"bad\xffutf8\xc3", "\"bad\uFFFDutf8\uFFFD\""},
		{"\b\f\x7f", "\"\\b\\f\x7f\""},
		{"a\u2028b\u2029c", `"a\u2028b\u2029c"`},
	}
	for _, tt := range tests {
		if got := string(event.AppendString(nil, tt.in)); got != tt.want {
			t.Errorf("event.AppendString(%q) = %s, want %s", tt.in, got, tt.want)
		}
		if got := string(event.AppendString(nil, []byte(tt.in))); got != tt.want {
			t.Errorf("event.AppendString([]byte %q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// FuzzAppendString: the output is one valid JSON string that decodes to the input with
// invalid UTF-8 replaced.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "a\"b", "\xff\xfe", "é\u2028", "\x00\x7f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := event.AppendString(nil, s)
		var got string
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("invalid JSON %s for %q: %v", out, s, err)
		}
		// Converting to runes turns each invalid byte into U+FFFD, as AppendString does.
		if want := string([]rune(s)); got != want {
			t.Fatalf("round trip of %q = %q, want %q", s, got, want)
		}
	})
}

func TestAppendTime(t *testing.T) {
	tests := []struct {
		t    time.Time
		want string
	}{
		{time.Date(2023, 2, 22, 1, 2, 3, 456_789_000, time.UTC), "2023-02-22T01:02:03.456Z"},
		{time.Date(2023, 12, 31, 23, 59, 59, 999_999_999, time.UTC), "2023-12-31T23:59:59.999Z"},
		{time.Date(2023, 2, 22, 10, 0, 0, 0, time.FixedZone("KST", 9*3600)), "2023-02-22T01:00:00.000Z"},
		{time.Unix(0, 0), "1970-01-01T00:00:00.000Z"},
	}
	for _, tt := range tests {
		if got := string(appendTime(nil, tt.t)); got != tt.want {
			t.Errorf("appendTime(%v) = %s, want %s", tt.t, got, tt.want)
		}
		if got, want := string(appendTime(nil, tt.t)), tt.t.UTC().Format("2006-01-02T15:04:05.000Z"); got != want {
			t.Errorf("appendTime(%v) = %s, time.Format says %s", tt.t, got, want)
		}
	}
}

func TestOwnerAccount(t *testing.T) {
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == "AWS_ROLE_ARN" {
				return v
			}
			return ""
		}
	}
	tests := []struct {
		name string
		cfg  config.Config
		env  string
		want string
	}{
		{"role_arn first", config.Config{CloudWatch: true, RoleARN: "arn:aws:iam::111111111111:role/cw", OpenSearchRoleARN: "arn:aws:iam::222222222222:role/os"}, "arn:aws:iam::333333333333:role/irsa", "111111111111"},
		{"irsa next", config.Config{CloudWatch: true, OpenSearchRoleARN: "arn:aws:iam::222222222222:role/os"}, "arn:aws:iam::558846430793:role/EKSFluentBitServiceRole", "558846430793"},
		{"opensearch role last", config.Config{CloudWatch: true, OpenSearchRoleARN: "arn:aws:iam::222222222222:role/os"}, "", "222222222222"},
		{"cloudwatch off: opensearch role first", config.Config{RoleARN: "arn:aws:iam::111111111111:role/cw", OpenSearchRoleARN: "arn:aws:iam::222222222222:role/os"}, "", "222222222222"},
		{"unknown", config.Config{CloudWatch: true}, "", ""},
		{"not an account", config.Config{CloudWatch: true, RoleARN: "arn:aws:iam::12345:role/x"}, "", ""},
		{"gov partition", config.Config{CloudWatch: true, RoleARN: "arn:aws-us-gov:iam::444444444444:role/x"}, "", "444444444444"},
	}
	for _, tt := range tests {
		if got := ownerAccount(&tt.cfg, env(tt.env)); got != tt.want {
			t.Errorf("%s: ownerAccount = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// testRecord builds one record the way the flush does: msgpack map, JSON message, id.
func testRecord(t testing.TB, fields chunkgen.Map, when time.Time, group, stream, index string) sink.Record {
	t.Helper()
	raw := chunkgen.AppendValue(nil, fields)
	msg, err := event.AppendJSON(nil, raw)
	if err != nil {
		t.Fatal(err)
	}
	var g event.IDGen
	g.Reset("application.var.log.containers.x")
	return sink.Record{Time: when, Tag: "application.var.log.containers.x", Raw: raw, Message: msg,
		ID: g.Next(event.Event{Time: when, Record: raw}), Group: group, Stream: stream, Index: index}
}

func splitItem(t *testing.T, b []byte) (action map[string]map[string]string, doc map[string]any) {
	t.Helper()
	lines := bytes.Split(b, []byte("\n"))
	if len(lines) != 3 || len(lines[2]) != 0 {
		t.Fatalf("item is not two newline-terminated lines: %q", b)
	}
	if err := json.Unmarshal(lines[0], &action); err != nil {
		t.Fatalf("action line %s: %v", lines[0], err)
	}
	if err := json.Unmarshal(lines[1], &doc); err != nil {
		t.Fatalf("source line %s: %v", lines[1], err)
	}
	return action, doc
}

// TestCWLDocument checks the Lambda's document for the seed's example: the record's fields plus
// @id, @timestamp, @message, @owner, @log_group, @log_stream, the record's own @ fields replaced.
func TestCWLDocument(t *testing.T) {
	when := time.Date(2023, 2, 22, 1, 2, 3, 456_000_000, time.UTC)
	fields := m(
		"log", "GET /healthz 200",
		"stream", "stdout",
		"@timestamp", "from the record",
		"@message", "from the record",
		"kubernetes", m("namespace_name", "aws-awssdk", "container_name", "iam-dev"),
	)
	group := "/aws/containerinsights/bys-dev-eks-main.aws-awssdk.iam-dev"
	index := "cwl-aws-containerinsights-bys-dev-eks-main-aws-awssdk-iam-dev-2023.02.22"
	r := testRecord(t, fields, when, group, "ip-10-0-1-1-application.var.log.containers.x", index)
	cfg := &config.Config{OpenSearchDocument: config.DocumentCWL, OpenSearchID: true}
	e := newEncoder(cfg, "558846430793")
	out, ok := e.appendItem(nil, &r)
	if !ok {
		t.Fatal("transcode failed")
	}
	action, doc := splitItem(t, out)
	if c := action["create"]; c["_index"] != index || c["_id"] != r.ID.String() || len(action) != 1 {
		t.Fatalf("action = %v", action)
	}
	want := map[string]any{
		"log": "GET /healthz 200", "stream": "stdout",
		"kubernetes":  map[string]any{"namespace_name": "aws-awssdk", "container_name": "iam-dev"},
		"@id":         r.ID.String(),
		"@timestamp":  "2023-02-22T01:02:03.456Z",
		"@message":    string(r.Message),
		"@owner":      "558846430793",
		"@log_group":  group,
		"@log_stream": "ip-10-0-1-1-application.var.log.containers.x",
	}
	gotJSON, _ := json.Marshal(doc)
	wantJSON, _ := json.Marshal(want)
	if string(gotJSON) != string(wantJSON) {
		t.Fatalf("document\n got %s\nwant %s", gotJSON, wantJSON)
	}
	// The Lambda's field order: record fields, then @id ... @log_stream.
	src := bytes.Split(out, []byte("\n"))[1]
	if !bytes.HasPrefix(src, []byte(`{"log":`)) || !bytes.HasSuffix(src, []byte(`,"@log_stream":"ip-10-0-1-1-application.var.log.containers.x"}`)) {
		t.Fatalf("field order: %s", src)
	}
	order := []string{`"@id"`, `"@timestamp"`, `"@message"`, `"@owner"`, `"@log_group"`, `"@log_stream"`}
	last := -1
	for _, k := range order {
		i := bytes.Index(src, []byte(k))
		if i <= last || bytes.Count(src, []byte(k+":")) != 1 {
			t.Fatalf("%s out of order or repeated in %s", k, src)
		}
		last = i
	}

	// Unknown owner: no @owner at all, and a record's own @owner is kept.
	fields = append(fields, chunkgen.KV{Key: "@owner", Value: "record-owner"})
	r = testRecord(t, fields, when, group, "s", index)
	out, _ = newEncoder(cfg, "").appendItem(nil, &r)
	if _, doc = splitItem(t, out); doc["@owner"] != "record-owner" {
		t.Fatalf("@owner = %v, want the record's", doc["@owner"])
	}
}

func TestRecordDocumentAndIndexAction(t *testing.T) {
	when := time.Date(2024, 5, 6, 7, 8, 9, 10_000_000, time.UTC)
	r := testRecord(t, m("msg", "x", "ts", "old", "n", 1), when, "g", "s", "logs-2024.05.06")
	cfg := &config.Config{OpenSearchDocument: config.DocumentRecord, OpenSearchID: false, TimeKey: "ts"}
	out, _ := newEncoder(cfg, "123456789012").appendItem(nil, &r)
	action, doc := splitItem(t, out)
	if ix, ok := action["index"]; !ok || ix["_index"] != "logs-2024.05.06" || ix["_id"] != "" || len(ix) != 1 {
		t.Fatalf("action = %v, want index without _id", action)
	}
	want := `{"msg":"x","n":1,"ts":"2024-05-06T07:08:09.010Z"}`
	got, _ := json.Marshal(doc)
	if string(got) != want {
		t.Fatalf("document %s, want %s", got, want)
	}
	// An empty record still gives a valid document.
	r = testRecord(t, chunkgen.Map{}, when, "g", "s", "logs")
	out, _ = newEncoder(cfg, "").appendItem(nil, &r)
	if _, doc = splitItem(t, out); len(doc) != 1 {
		t.Fatalf("empty record document = %v", doc)
	}
}

func TestAppendItemDoesNotAllocate(t *testing.T) {
	chunk, _ := chunkgen.K8sChunk(1, 50, chunkgen.Options{Namespaces: 2, Containers: 3})
	evs, _ := event.Decode(chunk, nil)
	recs := make([]sink.Record, len(evs))
	for i, ev := range evs {
		msg, _ := event.AppendJSON(nil, ev.Record)
		recs[i] = sink.Record{Seq: i, Time: ev.Time, Raw: ev.Record, Message: msg, Group: "/aws/containerinsights/c.ns.ct", Stream: "s", Index: "cwl-aws-containerinsights-c-ns-ct-2023.02.22"}
	}
	e := newEncoder(&config.Config{OpenSearchDocument: config.DocumentCWL, OpenSearchID: true}, "123456789012")
	dst := make([]byte, 0, 1<<20)
	allocs := testing.AllocsPerRun(20, func() {
		dst = dst[:0]
		for i := range recs {
			dst, _ = e.appendItem(dst, &recs[i])
		}
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per %d records", allocs, len(recs))
	}
}

// m builds an ordered msgpack map from key, value pairs.
func m(kv ...any) chunkgen.Map {
	var out chunkgen.Map
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, chunkgen.KV{Key: kv[i].(string), Value: kv[i+1]})
	}
	return out
}

// FuzzAccountFromARN: the account is empty or the 12-digit fifth field of the input.
func FuzzAccountFromARN(f *testing.F) {
	for _, s := range []string{"arn:aws:iam::558846430793:role/x", "arn:aws:iam::1:role", "", "arn:::::", "arn:aws:sts::123456789012:assumed-role/a/b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, arn string) {
		a := accountFromARN(arn)
		if a == "" {
			return
		}
		parts := strings.Split(arn, ":")
		if len(a) != 12 || len(parts) < 6 || parts[4] != a || parts[0] != "arn" {
			t.Fatalf("accountFromARN(%q) = %q", arn, a)
		}
	})
}
