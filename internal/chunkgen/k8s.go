package chunkgen

import (
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// Record sizes K8sRecord aims for, in msgpack bytes.
const (
	MinRecordBytes = 400
	MaxRecordBytes = 1000
)

var namespaceNames = []string{"kube-system", "default", "payments", "checkout", "aws-awssdk", "monitoring", "ingress-nginx", "search"}
var containerNames = []string{"api", "worker", "nginx", "aws-node", "coredns", "fluent-bit", "redis", "frontend"}

// Namespace returns the i-th namespace name K8sChunk uses.
func Namespace(i int) string { return nth(namespaceNames, i) }

// Container returns the i-th container name K8sChunk uses.
func Container(i int) string { return nth(containerNames, i) }

func nth(names []string, i int) string {
	if i < len(names) {
		return names[i]
	}
	return fmt.Sprintf("%s-%d", names[i%len(names)], i/len(names))
}

// pod is what stays the same for all records of one container: derived from (ns, container) so
// every record of a container names the same pod, image and node.
type pod struct {
	name, id, host, dockerID, image, hash, hashLabel string
	labels, annotations                              Map // nil when the filter is set to leave them out
}

func podOf(ns, container string, replica int) pod {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s/%s/%d", ns, container, replica)
	r := rand.New(rand.NewPCG(h.Sum64(), 0x6b38))
	hexN := func(n int) string {
		b := make([]byte, (n+1)/2)
		for i := range b {
			b[i] = byte(r.UintN(256))
		}
		return hex.EncodeToString(b)[:n]
	}
	const alnum = "bcdfghjklmnpqrstvwxz2456789"
	suffix := make([]byte, 5)
	for i := range suffix {
		suffix[i] = alnum[r.IntN(len(alnum))]
	}
	hashLabel := hexN(10)
	digest := hexN(64)
	var image, hash string
	if r.IntN(2) == 0 { // a private ECR image
		registry := "123456789012.dkr.ecr.ap-northeast-2.amazonaws.com/"
		image = fmt.Sprintf("%s%s/%s:v1.%d.%d", registry, ns, container, r.IntN(20), r.IntN(10))
		hash = registry + ns + "/" + container + "@sha256:" + digest
	} else { // a public image
		image = fmt.Sprintf("%s:1.%d", container, r.IntN(30))
		hash = "docker.io/library/" + container + "@sha256:" + digest
	}
	p := pod{
		name:      container + "-" + hashLabel + "-" + string(suffix),
		id:        hexN(8) + "-" + hexN(4) + "-" + hexN(4) + "-" + hexN(4) + "-" + hexN(12),
		host:      fmt.Sprintf("ip-10-0-%d-%d.ap-northeast-2.compute.internal", r.IntN(256), r.IntN(256)),
		dockerID:  hexN(64),
		image:     image,
		hash:      hash,
		hashLabel: hashLabel,
	}
	// Labels and annotations as the kubernetes filter's Labels/Annotations settings and the
	// pod spec make them: absent, short or full.
	switch r.IntN(3) {
	case 1:
		p.labels = Map{{"app", container}, {"pod-template-hash", hashLabel}}
	case 2:
		p.labels = Map{
			{"app", container},
			{"app.kubernetes.io/name", container},
			{"app.kubernetes.io/part-of", ns},
			{"pod-template-hash", hashLabel},
		}
	}
	if r.IntN(2) == 0 {
		p.annotations = Map{
			{"kubectl.kubernetes.io/restartedAt", "2023-02-20T09:12:44Z"},
			{"prometheus.io/scrape", "true"},
		}
	}
	return p
}

var logLines = []func(r *rand.Rand, t time.Time) string{
	func(r *rand.Rand, t time.Time) string { // health check
		return fmt.Sprintf("GET /healthz %d %dus", []int{200, 200, 503}[r.IntN(3)], r.IntN(900))
	},
	func(r *rand.Rand, t time.Time) string { // JSON application log
		return fmt.Sprintf(`{"level":"%s","ts":"%s","msg":"request served","path":"/api/v1/orders/%d","status":%d,"duration_ms":%.3f,"trace_id":"%016x"}`,
			[]string{"info", "warn", "error", "debug"}[r.IntN(4)], t.Format(time.RFC3339Nano), r.IntN(100000),
			[]int{200, 201, 204, 400, 404, 500}[r.IntN(6)], r.Float64()*250, r.Uint64())
	},
	func(r *rand.Rand, t time.Time) string { // nginx access log
		return fmt.Sprintf(`10.0.%d.%d - - [%s] "GET /static/app.%x.js HTTP/1.1" %d %d "-" "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"`,
			r.IntN(256), r.IntN(256), t.Format("02/Jan/2006:15:04:05 -0700"), r.Uint32(), []int{200, 304, 404}[r.IntN(3)], r.IntN(90000))
	},
	func(r *rand.Rand, t time.Time) string { // Java stack trace line with a tab
		return fmt.Sprintf("\tat com.example.orders.OrderService.process(OrderService.java:%d) ~[app.jar:1.%d.0]", r.IntN(900)+10, r.IntN(30))
	},
	func(r *rand.Rand, t time.Time) string { // klog line
		return fmt.Sprintf("I%s %7d reconciler.go:%d] \"Reconciled\" object=\"default/cfg-%d\" duration=\"%dms\"",
			t.Format("0102 15:04:05.000000"), r.IntN(9999999), r.IntN(400), r.IntN(100), r.IntN(900))
	},
	func(r *rand.Rand, t time.Time) string { // non-ASCII text, quotes and a backslash
		return fmt.Sprintf(`주문 처리 완료: 고객 "%d" 경로 C:\data\orders\%d.json 결과=성공 ✓`, r.IntN(1e6), r.IntN(1e4))
	},
}

// K8sRecord returns one container log record as Fluent Bit's tail input with the cri parser and
// the kubernetes filter produce it: log, stream, time, kubernetes{...}. Its msgpack form is
// MinRecordBytes to MaxRecordBytes long. The pod, node and image are fixed per (ns, container)
// (two replicas); the log line and stream come from r.
func K8sRecord(r *rand.Rand, ns, container string, t time.Time) Map {
	t = t.UTC()
	p := podOf(ns, container, r.IntN(2))
	stream := "stdout"
	if r.IntN(5) == 0 {
		stream = "stderr"
	}
	line := logLines[r.IntN(len(logLines))](r, t)
	if r.IntN(4) == 0 { // some lines are long
		line += " " + strings.Repeat("payload-", 10+r.IntN(40))
	}
	kube := Map{
		{"pod_name", p.name},
		{"namespace_name", ns},
		{"pod_id", p.id},
	}
	if p.labels != nil {
		kube = append(kube, KV{"labels", p.labels})
	}
	if p.annotations != nil {
		kube = append(kube, KV{"annotations", p.annotations})
	}
	kube = append(kube,
		KV{"host", p.host},
		KV{"container_name", container},
		KV{"docker_id", p.dockerID},
		KV{"container_hash", p.hash},
		KV{"container_image", p.image},
	)
	rec := Map{
		{"log", line},
		{"stream", stream},
		{"time", t.Format(time.RFC3339Nano)},
		{"kubernetes", kube},
	}
	// Fit the size by trimming or padding the log line (on a rune boundary).
	size := len(AppendValue(nil, rec))
	switch {
	case size > MaxRecordBytes:
		cut := len(line) - (size - MaxRecordBytes) - 2 // -2: the str header may shrink by less
		for cut > 0 && !isRuneStart(line[cut]) {
			cut--
		}
		rec[0].Value = line[:cut]
	case size < MinRecordBytes:
		rec[0].Value = line + " " + strings.Repeat("x", MinRecordBytes-size+2)
	}
	return rec
}

func isRuneStart(b byte) bool { return b&0xc0 != 0x80 }

// Options shape a generated chunk.
type Options struct {
	Namespaces int       // distinct namespaces (default 1)
	Containers int       // distinct containers per namespace (default 1)
	Start      time.Time // first day, UTC midnight recommended (default 2023-02-22)
	Days       int       // records spread over this many days from Start (default 1)
	Legacy     bool      // write [ts, record] events instead of v2
	TimeForm   TimeForm  // timestamp form of legacy events (v2 always uses TimeExt)
	GroupEvery int       // if > 0, wrap every GroupEvery records in group start/end markers
}

// Generated is one record of a generated chunk, as a reader should get it back.
type Generated struct {
	Time      time.Time // the decoded time (see ReadBack)
	Namespace string
	Container string
	Record    Map
}

// defaultStart is the day K8sChunk starts on when Options.Start is zero (the day of the design
// document's example).
var defaultStart = time.Date(2023, 2, 22, 0, 0, 0, 0, time.UTC)

// K8sChunk returns a chunk of n Kubernetes container records in time order, spread at random
// (but deterministically, from seed) over the namespaces, containers and days of opts, and
// the records it wrote, in chunk order. Group markers, when asked for, are not in the list.
func K8sChunk(seed uint64, n int, opts Options) ([]byte, []Generated) {
	nsN, ctN, days := max(opts.Namespaces, 1), max(opts.Containers, 1), max(opts.Days, 1)
	start := opts.Start
	if start.IsZero() {
		start = defaultStart
	}
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	span := int64(days) * int64(24*time.Hour)
	offs := make([]int64, n)
	for i := range offs {
		offs[i] = r.Int64N(span)
	}
	slices.Sort(offs)
	chunk := make([]byte, 0, n*800)
	gen := make([]Generated, 0, n)
	form := TimeExt
	if opts.Legacy {
		form = opts.TimeForm
	}
	for i, off := range offs {
		if opts.GroupEvery > 0 && i%opts.GroupEvery == 0 {
			if i > 0 {
				chunk = AppendGroupEnd(chunk)
			}
			chunk = AppendGroupStart(chunk, map[string]any{"schema": "otlp"}, Map{{"resource", Map{{"service.name", "gen"}}}})
		}
		t := start.Add(time.Duration(off))
		ns, ct := Namespace(r.IntN(nsN)), Container(r.IntN(ctN))
		rec := K8sRecord(r, ns, ct, t)
		if opts.Legacy {
			chunk = AppendLegacy(chunk, t, form, rec)
		} else {
			chunk = AppendV2(chunk, t, nil, rec)
		}
		gen = append(gen, Generated{Time: ReadBack(t, form), Namespace: ns, Container: ct, Record: rec})
	}
	if opts.GroupEvery > 0 && n > 0 {
		chunk = AppendGroupEnd(chunk)
	}
	return chunk, gen
}

// JSON returns the value as encoding/json decodes the JSON of it: Map and map[string]any become
// map[string]any (the last of repeated keys wins), numbers float64, Bin and []byte strings,
// arrays []any. Time values (and Ext) have no single JSON form and panic.
func JSON(v any) any {
	switch v := v.(type) {
	case nil, bool, string:
		return v
	case int:
		return float64(v)
	case int8:
		return float64(v)
	case int16:
		return float64(v)
	case int32:
		return float64(v)
	case int64:
		return float64(v)
	case uint:
		return float64(v)
	case uint8:
		return float64(v)
	case uint16:
		return float64(v)
	case uint32:
		return float64(v)
	case uint64:
		return float64(v)
	case float32:
		return float64(v)
	case float64:
		return v
	case Bin:
		return string(v)
	case []byte:
		return string(v)
	case Map:
		m := make(map[string]any, len(v))
		for _, kv := range v {
			m[kv.Key] = JSON(kv.Value)
		}
		return m
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, e := range v {
			m[k] = JSON(e)
		}
		return m
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = JSON(e)
		}
		return out
	case []string:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = e
		}
		return out
	case []Map:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = JSON(e)
		}
		return out
	}
	panic(fmt.Sprintf("chunkgen: no JSON form for %T", v))
}
