package e2e_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cwos/cloudwatch-opensearch/internal/chunkgen"
	"github.com/cwos/cloudwatch-opensearch/test/hostrun"
)

// hostileRecord is a record made to break encoders, with the check its JSON must pass.
type hostileRecord struct {
	seq   int
	t     time.Time
	value any                           // chunkgen value of the record (a Map or Raw), seqKey first
	check func(m map[string]any) string // on the JSON (numbers as json.Number), "" if fine
}

func nested(depth int) any {
	if depth == 0 {
		return "bottom"
	}
	return chunkgen.Map{{Key: "d", Value: nested(depth - 1)}}
}

// depthOf counts the maps from m down key and then the "d" chain (m itself is 1).
func depthOf(m map[string]any, key string) int {
	n := 1
	v, ok := m[key].(map[string]any)
	for ok {
		n++
		v, ok = v["d"].(map[string]any)
	}
	return n
}

func hostileRecords(base time.Time) []hostileRecord {
	at := func(i int) time.Time { return base.Add(time.Duration(i) * time.Second) }
	want := func(key string, v any) func(map[string]any) string {
		return func(m map[string]any) string {
			if !reflect.DeepEqual(m[key], v) {
				return key + " = " + strconv.Quote(jsonText(m[key])) + ", want " + strconv.Quote(jsonText(v))
			}
			return ""
		}
	}
	// A map with an integer key and a nil key, which JSON has no form for.
	odd := chunkgen.AppendMapHeader(nil, 3)
	odd = chunkgen.AppendString(odd, seqKey)
	odd = chunkgen.AppendInt(odd, 405)
	odd = chunkgen.AppendInt(odd, 7)
	odd = chunkgen.AppendString(odd, "seven")
	odd = append(odd, 0xc0)
	odd = chunkgen.AppendString(odd, "nil key")
	return []hostileRecord{
		{400, at(0), chunkgen.Pairs(seqKey, 400, "bin", chunkgen.Bin{0, 1, 'a', 0xfe, 0xff}), func(m map[string]any) string {
			if s, ok := m["bin"].(string); !ok || !strings.Contains(s, "a") || !strings.HasPrefix(s, "\x00\x01") {
				return "binary value not written as a string: " + jsonText(m["bin"])
			}
			return ""
		}},
		{401, at(1), chunkgen.Pairs(seqKey, 401, "log", "ok \xff\xfe bad \xc3", "k\xff", "v"), func(m map[string]any) string {
			s, _ := m["log"].(string)
			if !strings.HasPrefix(s, "ok \uFFFD") || !strings.HasSuffix(s, " bad \uFFFD") || m["k\uFFFD"] != "v" {
				return "invalid UTF-8 not replaced by U+FFFD: " + jsonText(m)
			}
			return ""
		}},
		{402, at(2), chunkgen.Pairs(seqKey, 402, "deep", nested(99)), func(m map[string]any) string {
			if d := depthOf(m, "deep"); d != 100 {
				return "nesting of " + strconv.Itoa(d) + " maps, want 100"
			}
			return ""
		}},
		{403, at(3), chunkgen.Pairs(seqKey, 403, "dup", 1, "dup", 2), want("dup", json.Number("2"))},
		{404, at(4), chunkgen.Pairs(seqKey, 404, "nan", math.NaN(), "inf", math.Inf(1), "ninf", math.Inf(-1),
			"big", uint64(math.MaxUint64), "neg", int64(math.MinInt64), "f", 0.1), func(m map[string]any) string {
			for _, c := range []func(map[string]any) string{want("nan", nil), want("inf", nil), want("ninf", nil),
				want("big", json.Number("18446744073709551615")), want("neg", json.Number("-9223372036854775808"))} {
				if p := c(m); p != "" {
					return p
				}
			}
			if f, err := m["f"].(json.Number).Float64(); err != nil || f != 0.1 {
				return "0.1 became " + jsonText(m["f"])
			}
			return ""
		}},
		{405, at(5), chunkgen.Raw(odd), func(m map[string]any) string { return "" }},
		{406, at(6), chunkgen.Pairs(seqKey, 406, "k\"\\\n\t\x01", "v\x00\u2028 end"), want("k\"\\\n\t\x01", "v\x00\u2028 end")},
		{407, at(7), chunkgen.Pairs(seqKey, 407, "ext", chunkgen.Ext{Type: 5, Data: []byte{1, 2, 3}}, "when", base), func(m map[string]any) string { return "" }},
		{408, base.Add(-15 * 24 * time.Hour), chunkgen.Pairs(seqKey, 408, "log", "15 days old"), want("log", "15 days old")},
		{409, at(9), chunkgen.Pairs(seqKey, 409, "status", "not-a-number"), want("status", "not-a-number")},
		{411, at(11), chunkgen.Pairs(seqKey, 411, "arr", []any{1, "two", []any{3, []any{4}}, chunkgen.Pairs("five", 5), nil, true}),
			want("arr", []any{json.Number("1"), "two", []any{json.Number("3"), []any{json.Number("4")}}, map[string]any{"five": json.Number("5")}, nil, true})},
	}
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func decodeNumbers(b []byte) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	err := d.Decode(&m)
	return m, err
}

var leadingSeq = regexp.MustCompile(`^\{"` + seqKey + `":(\d+)[,}]`)

// TestHostileInput (issue test 6, second half): a malformed chunk, a chunk of only group
// markers, an empty chunk, an undecodable chunk, a 5 MB record, binary and invalid UTF-8 values,
// 100-deep nesting, duplicate keys, NaN, 64-bit extremes, non-string keys, ext values, a record
// CloudWatch refuses (15 days old) and one OpenSearch refuses (a mapping error): the process
// stays up, every valid record is delivered once with a faithful JSON form, and every record a
// destination refuses is counted and dead-lettered with its reason.
func TestHostileInput(t *testing.T) {
	t.Parallel()
	p := startPeers(t, peerOptions{Seed: 9})
	p.bulk.RejectDocuments("status", func(_ string, src []byte) bool { return bytes.Contains(src, []byte(`"`+seqKey+`":409`)) })
	base := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	dlq := filepath.Join(t.TempDir(), "dead-letters.jsonl")
	files := map[string][]byte{"a.props": []byte(p.props("dead_letter_file " + dlq))}

	// Valid Kubernetes records before and after the hostile chunks.
	k8s := k8sRecords(9, 100, 0, chunkgen.Options{Namespaces: 2, Containers: 2, Start: recentDays(1), Days: 1})
	files["valid1.bin"] = chunks(k8s[:50], 50)[0]
	files["valid2.bin"] = chunks(k8s[50:], 50)[0]

	simple := func(seq int, i int) chunkgen.Map {
		return chunkgen.Pairs(seqKey, seq, "log", "line "+strconv.Itoa(i))
	}
	var mal []byte
	mal = chunkgen.AppendV2(mal, base, nil, simple(200, 0))
	mal = chunkgen.AppendV2(mal, base.Add(time.Second), nil, simple(201, 1))
	mal = chunkgen.AppendLegacy(mal, base, chunkgen.TimeExt, "a record that is not a map")
	mal = append(mal, 0x92, 0x92)                    // [[ts, meta], record] whose ts is a string
	mal = chunkgen.AppendString(mal, "not a time")   //
	mal = append(mal, 0x80)                          //
	mal = chunkgen.AppendValue(mal, simple(210, 10)) // never delivered
	mal = chunkgen.AppendV2(mal, base.Add(2*time.Second), nil, simple(202, 2))
	trunc := chunkgen.AppendV2(nil, base.Add(3*time.Second), nil, simple(211, 11))
	mal = append(mal, trunc[:len(trunc)-5]...) // cut inside the last event: unreadable
	files["malformed.bin"] = mal
	files["markers.bin"] = chunkgen.AppendGroupEnd(chunkgen.AppendGroupStart(nil, map[string]any{"schema": "otlp"}, chunkgen.Pairs("resource", chunkgen.Map{})))
	files["empty.bin"] = nil
	files["garbage.bin"] = bytes.Repeat([]byte{0xc1}, 64)

	const bigLen = 5_000_000
	big := chunkgen.AppendV2(nil, base.Add(4*time.Second), nil, chunkgen.Pairs(seqKey, 300, "log", strings.Repeat("0123456789abcdef", bigLen/16)))
	big = chunkgen.AppendV2(big, base.Add(5*time.Second), nil, simple(301, 3))
	files["big.bin"] = big

	hostile := hostileRecords(base.Add(10 * time.Second))
	var weird []byte
	for _, h := range hostile {
		weird = chunkgen.AppendV2(weird, h.t, nil, h.value)
	}
	files["weird.bin"] = weird

	wantRC := map[string]int{"valid1.bin": 1, "malformed.bin": 1, "markers.bin": 1, "empty.bin": 1, "garbage.bin": 0, "big.bin": 1, "weird.bin": 1, "valid2.bin": 1}
	order := []string{"valid1.bin", "malformed.bin", "markers.bin", "empty.bin", "garbage.bin", "big.bin", "weird.bin", "valid2.bin"}
	var s script
	s.line("instance a a.props")
	for _, f := range order {
		s.line("flush a %s kube.hostile", f)
	}
	s.line("exit a")
	res := runHost(t, hostrun.Options{Files: files, Script: s.String(), Args: []string{"--max-retries", "2"}, Timeout: 3 * time.Minute})
	if res.Status != 0 {
		t.Fatalf("host exit status %d: the process did not survive", res.Status)
	}
	fl := hostrun.Lines(res.Stdout, "flush a ")
	if len(fl) != len(order) {
		t.Fatalf("%d flush lines for %d chunks", len(fl), len(order))
	}
	for i, f := range order {
		if rc := hostrun.Field(t, fl[i], "rc"); rc != wantRC[f] {
			t.Errorf("%s: %q, want rc=%d", f, fl[i], wantRC[f])
		}
	}

	// Read both destinations back by sequence number.
	cwHits := map[int][]string{}
	var mu sync.Mutex
	forEachEvent(t, p.moto, func(group, stream string, ts int64, msg string) {
		// The hostile records carry their number first, so it survives truncation.
		n := -1
		if m := leadingSeq.FindStringSubmatch(msg); m != nil {
			n, _ = strconv.Atoi(m[1])
		} else if m, err := decodeNumbers([]byte(msg)); err == nil {
			if v, ok := m[seqKey].(json.Number); ok {
				n, _ = strconv.Atoi(string(v))
			}
		}
		if n < 0 {
			t.Errorf("event without %s in %s/%s: %.200s", seqKey, group, stream, msg)
			return
		}
		mu.Lock()
		cwHits[n] = append(cwHits[n], msg)
		mu.Unlock()
	})
	osHits := map[int][]map[string]any{}
	osIndex := map[int]string{}
	p.bulk.Each(func(index, id string, src []byte) {
		m, err := decodeNumbers(src)
		if err != nil {
			t.Errorf("document %s/%s is not JSON: %v", index, id, err)
			return
		}
		n, _ := strconv.Atoi(string(m[seqKey].(json.Number)))
		osHits[n] = append(osHits[n], m)
		osIndex[n] = index
	})

	ctr := counters(t, res.Stderr, "cloudwatch_opensearch.0")
	valid := map[int]bool{200: true, 201: true, 202: true, 300: true, 301: true}
	for _, r := range k8s {
		valid[r.Seq] = true
	}
	for _, h := range hostile {
		valid[h.seq] = true
	}
	for _, never := range []int{210, 211} {
		if len(cwHits[never])+len(osHits[never]) != 0 {
			t.Errorf("record %d from an unreadable event was delivered", never)
		}
	}
	var cwDelivered, osDelivered, cwDups, osDups int
	for seq := range valid {
		cwN, osN := len(cwHits[seq]), len(osHits[seq])
		cwDups += max(cwN-1, 0)
		osDups += max(osN-1, 0)
		if cwN > 0 {
			cwDelivered++
		}
		if osN > 0 {
			osDelivered++
		}
		wantCW, wantOS := 1, 1
		switch seq {
		case 408: // too old for CloudWatch
			wantCW = 0
		case 409: // mapping error in OpenSearch
			wantOS = 0
		case 300: // 10 MB as a cwl document: sent alone, or refused and reported
			wantOS = osN
		}
		if cwN != wantCW || osN != wantOS {
			t.Errorf("record %d: %d times in CloudWatch (want %d), %d in OpenSearch (want %d)", seq, cwN, wantCW, osN, wantOS)
		}
	}
	// The record content, where it is hostile.
	for _, h := range hostile {
		for _, msg := range cwHits[h.seq] {
			m, err := decodeNumbers([]byte(msg))
			if err != nil {
				t.Errorf("record %d: CloudWatch message is not JSON: %v", h.seq, err)
			} else if p := h.check(m); p != "" {
				t.Errorf("record %d in CloudWatch: %s", h.seq, p)
			}
		}
		for _, m := range osHits[h.seq] {
			if p := h.check(m); p != "" {
				t.Errorf("record %d in OpenSearch: %s", h.seq, p)
			}
		}
	}
	for _, msg := range cwHits[300] {
		if len(msg) > 1_048_576-26 || !strings.Contains(msg[len(msg)-200:], "truncated") {
			t.Errorf("the 5 MB record reached CloudWatch as %d bytes ending %q, want it cut to one event with a marker", len(msg), msg[max(len(msg)-120, 0):])
		}
	}
	bigRejected := 0
	if len(osHits[300]) == 0 {
		bigRejected = 1
	} else if m := osHits[300][0]; len(m["log"].(string)) != bigLen {
		t.Errorf("the 5 MB record reached OpenSearch with a log of %d bytes", len(m["log"].(string)))
	}
	if want := 1 + bigRejected; ctr["rejected_opensearch"] != int64(want) {
		t.Errorf("rejected_opensearch=%d, want %d", ctr["rejected_opensearch"], want)
	}
	if ctr["rejected_cloudwatch"] != 1 {
		t.Errorf("rejected_cloudwatch=%d, want 1 (the 15-day-old record)", ctr["rejected_cloudwatch"])
	}
	if ctr["malformed_events"] != 4 {
		t.Errorf("malformed_events=%d, want 4 (not a map, bad timestamp, truncated; the garbage chunk)", ctr["malformed_events"])
	}
	if osIndex[408] != lambdaIndex("/e2e/fallback", base.Add(-15*24*time.Hour)) {
		t.Errorf("the old record went to index %q", osIndex[408])
	}
	if !strings.Contains(res.Stderr, "garbage") && !strings.Contains(res.Stderr, "nothing decodable") {
		t.Error("the undecodable chunk was not reported")
	}

	// Every refusal is in the dead-letter file with its reason.
	dead := readDeadLetters(t, dlq)
	for _, want := range []struct {
		seq  int
		dest string
	}{{408, "cloudwatch"}, {409, "opensearch"}} {
		e, ok := dead[want.seq]
		if !ok || e.Destination != want.dest || e.Reason == "" || e.Type == "" {
			t.Errorf("dead letter of record %d: %+v, want one from %s with a type and reason", want.seq, e, want.dest)
		}
	}
	if len(dead) != 2+bigRejected {
		t.Errorf("%d dead letters, want %d", len(dead), 2+bigRejected)
	}
	summarize(t, "records in=%d valid + 2 unreadable in %d chunks; cloudwatch delivered=%d dup=%d; opensearch delivered=%d dup=%d; duplicates cw=%d os=%d; rejected cw=%d os=%d (dead-lettered %d); malformed events=%d; 5 MB record: cloudwatch truncated, opensearch %s",
		len(valid), len(order), cwDelivered, cwDups, osDelivered, osDups, cwDups, osDups, ctr["rejected_cloudwatch"], ctr["rejected_opensearch"],
		len(dead), ctr["malformed_events"], map[int]string{0: "delivered whole", 1: "rejected and reported"}[bigRejected])
}

type deadLetter struct {
	Destination, Target, Type, Reason string
	Status                            int
	Record                            json.RawMessage
}

func readDeadLetters(t *testing.T, path string) map[int]deadLetter {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("dead-letter file: %v", err)
	}
	defer f.Close()
	out := map[int]deadLetter{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		var e deadLetter
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Errorf("dead letter is not JSON: %v", err)
			continue
		}
		m := leadingSeq.FindSubmatch(e.Record)
		if m == nil {
			t.Errorf("dead letter without the record's %s: %.200s", seqKey, e.Record)
			continue
		}
		n, _ := strconv.Atoi(string(m[1]))
		out[n] = e
	}
	if err := sc.Err(); err != nil {
		t.Errorf("dead-letter file: %v", err)
	}
	return out
}
