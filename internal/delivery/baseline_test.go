package delivery

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unsafe"

	"github.com/fluent/fluent-bit-go/output"
)

// baseline is the per-record path of the AWS Go plugin (amazon-cloudwatch-logs-for-fluent-bit)
// and of most Go outputs built on fluent-bit-go: output.NewDecoder/GetRecord into
// map[interface{}]interface{}, a recursive conversion to string-keyed maps, names rendered by
// looking the keys up in those maps, encoding/json for the CloudWatch message and for the
// OpenSearch document, appended to a batch and an NDJSON body. It is the figure ours is compared
// with in BenchmarkHotPath.
type baseline struct {
	cwBatch [][]byte
	body    bytes.Buffer
}

func (b *baseline) flush(chunk []byte, tag string) (int, error) {
	b.cwBatch = b.cwBatch[:0]
	b.body.Reset()
	dec := output.NewDecoder(unsafe.Pointer(&chunk[0]), len(chunk))
	n := 0
	for {
		ret, ts, rec := output.GetRecord(dec)
		if ret != 0 {
			break
		}
		var t time.Time
		switch v := ts.(type) {
		case output.FLBTime:
			t = v.Time
		case uint64:
			t = time.Unix(int64(v), 0)
		}
		m := stringKeys(rec).(map[string]any)
		k8s, _ := m["kubernetes"].(map[string]any)
		ns, _ := k8s["namespace_name"].(string)
		ctr, _ := k8s["container_name"].(string)
		group := "/aws/containerinsights/demo." + ns + "." + ctr
		stream := "node-1-" + tag
		index := "cwl" + strings.NewReplacer("/", "-", ".", "-").Replace(strings.ToLower(group)) + t.UTC().Format("-2006.01.02")
		msg, err := json.Marshal(m)
		if err != nil {
			return n, err
		}
		b.cwBatch = append(b.cwBatch, msg)
		doc := make(map[string]any, len(m)+6)
		for k, v := range m {
			doc[k] = v
		}
		doc["@id"] = fmt.Sprintf("%d-%d", t.UnixNano(), n)
		doc["@timestamp"] = t.UTC().Format("2006-01-02T15:04:05.000Z")
		doc["@message"] = string(msg)
		doc["@log_group"] = group
		doc["@log_stream"] = stream
		action, _ := json.Marshal(map[string]any{"create": map[string]any{"_index": index, "_id": doc["@id"]}})
		body, err := json.Marshal(doc)
		if err != nil {
			return n, err
		}
		b.body.Write(action)
		b.body.WriteByte('\n')
		b.body.Write(body)
		b.body.WriteByte('\n')
		n++
	}
	return n, nil
}

// stringKeys converts what ugorji's decoder returns into values encoding/json accepts, as the
// AWS plugin does before marshalling.
func stringKeys(v any) any {
	switch x := v.(type) {
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, val := range x {
			var ks string
			switch kk := k.(type) {
			case string:
				ks = kk
			case []byte:
				ks = string(kk)
			default:
				ks = fmt.Sprint(kk)
			}
			m[ks] = stringKeys(val)
		}
		return m
	case []any:
		for i := range x {
			x[i] = stringKeys(x[i])
		}
		return x
	case []byte:
		return string(x)
	}
	return v
}
