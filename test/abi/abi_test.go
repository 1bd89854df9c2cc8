package abi_test

import (
	"fmt"
	"maps"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cwos/cloudwatch-opensearch/internal/config"
	"github.com/cwos/cloudwatch-opensearch/test/hostrun"
)

func TestMain(m *testing.M) {
	code := m.Run()
	hostrun.Cleanup()
	os.Exit(code)
}

// scenario is one run of the host.
type scenario struct {
	files  map[string]string // file name (in the run's directory) -> content
	script string
	args   []string // host options
	asan   bool     // the host and the plugin built with AddressSanitizer (hostrun.BuildASan)
}

// run executes the host with a script in a fresh directory and returns what it printed. The
// environment holds static test credentials and no AWS configuration, so nothing but the
// loopback ports in the properties is ever contacted.
func run(t *testing.T, sc scenario) hostrun.Result {
	t.Helper()
	build := hostrun.Build
	if sc.asan {
		build = hostrun.BuildASan
	}
	so, host := build(t)
	files := make(map[string][]byte, len(sc.files))
	for name, content := range sc.files {
		files[name] = []byte(content)
	}
	return hostrun.Run(t, hostrun.Options{
		SO: so, Host: host, Files: files, Script: sc.script, Args: sc.args,
		Timeout: 90 * time.Second,
		Env: []string{
			"AWS_ACCESS_KEY_ID=AKIDABITEST",
			"AWS_SECRET_ACCESS_KEY=abi-test-secret",
			"AWS_REGION=us-east-1",
			"ASAN_OPTIONS=halt_on_error=1:abort_on_error=0:exitcode=66",
		},
	})
}

// deadPort returns a loopback port nothing listens on: connections to it are refused.
func deadPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

// unreachableProps is a valid configuration whose every endpoint is a refused loopback port.
// Each "key value" of extra replaces the line of the same key or is added (Fluent Bit would take
// the first of two lines with one key).
func unreachableProps(t *testing.T, extra ...string) string {
	return hostrun.Props([]string{
		"# [OUTPUT] of a test",
		"Name cloudwatch_opensearch",
		"Match *",
		"region us-east-1",
		"log_group_name /abi/test",
		"log_stream_prefix abi-",
		"auto_create_group on",
		fmt.Sprintf("cloudwatch_endpoint http://127.0.0.1:%d", deadPort(t)),
		fmt.Sprintf("sts_endpoint http://127.0.0.1:%d", deadPort(t)),
		fmt.Sprintf("opensearch_endpoint http://127.0.0.1:%d", deadPort(t)),
		"flush_timeout 1s",
		"request_timeout 500ms",
		"exit_grace 2s",
	}, extra...)
}

func wantLine(t *testing.T, out, line string) {
	t.Helper()
	if !slices.Contains(strings.Split(out, "\n"), line) {
		t.Errorf("missing line %q", line)
	}
}

func wantStatus(t *testing.T, r hostrun.Result, status int) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("host exit status %d, want %d", r.Status, status)
	}
	if v := hostrun.Lines(r.Stdout, "violation:"); len(v) > 0 {
		t.Errorf("ABI violations: %q", v)
	}
}

func TestRegister(t *testing.T) {
	t.Parallel()
	r := run(t, scenario{script: "# load, register, unregister\n"})
	wantStatus(t, r, 0)
	reg := hostrun.Lines(r.Stdout, "register ")
	if len(reg) != 1 || !strings.HasPrefix(reg[0], "register rc=0 name=cloudwatch_opensearch type=2 proxy=11 flags=0 description=") {
		t.Fatalf("register lines = %q", reg)
	}
	wantLine(t, r.Stdout, "symbols flush_ctx=1 flush=1 exit_ctx=1 exit=1")
	wantLine(t, r.Stdout, "unregister")
	wantLine(t, r.Stdout, "done")
}

func TestBadConfigFailsInit(t *testing.T) {
	t.Parallel()
	const password = "Hunter2-Sup3r-Secret"
	props := map[string]string{
		"region":                    "us-east-1",
		"log_group_name":            "/abi/bad",
		"log_stream_prefix":         "abi-",
		"cloudwatch":                "maybe",
		"flush_timeout":             "banana",
		"max_inflight":              "0",
		"opensearch_compress":       "brotli",
		"log_retention_days":        "42",
		"opensearch_auth":           "basic",
		"opensearch_user":           "admin",
		"opensearch_password":       password,
		"opensearch_endpoint":       "https://admin:" + password + "@127.0.0.1:9200",
		"opensearch_bulk_max_bytes": "lots",
	}
	var text strings.Builder
	for _, k := range slices.Sorted(maps.Keys(props)) {
		fmt.Fprintf(&text, "%s %s\n", k, props[k])
	}
	// A good instance first: a refused start must still close it, and the failed instance gets
	// its exit callback with the context it never set (NULL), as Fluent Bit does.
	r := run(t, scenario{
		files:  map[string]string{"good.props": unreachableProps(t), "bad.props": text.String()},
		script: "instance good good.props\ninstance bad bad.props\nflush bad never.bin never\n",
	})
	wantStatus(t, r, 2)
	wantLine(t, r.Stdout, "init good rc=1")
	initLines := hostrun.Lines(r.Stdout, "init bad ")
	if len(initLines) != 1 || hostrun.Field(t, initLines[0], "rc") > 0 {
		t.Fatalf("init lines = %q, want one with rc <= 0", initLines)
	}
	wantLine(t, r.Stdout, "start refused: plugin 'cloudwatch_opensearch' failed to initialize")
	if strings.Contains(r.Stdout, "flush bad") {
		t.Fatal("the host flushed after a failed start")
	}
	for _, name := range []string{"good", "bad"} {
		if e := hostrun.Lines(r.Stdout, "exit "+name+" "); len(e) != 1 || hostrun.Field(t, e[0], "rc") != 1 {
			t.Errorf("exit %s: %q", name, e)
		}
	}
	if !regexp.MustCompile(`\[output:cloudwatch_opensearch:cloudwatch_opensearch\.0\] stopped:`).MatchString(r.Stderr) {
		t.Error("the good instance was not closed")
	}

	// One line per problem, naming the key and its (masked) value, and nothing else at error
	// level. The expected problems come from the parser itself; the keys are checked on their own.
	_, perr := config.Parse(config.MapSource(props))
	if perr == nil {
		t.Fatal("config.Parse accepted the bad configuration")
	}
	problems := strings.Split(perr.Error(), "\n")
	var errLines []string
	for l := range strings.SplitSeq(r.Stderr, "\n") {
		if strings.Contains(l, "[error]") {
			errLines = append(errLines, l)
		}
	}
	if len(errLines) != len(problems) {
		t.Errorf("%d error lines for %d problems:\n%s", len(errLines), len(problems), strings.Join(errLines, "\n"))
	}
	for _, p := range problems {
		n := 0
		for _, l := range errLines {
			if strings.HasSuffix(l, "] "+p) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("problem %q logged %d times", p, n)
		}
	}
	for _, want := range []string{
		`cloudwatch = "maybe"`,
		`flush_timeout = "banana"`,
		`max_inflight = "0"`,
		`opensearch_compress = "brotli"`,
		`log_retention_days = "42"`,
		`opensearch_bulk_max_bytes = "lots"`,
		`opensearch_endpoint = "https://admin:xxxxx@127.0.0.1:9200"`,
	} {
		found := false
		for _, l := range errLines {
			if strings.Contains(l, "[output:cloudwatch_opensearch:cloudwatch_opensearch.1] config: "+want+": ") {
				found = true
			}
		}
		if !found {
			t.Errorf("no error line names %s", want)
		}
	}
	if strings.Contains(r.Stdout+r.Stderr, password) {
		t.Error("the password appears in the output")
	}
}

func TestTwoInstances(t *testing.T) {
	t.Parallel()
	// Instance b spells every key in another case and sets Fluent Bit's own keys, which Fluent
	// Bit consumes; it only starts if the plugin's key lookup is case-insensitive end to end.
	var b strings.Builder
	for l := range strings.SplitSeq(unreachableProps(t, "Workers 2", "Retry_Limit no_limits", "Alias second"), "\n") {
		k, v, _ := strings.Cut(l, " ")
		if !strings.HasPrefix(k, "#") {
			k = strings.ToUpper(k[:min(1, len(k))]) + k[min(1, len(k)):]
			k = strings.ReplaceAll(k, "_group", "_Group")
		}
		fmt.Fprintf(&b, "%s %s\n", k, v)
	}
	r := run(t, scenario{
		files: map[string]string{
			"a.props":   unreachableProps(t),
			"b.props":   b.String(),
			"a.bin":     string(v2Chunk(20)),
			"b.bin":     string(legacyChunk(20)),
			"empty.bin": "",
		},
		script: `instance a a.props
instance b b.props
flush a empty.bin tag.a
flush b empty.bin tag.b
background a a.bin tag.a
background b b.bin tag.b
wait
exit a
exit b
`,
	})
	wantStatus(t, r, 0)
	wantLine(t, r.Stdout, "init a rc=1")
	wantLine(t, r.Stdout, "init b rc=1")
	for _, name := range []string{"a", "b"} {
		if f := hostrun.Lines(r.Stdout, "flush "+name+" "); len(f) != 1 || hostrun.Field(t, f[0], "rc") != 1 {
			t.Errorf("empty chunk on %s: %q, want rc=1", name, f)
		}
		bf := hostrun.Lines(r.Stdout, "bflush "+name+" ")
		if len(bf) != 1 || hostrun.Field(t, bf[0], "rc") != 2 {
			t.Errorf("background flush on %s: %q, want rc=2 (destinations unreachable)", name, bf)
		}
		if e := hostrun.Lines(r.Stdout, "exit "+name+" "); len(e) != 1 || hostrun.Field(t, e[0], "rc") != 1 {
			t.Errorf("exit %s: %q", name, e)
		}
	}
	// Each instance logs under its own label.
	for _, label := range []string{"cloudwatch_opensearch.0", "cloudwatch_opensearch.1"} {
		if !strings.Contains(r.Stderr, "[output:cloudwatch_opensearch:"+label+"]") {
			t.Errorf("no log line of %s", label)
		}
	}
}

// chunkCase is a chunk file with the return code the plugin owes it when every destination is
// unreachable: FLB_RETRY when anything is decodable, FLB_OK when there is nothing to deliver
// (empty, group markers only), FLB_ERROR when nothing is decodable.
type chunkCase struct {
	file string
	data []byte
	rc   int
}

func chunkCases() []chunkCase {
	return []chunkCase{
		{"v2.bin", v2Chunk(50), 2},
		{"legacy.bin", legacyChunk(50), 2},
		{"grouped.bin", groupedChunk(10), 2},
		{"truncated.bin", truncated(), 2},
		{"markers.bin", markersOnly(), 1},
		{"empty.bin", nil, 1},
		{"garbage.bin", garbage(), 0},
		{"notevents.bin", notEvents(), 0},
	}
}

func concurrentScenario(t *testing.T, asan bool) {
	const threads = 4
	cases := chunkCases()
	files := map[string]string{"a.props": unreachableProps(t)}
	var names []string
	for _, c := range cases {
		files[c.file] = string(c.data)
		names = append(names, c.file)
	}
	r := run(t, scenario{
		files:  files,
		script: "instance a a.props\nconcurrent a " + strconv.Itoa(threads) + " tag.concurrent " + strings.Join(names, " ") + "\nexit a\n",
		asan:   asan,
	})
	wantStatus(t, r, 0)
	got := map[string][]int{}
	for _, l := range hostrun.Lines(r.Stdout, "cflush a ") {
		m := regexp.MustCompile(`chunk=\S*/([^/ ]+) `).FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("bad line %q", l)
		}
		got[m[1]] = append(got[m[1]], hostrun.Field(t, l, "rc"))
	}
	want := map[int]int{}
	for _, c := range cases {
		if len(got[c.file]) != threads {
			t.Errorf("%s flushed %d times, want %d", c.file, len(got[c.file]), threads)
		}
		for _, rc := range got[c.file] {
			if rc != c.rc {
				t.Errorf("%s: rc=%d, want %d", c.file, rc, c.rc)
			}
		}
		want[c.rc] += threads
	}
	wantLine(t, r.Stdout, fmt.Sprintf("concurrent a flushes=%d ok=%d retry=%d error=%d other=0",
		threads*len(cases), want[1], want[2], want[0]))
	if e := hostrun.Lines(r.Stdout, "exit a "); len(e) != 1 || hostrun.Field(t, e[0], "rc") != 1 {
		t.Errorf("exit: %q", e)
	}
	if strings.Contains(r.Stderr, "recovered from a panic") {
		t.Error("a flush panicked")
	}
	if strings.Contains(r.Stderr, "Sanitizer") {
		t.Error("the sanitizer reported a problem")
	}
}

func TestConcurrentFlushesNeverCrash(t *testing.T) {
	t.Parallel()
	concurrentScenario(t, false)
}

func TestUnreachableDestinationsRetry(t *testing.T) {
	t.Parallel()
	r := run(t, scenario{
		files:  map[string]string{"a.props": unreachableProps(t), "v2.bin": string(v2Chunk(30))},
		script: "instance a a.props\nflush a v2.bin kube.var.log.containers.api\nexit a\n",
		args:   []string{"--max-retries", "2", "--retry-delay-ms", "50"},
	})
	wantStatus(t, r, 0)
	f := hostrun.Lines(r.Stdout, "flush a ")
	if len(f) != 1 || hostrun.Field(t, f[0], "rc") != 2 || hostrun.Field(t, f[0], "tries") != 3 {
		t.Fatalf("flush lines = %q, want rc=2 tries=3", f)
	}
	// The plugin recognized the resends as the same chunk (same tag, same bytes).
	if !regexp.MustCompile(`stopped: .*\bchunk_retries=2\b`).MatchString(r.Stderr) {
		t.Error("the exit summary does not count 2 chunk retries")
	}
}

func TestExitWhileFlushing(t *testing.T) {
	t.Parallel()
	r := run(t, scenario{
		files: map[string]string{
			"a.props": unreachableProps(t, "flush_timeout 30s", "exit_grace 1s"),
			"v2.bin":  string(v2Chunk(30)),
		},
		script: "instance a a.props\nbackground a v2.bin tag.slow\nsleep 300\nexit a\nwait\nexit a\nunregister\nunregister\n",
		args:   []string{"--max-retries", "5"},
	})
	wantStatus(t, r, 0)
	e := hostrun.Lines(r.Stdout, "exit a ")
	if len(e) != 2 || hostrun.Field(t, e[0], "rc") != 1 || hostrun.Field(t, e[1], "rc") != 1 {
		t.Fatalf("exit lines = %q, want two with rc=1 (a repeated exit is harmless)", e)
	}
	// Exit ends the in-flight flush within the exit grace (1s) instead of its 30s flush_timeout.
	if ms := hostrun.Field(t, e[0], "ms"); ms > 5000 {
		t.Errorf("exit took %dms with exit_grace 1s", ms)
	}
	if !strings.Contains(r.Stderr, "flush_timeout=30s") {
		t.Error("the instance did not start with flush_timeout 30s")
	}
	bf := hostrun.Lines(r.Stdout, "bflush a ")
	if len(bf) != 1 || hostrun.Field(t, bf[0], "rc") != 2 || hostrun.Field(t, bf[0], "tries") != 1 {
		t.Errorf("in-flight flush: %q, want rc=2 tries=1 (kept for Fluent Bit, not resent after exit)", bf)
	}
	if n := len(hostrun.Lines(r.Stdout, "unregister")); n != 2 {
		t.Errorf("%d unregister lines, want 2", n)
	}
}

func TestLegacyEntryPoints(t *testing.T) {
	t.Parallel()
	r := run(t, scenario{
		files:  map[string]string{"a.props": unreachableProps(t), "v2.bin": string(v2Chunk(3))},
		script: "instance a a.props\nflush a v2.bin tag.old\n",
		args:   []string{"--no-ctx"},
	})
	wantStatus(t, r, 0)
	wantLine(t, r.Stdout, "symbols flush_ctx=0 flush=1 exit_ctx=0 exit=1")
	f := hostrun.Lines(r.Stdout, "flush a ")
	if len(f) != 1 || hostrun.Field(t, f[0], "rc") != 0 {
		t.Fatalf("flush lines = %q, want rc=0", f)
	}
	if !strings.Contains(r.Stderr, `FLBPluginFlush called without an instance context (chunk with tag "tag.old")`) {
		t.Error("no log line for the context-less flush")
	}
	// FLBPluginExit closes the instance that is still open.
	if !regexp.MustCompile(`\[output:cloudwatch_opensearch:cloudwatch_opensearch\.0\] stopped:`).MatchString(r.Stderr) {
		t.Error("FLBPluginExit did not close the instance")
	}
}

// TestASan runs the concurrent scenario with the host and the plugin built with AddressSanitizer:
// a plugin that reads a chunk or a tag after its flush returned, or frees what it does not own,
// fails here even when the plain build happens to survive it.
func TestASan(t *testing.T) {
	t.Parallel()
	concurrentScenario(t, true)
}

// TestWorkersPool runs the host's `workers` command, Fluent Bit's worker pool: every chunk is
// flushed exactly once by one of the threads, never more than N flushes at once, and every
// chunk gets the code its bytes call for whichever thread takes it.
func TestWorkersPool(t *testing.T) {
	t.Parallel()
	const threads, rounds = 3, 3
	files := map[string]string{"a.props": unreachableProps(t)}
	want := map[string]int{}
	var list strings.Builder
	for r := 0; r < rounds; r++ {
		for _, c := range chunkCases() {
			name := fmt.Sprintf("r%d-%s", r, c.file)
			files[name] = string(c.data)
			want[name] = c.rc
			fmt.Fprintln(&list, name)
		}
	}
	files["chunks.list"] = list.String()
	r := run(t, scenario{
		files:  files,
		script: fmt.Sprintf("instance a a.props\nworkers a %d tag.workers chunks.list\nexit a\n", threads),
	})
	wantStatus(t, r, 0)
	got := map[string][]int{}
	for _, l := range hostrun.Lines(r.Stdout, "wflush a ") {
		m := regexp.MustCompile(`chunk=\S*/([^/ ]+) `).FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("bad line %q", l)
		}
		got[m[1]] = append(got[m[1]], hostrun.Field(t, l, "rc"))
	}
	codes := map[int]int{}
	for name, rc := range want {
		if len(got[name]) != 1 || got[name][0] != rc {
			t.Errorf("%s: codes %v, want one flush answering %d", name, got[name], rc)
		}
		codes[rc]++
	}
	if len(got) != len(want) {
		t.Errorf("%d chunks flushed, want %d", len(got), len(want))
	}
	sum := hostrun.Lines(r.Stdout, "workers a ")
	if len(sum) != 1 {
		t.Fatalf("summary lines %q", sum)
	}
	wantLine(t, r.Stdout, fmt.Sprintf("workers a flushes=%d ok=%d retry=%d error=%d other=0 max_inflight=%d",
		len(want), codes[1], codes[2], codes[0], hostrun.Field(t, sum[0], "max_inflight")))
	if m := hostrun.Field(t, sum[0], "max_inflight"); m < 1 || m > threads {
		t.Errorf("max_inflight=%d, want 1..%d", m, threads)
	}
}
