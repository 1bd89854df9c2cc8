package event

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/cwos/cloudwatch-opensearch/internal/chunkgen"
)

// checkedSkips are skip lists AppendJSONChecked's clean result must cover for reserved "time":
// '@' keys, the reserved key, both, and none.
var checkedSkips = [][]string{
	nil,
	{"@id", "@timestamp", "@message", "@owner", "@log_group", "@log_stream"},
	{"time"},
	{"@timestamp", "time"},
}

// assertChecked holds AppendJSONChecked to its contract for one value and reserved key: the
// output is AppendJSON's, clean is exactly "a map without a top-level '@' or reserved key", and
// when clean the text inside the braces is what AppendFields writes for every covered skip list.
func assertChecked(t *testing.T, in []byte, reserved string) (clean bool) {
	t.Helper()
	want, wantErr := AppendJSON([]byte("x"), in)
	got, clean, err := AppendJSONChecked([]byte("x"), in, reserved)
	if (err != nil) != (wantErr != nil) || string(got) != string(want) {
		t.Fatalf("AppendJSONChecked = %q, %v; AppendJSON = %q, %v", got, err, want, wantErr)
	}
	if err != nil {
		if clean {
			t.Fatalf("clean with an error: %v", err)
		}
		return false
	}
	// The independent answer: the keys of the document, decoded.
	var doc map[string]json.RawMessage
	isMap := json.Unmarshal(got[1:], &doc) == nil && strings.HasPrefix(string(got[1:]), "{")
	wantClean := isMap
	for k := range doc {
		if strings.HasPrefix(k, "@") || reserved != "" && k == reserved {
			wantClean = false
		}
	}
	if clean != wantClean {
		t.Fatalf("clean = %v, want %v for %s (reserved %q)", clean, wantClean, got[1:], reserved)
	}
	if !clean {
		return false
	}
	inner := string(got[2 : len(got)-1])
	for _, skip := range checkedSkips {
		if reserved != "time" && len(skip) > 0 && skip[len(skip)-1] == "time" {
			continue
		}
		fields, n, err := AppendFields(nil, in, skip)
		if err != nil || string(fields) != inner || (n == 0) != (inner == "") {
			t.Fatalf("skip %q: AppendFields = %q (%d, %v), want %q", skip, fields, n, err, inner)
		}
	}
	return true
}

func TestAppendJSONChecked(t *testing.T) {
	tests := []struct {
		name     string
		in       []byte
		reserved string
		clean    bool
	}{
		{"plain", mp(M{{"log", "x"}, {"time", 1}}), "", true},
		{"reserved key", mp(M{{"log", "x"}, {"time", 1}}), "time", false},
		{"reserved elsewhere", mp(M{{"log", "x"}, {"timestamp", 1}, {"k", M{{"time", 1}}}}), "time", true},
		{"@timestamp", mp(M{{"log", "x"}, {"@timestamp", "t"}}), "", false},
		{"@message twice", mp(M{{"@message", 1}, {"a", 1}, {"@message", 2}}), "time", false},
		{"bare @", mp(M{{"@", 1}}), "", false},
		{"@ nested only", mp(M{{"k", M{{"@timestamp", 1}}}, {"l", []any{M{{"@id", 1}}}}}), "", true},
		{"@ inside the key", mp(M{{"a@b", 1}}), "", true},
		{"duplicates", mp(M{{"a", 1}, {"b", 2}, {"a", 3}}), "time", true},
		{"empty map", mp(M{}), "time", true},
		{"empty key", mp(M{{"", 1}}), "", true},
		{"binary key", cat([]byte{0x81}, mp(chunkgen.Bin("@id")), mp(1)), "", false},
		{"non-string key", cat([]byte{0x81}, mp(5), mp(1)), "5", false},
		{"not a map", mp([]any{M{{"a", 1}}}), "", false},
		{"string", mp("@timestamp"), "", false},
		{"malformed", mp(M{{"a", 1}})[:3], "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := assertChecked(t, tt.in, tt.reserved); got != tt.clean {
				t.Errorf("clean = %v, want %v", got, tt.clean)
			}
		})
	}
	// Many keys take the hash index path for duplicates.
	var big M
	for i := 0; i < 40; i++ {
		big = append(big, kv{string(rune('a' + i%26)), i})
	}
	if !assertChecked(t, mp(big), "time") {
		t.Error("a big map without '@' keys is not clean")
	}
	if assertChecked(t, mp(append(big, kv{"@timestamp", 1})), "") {
		t.Error("a big map with @timestamp last is clean")
	}
	// Realistic records.
	_, gen := chunkgen.K8sChunk(3, 200, chunkgen.Options{})
	for _, g := range gen {
		if !assertChecked(t, mp(g.Record), "") {
			t.Fatal("a Kubernetes record is not clean")
		}
		if assertChecked(t, mp(g.Record), "time") {
			t.Fatal("a Kubernetes record with its time key is clean for time")
		}
	}
}

func TestAppendJSONCheckedAllocatesNothing(t *testing.T) {
	_, gen := chunkgen.K8sChunk(1, 1, chunkgen.Options{})
	rec := mp(gen[0].Record)
	buf := make([]byte, 0, 4096)
	if a := testing.AllocsPerRun(100, func() { buf, _, _ = AppendJSONChecked(buf[:0], rec, "time") }); a != 0 {
		t.Errorf("%v allocs", a)
	}
}

func FuzzAppendJSONChecked(f *testing.F) {
	_, gen := chunkgen.K8sChunk(1, 2, chunkgen.Options{})
	f.Add(mp(gen[0].Record), "time")
	f.Add(mp(M{{"@timestamp", 1}, {"a", M{{"@id", 1}}}, {"a", 2}}), "")
	f.Add(cat([]byte{0x82}, mp(5), mp("x"), mp("y"), mp(1)), "5")
	f.Fuzz(func(t *testing.T, in []byte, reserved string) {
		if reserved != "" && reserved != "time" {
			reserved = "time" // the check above decodes keys; keep the reserved key escape-free
		}
		assertChecked(t, in, reserved)
	})
}
