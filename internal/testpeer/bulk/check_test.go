package bulk

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestValidIndexName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"cwl-aws-containerinsights-bys-dev-eks-main-aws-awssdk-iam-dev-2023.02.22", true},
		{"logs", true},
		{"a.b", true},
		{"..a", true},
		{"été", true},
		{strings.Repeat("a", 255), true},
		{strings.Repeat("a", 256), false},
		{strings.Repeat("é", 128), false}, // 256 bytes
		{"", false},
		{".", false},
		{"..", false},
		{"Logs", false},
		{"-logs", false},
		{"_logs", false},
		{"+logs", false},
		{"a/b", false},
		{`a\b`, false},
		{"a*b", false},
		{"a?b", false},
		{`a"b`, false},
		{"a<b", false},
		{"a>b", false},
		{"a|b", false},
		{"a b", false},
		{"a,b", false},
		{"a#b", false},
		{"a:b", false},
		{"a\xffb", false},
	}
	for _, tt := range tests {
		err := ValidIndexName(tt.name)
		if (err == nil) != tt.ok {
			t.Errorf("ValidIndexName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}

func TestCheckDocument(t *testing.T) {
	tests := []struct {
		doc string
		ok  bool
		msg string
	}{
		{`{}`, true, ""},
		{` {"a":1,"b":[1,2,{"c":null}],"d":{"e":"f"}} `, true, ""},
		{`{"a":-0.5e+10,"b":true,"c":false,"d":"\u00e9\n\"x\""}`, true, ""},
		{`{"a":{"x":1},"b":{"x":2}}`, true, ""}, // same key in different objects
		{`{"a":1,"a":2}`, false, "Duplicate field 'a'"},
		{`{"k":{"a":1,"a":2}}`, false, "Duplicate field 'a'"},
		{`{"a":1,"\u0061":2}`, false, "Duplicate field 'a'"},
		{`{"a":[{"b":1,"b":1}]}`, false, "Duplicate field 'b'"},
		{`{"k0":0,"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"k10":10,"k11":11,"k12":12,"k13":13,"k14":14,"k15":15,"k16":16,"k17":17}`, true, ""},
		{`{"k0":0,"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"k10":10,"k11":11,"k12":12,"k13":13,"k14":14,"k15":15,"k16":16,"k3":17}`, false, "Duplicate field 'k3'"},
		{`{"k0":0,"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"k10":10,"k11":11,"k12":12,"k13":13,"k14":14,"k15":15,"k16":16,"k16":17}`, false, "Duplicate field 'k16'"},
		{`[]`, false, "not a JSON object"},
		{`"x"`, false, "not a JSON object"},
		{``, false, "not a JSON object"},
		{`{"a":1} x`, false, "after the document"},
		{`{"a":1}{}`, false, "after the document"},
		{`{"a":01}`, false, ""},
		{`{"a":1.}`, false, "bad fraction"},
		{`{"a":NaN}`, false, ""},
		{`{"a":"x` + "\x01" + `"}`, false, "control character"},
		{`{"a":"` + "\xff" + `"}`, false, "invalid UTF-8"},
		{`{"a":"\q"}`, false, "bad escape"},
		{`{"a":1,}`, false, ""},
		{`{"a" 1}`, false, "expected ':'"},
		{`{"a":[1 2]}`, false, ""},
		{`{"a":tru}`, false, ""},
		{`{"a":1`, false, ""},
	}
	for _, tt := range tests {
		err := CheckDocument([]byte(tt.doc))
		if (err == nil) != tt.ok {
			t.Errorf("CheckDocument(%q) = %v, want ok=%v", tt.doc, err, tt.ok)
			continue
		}
		if err != nil && tt.msg != "" && !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("CheckDocument(%q) = %v, want it to mention %q", tt.doc, err, tt.msg)
		}
	}
	deep := strings.Repeat(`{"a":`, maxJSONDepth+5) + "1" + strings.Repeat("}", maxJSONDepth+5)
	if CheckDocument([]byte(deep)) == nil {
		t.Error("CheckDocument accepted nesting beyond its limit")
	}
}

// FuzzCheckDocument: whatever CheckDocument accepts is valid JSON for encoding/json, and
// whatever valid JSON object it refuses must have a repeated key.
func FuzzCheckDocument(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1}`, `{"a":1,"a":2}`, `{"a":[{"b":"\u00e9"}]}`, `[1]`, `{"a":"\ud800"}`, `{"a":1e5}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		err := CheckDocument(b)
		valid := json.Valid(b)
		if err == nil {
			if !valid {
				t.Fatalf("CheckDocument accepted invalid JSON %q", b)
			}
			var m map[string]any
			if json.Unmarshal(b, &m) != nil || m == nil {
				t.Fatalf("CheckDocument accepted a non-object %q", b)
			}
			return
		}
		var m map[string]any
		if valid && json.Unmarshal(b, &m) == nil && m != nil && utf8.Valid(b) && !strings.Contains(err.Error(), "Duplicate field") && !strings.Contains(err.Error(), "too deep") {
			t.Fatalf("CheckDocument refused the valid object %q: %v", b, err)
		}
	})
}

func TestParseNDJSON(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		index string
		n     int
		err   string
	}{
		{"create and index", "{\"create\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{}\n{\"index\":{\"_index\":\"b\"}}\n{\"x\":1}\n", "", 2, ""},
		{"delete has no source", "{\"delete\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{\"index\":{\"_index\":\"a\"}}\n{}\n", "", 2, ""},
		{"path index", "{\"index\":{}}\n{}\n", "p", 1, ""},
		{"missing index", "{\"index\":{}}\n{}\n", "", 0, "index is missing"},
		{"blank line", "{\"index\":{\"_index\":\"a\"}}\n\n", "", 0, "blank line"},
		{"two actions", "{\"index\":{\"_index\":\"a\"},\"create\":{}}\n{}\n", "", 0, "single action"},
		{"unknown action", "{\"upsert\":{\"_index\":\"a\"}}\n{}\n", "", 0, "expected one of"},
		{"unknown metadata", "{\"index\":{\"_index\":\"a\",\"_type\":\"doc\"}}\n{}\n", "", 0, "unknown parameter [_type]"},
		{"source missing", "{\"index\":{\"_index\":\"a\"}}\n", "", 0, "without a source line"},
		{"not json", "index a\n{}\n", "", 0, "Malformed"},
		{"numeric id", "{\"index\":{\"_index\":\"a\",\"_id\":1}}\n{}\n", "", 0, "_id must be a string"},
	}
	for _, tt := range tests {
		acts, err := parseNDJSON([]byte(tt.body), tt.index)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: err = %v, want %q", tt.name, err, tt.err)
			}
			continue
		}
		if err != nil || len(acts) != tt.n {
			t.Errorf("%s: %d actions, err %v; want %d", tt.name, len(acts), err, tt.n)
		}
	}
}

// FuzzParseNDJSON: the framing parser never panics on newline-terminated input and every
// action it returns has an index and a source unless it is a delete.
func FuzzParseNDJSON(f *testing.F) {
	f.Add([]byte("{\"create\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{}\n"))
	f.Add([]byte("{\"delete\":{\"_index\":\"a\",\"_id\":\"1\"}}\n"))
	f.Add([]byte("{\"index\":{}}\n{}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) == 0 || b[len(b)-1] != '\n' {
			return
		}
		acts, err := parseNDJSON(b, "")
		if err != nil {
			return
		}
		for _, a := range acts {
			if a.index == "" || (a.action != "delete" && a.source == nil) {
				t.Fatalf("bad action %+v from %q", a, b)
			}
		}
	})
}

func TestFilterPath(t *testing.T) {
	resp := obj{{"took", 3}, {"errors", true}, {"items", []any{
		obj{{"create", obj{{"_index", "a"}, {"_id", "1"}, {"status", 201}, {"result", "created"}}}},
		obj{{"create", obj{{"_index", "a"}, {"_id", "2"}, {"status", 409}, {"error", obj{{"type", "version_conflict_engine_exception"}, {"reason", "r"}}}}}},
	}}}
	tests := []struct{ filter, want string }{
		{"", `{"took":3,"errors":true,"items":[{"create":{"_index":"a","_id":"1","status":201,"result":"created"}},{"create":{"_index":"a","_id":"2","status":409,"error":{"type":"version_conflict_engine_exception","reason":"r"}}}]}`},
		{"errors,items.*.error,items.*.status", `{"errors":true,"items":[{"create":{"status":201}},{"create":{"status":409,"error":{"type":"version_conflict_engine_exception","reason":"r"}}}]}`},
		{"items.*.error.type", `{"items":[{"create":{"error":{"type":"version_conflict_engine_exception"}}}]}`},
		{"**.status", `{"items":[{"create":{"status":201}},{"create":{"status":409}}]}`},
		{"items.create._i*", `{"items":[{"create":{"_index":"a","_id":"1"}},{"create":{"_index":"a","_id":"2"}}]}`},
		{"nothing", `{}`},
	}
	for _, tt := range tests {
		out, ok := parseFilterPath(tt.filter).apply(resp)
		if !ok {
			out = obj{}
		}
		if got := string(appendJSON(nil, out)); got != tt.want {
			t.Errorf("filter %q:\n got %s\nwant %s", tt.filter, got, tt.want)
		}
	}
}

// FuzzVerifySigV4: any Authorization header, date and query is refused with an error, never
// a panic, and never accepted without the secret.
func FuzzVerifySigV4(f *testing.F) {
	f.Add("AWS4-HMAC-SHA256 Credential=AK/20240101/us-east-1/es/aws4_request, SignedHeaders=host;x-amz-date, Signature=00", "20240101T000000Z", "filter_path=a%2Cb")
	f.Add("AWS4-HMAC-SHA256 Credential=/,SignedHeaders=;,Signature=", "x", "%zz")
	f.Fuzz(func(t *testing.T, auth, date, query string) {
		req, err := http.NewRequest(http.MethodPost, "http://127.0.0.1/_bulk", nil)
		if err != nil {
			return
		}
		req.URL.RawQuery = query
		req.Header.Set("Authorization", auth)
		req.Header.Set("X-Amz-Date", date)
		now := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
		if VerifySigV4(req, []byte("{}\n"), SigV4Credentials{AccessKeyID: "AK", SecretAccessKey: "s", Region: "us-east-1", Service: "es"}, now) == nil {
			t.Fatalf("accepted a signature made without the secret: %q", auth)
		}
	})
}
