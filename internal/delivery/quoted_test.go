package delivery

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/cwos/cloudwatch-opensearch/internal/chunkgen"
	"github.com/cwos/cloudwatch-opensearch/internal/event"
)

// quotingChunk holds Kubernetes records (whose metadata maps repeat, so the transcoder's memory
// is used) and records that take the other paths: a repeated key inside a nested map, hostile
// strings, '@' keys (no Fields), and nesting too deep to transcode (the cwos_error message).
func quotingChunk() []byte {
	chunk := k8sChunk(60)
	at := time.Unix(1677027723, 0)
	meta := chunkgen.Map{{Key: "pod_name", Value: "web-1"}, {Key: "labels", Value: chunkgen.Map{{Key: "app", Value: "a"}, {Key: "app", Value: "b\"\\"}}}, {Key: "host", Value: strings.Repeat("h", 64)}}
	for i := 0; i < 3; i++ {
		chunk = chunkgen.AppendV2(chunk, at, nil, chunkgen.Map{{Key: "log", Value: "bad\xff \u2028 \x01 \"q\" 주문"}, {Key: "kubernetes", Value: meta}})
		chunk = chunkgen.AppendV2(chunk, at, nil, chunkgen.Map{{Key: "@timestamp", Value: 1.5}, {Key: "kubernetes", Value: meta}})
	}
	var deep any = "x"
	for i := 0; i < 600; i++ {
		deep = []any{deep}
	}
	return chunkgen.AppendV2(chunk, at, nil, chunkgen.Map{{Key: "deep", Value: deep}})
}

// TestPrepareQuotedMessage: with cwl documents every record's MessageJSON is AppendString of
// its Message (the transcoding error's message excepted: it has none), and the OpenSearch body
// is the one escaping Message gives; with record documents, OpenSearch off, or log_key, no
// MessageJSON is made.
func TestPrepareQuotedMessage(t *testing.T) {
	chunk := quotingChunk()
	for _, tc := range []struct {
		name   string
		kv     []string
		quoted bool
	}{
		{"cwl", nil, true},
		{"record documents", []string{"opensearch_document", "record"}, false},
		{"opensearch off", []string{"opensearch", "off"}, false},
		{"log_key", []string{"log_key", "log"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHotPath(t)
			in, _ := newTest(t, props(tc.kv...), newFake("cloudwatch"), newFake("opensearch"))
			st := new(flushState)
			for round := 0; round < 2; round++ { // the second round reuses state and memory
				evs, stats := event.Decode(chunk, st.events[:0])
				st.events = evs
				if stats.Malformed != 0 {
					t.Fatalf("decode: %+v", stats)
				}
				in.prepare(st, "kube.a")
				quoted := 0
				for i := range st.recs {
					r := &st.recs[i]
					if r.MessageJSON == nil {
						continue
					}
					quoted++
					if want := event.AppendString(nil, r.Message); !bytes.Equal(r.MessageJSON, want) {
						t.Fatalf("record %d: MessageJSON %.200q, want %.200q", i, r.MessageJSON, want)
					}
					// The document is what escaping Message again writes.
					plain := *r
					plain.MessageJSON = nil
					if got, want := h.enc.AppendItem(nil, r), h.enc.AppendItem(nil, &plain); !bytes.Equal(got, want) {
						t.Fatalf("record %d: document %.300q, want %.300q", i, got, want)
					}
				}
				if want := len(st.recs) - 1; tc.quoted && quoted != want {
					t.Fatalf("%d of %d records have MessageJSON, want %d (all but the too deep one)", quoted, len(st.recs), want)
				}
				if !tc.quoted && quoted != 0 {
					t.Fatalf("%d records have MessageJSON", quoted)
				}
				if last := st.recs[len(st.recs)-1]; !bytes.HasPrefix(last.Message, []byte(`{"cwos_error":`)) {
					t.Fatalf("too deep record: message %.100q", last.Message)
				}
			}
		})
	}
}
