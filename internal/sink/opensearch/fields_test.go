package opensearch

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cwos/cloudwatch-opensearch/internal/chunkgen"
	"github.com/cwos/cloudwatch-opensearch/internal/config"
	"github.com/cwos/cloudwatch-opensearch/internal/event"
	"github.com/cwos/cloudwatch-opensearch/internal/sink"
)

// fieldsRecords returns Kubernetes records, some with the keys the documents replace or skip
// (@timestamp, @message, @owner, time, ts) at the top level or nested, some with repeated keys.
func fieldsRecords(t *testing.T) [][]byte {
	t.Helper()
	_, gen := chunkgen.K8sChunk(7, 300, chunkgen.Options{Namespaces: 3, Containers: 4})
	rng := rand.New(rand.NewPCG(7, 8))
	extra := []chunkgen.KV{
		{Key: "@timestamp", Value: "from the record"},
		{Key: "@message", Value: "from the record"},
		{Key: "@owner", Value: "record-owner"},
		{Key: "@log_group", Value: 1},
		{Key: "ts", Value: "old"},
		{Key: "time", Value: 12},
		{Key: "nested", Value: m("@timestamp", "x", "ts", "y")},
		{Key: "log", Value: "a repeated key"},
		{Key: "stream", Value: m("a", 1)},
		{Key: "a@b", Value: true},
	}
	var out [][]byte
	for i, g := range gen {
		rec := append(chunkgen.Map(nil), g.Record...)
		if i%3 != 0 { // a third stay as generated
			for k := rng.IntN(3); k >= 0; k-- {
				kv := extra[rng.IntN(len(extra))]
				at := rng.IntN(len(rec) + 1)
				rec = append(rec[:at], append([]chunkgen.KV{kv}, rec[at:]...)...)
			}
		}
		out = append(out, chunkgen.AppendValue(nil, rec))
	}
	out = append(out, chunkgen.AppendValue(nil, chunkgen.Map{}), chunkgen.AppendValue(nil, m("@timestamp", 1)), chunkgen.AppendValue(nil, m("ts", 1)))
	return out
}

// TestFieldsMatchAppendFields: a document written from sink.Record.Fields, as the orchestration
// fills it, is byte for byte the document written by transcoding the record again, for every
// document kind, with and without @owner, for any time_key, and when Fields was checked against
// another key than the encoder's.
func TestFieldsMatchAppendFields(t *testing.T) {
	recs := fieldsRecords(t)
	when := time.Date(2023, 2, 22, 1, 2, 3, 456_000_000, time.UTC)
	cfgs := []struct {
		name  string
		cfg   config.Config
		owner string
	}{
		{"cwl", config.Config{OpenSearchDocument: config.DocumentCWL, OpenSearchID: true, TimeKey: "ts"}, "558846430793"},
		{"cwl without owner", config.Config{OpenSearchDocument: config.DocumentCWL}, ""},
		{"record @timestamp", config.Config{OpenSearchDocument: config.DocumentRecord, OpenSearchID: true, TimeKey: "@timestamp"}, ""},
		{"record ts", config.Config{OpenSearchDocument: config.DocumentRecord, OpenSearchID: true, TimeKey: "ts"}, ""},
		{"record time", config.Config{OpenSearchDocument: config.DocumentRecord, TimeKey: "time"}, "1"},
		{"record without time", config.Config{OpenSearchDocument: config.DocumentRecord}, ""},
	}
	for _, c := range cfgs {
		t.Run(c.name, func(t *testing.T) {
			e := newEncoder(&c.cfg, c.owner)
			reused := 0
			for i, raw := range recs {
				// The orchestration checks the time key for record documents only; check the
				// other keys too, as a misconfigured caller might.
				for _, reserved := range []string{"", "ts", "time", "@timestamp"} {
					msg, clean, err := event.AppendJSONChecked(nil, raw, reserved)
					if err != nil {
						t.Fatal(err)
					}
					old := sink.Record{Seq: i, Time: when, Raw: raw, Message: msg, ID: event.ID{byte(i)}, Group: "/g", Stream: "s", Index: "cwl-g"}
					cur := old
					if clean {
						cur.Fields, cur.FieldsKey = msg[1:len(msg)-1:len(msg)-1], reserved
					}
					want, okWant := e.appendItem([]byte("x"), &old)
					got, ok := e.appendItem([]byte("x"), &cur)
					if !bytes.Equal(got, want) || ok != okWant {
						t.Fatalf("record %d, reserved %q: from Fields\n%s\nby transcoding\n%s", i, reserved, got, want)
					}
					if clean && (!e.keyed || reserved == e.fieldsKey) {
						reused++
					}
				}
			}
			// Every Kubernetes record has a "time" key: with time_key time none can be reused.
			if c.cfg.TimeKey != "time" && reused < len(recs)/4 || c.cfg.TimeKey == "time" && reused > 2 {
				t.Fatalf("Fields used for %d of %d records: the test does not exercise it", reused, 4*len(recs))
			}
		})
	}
}

// TestFieldsAreTrusted: the encoder writes Fields as given when it may, so the orchestration's
// check is what keeps documents right (this pins that the fast path is taken).
func TestFieldsAreTrusted(t *testing.T) {
	raw := chunkgen.AppendValue(nil, m("a", 1))
	r := sink.Record{Raw: raw, Message: []byte(`{"a":1}`), Fields: []byte(`"b":2`), Index: "i"}
	cwl := newEncoder(&config.Config{OpenSearchDocument: config.DocumentCWL}, "")
	if out, _ := cwl.appendItem(nil, &r); !bytes.Contains(out, []byte(`{"b":2,"@id"`)) {
		t.Fatalf("cwl document ignored Fields: %s", out)
	}
	rec := newEncoder(&config.Config{OpenSearchDocument: config.DocumentRecord, TimeKey: "ts"}, "")
	if out, _ := rec.appendItem(nil, &r); !bytes.Contains(out, []byte(`{"a":1,"ts"`)) {
		t.Fatalf("record document used Fields checked for another key: %s", out)
	}
	r.FieldsKey = "ts"
	if out, _ := rec.appendItem(nil, &r); !bytes.Contains(out, []byte(`{"b":2,"ts"`)) {
		t.Fatalf("record document ignored Fields checked for its key: %s", out)
	}
}
