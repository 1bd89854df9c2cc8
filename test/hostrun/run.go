package hostrun

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Options is one run of the host.
type Options struct {
	SO, Host string            // from Build or BuildASan
	Files    map[string][]byte // file name (in the run's fresh directory) -> content
	Script   string            // the host's script (test/host/host.c says the commands)
	Args     []string          // host options before the .so and the script
	// Env is added to the host's environment: the test's own, without its AWS_* and ASAN_*
	// variables, with HOME in the run's directory and no AWS configuration files or instance
	// metadata, so the plugin finds only what the test gives it (credentials, region, ...).
	Env     []string
	Timeout time.Duration // default 2 minutes
	// During, when set, runs beside the host (to take a destination down or bring it back
	// while the host flushes); its ctx ends when the host closes its stdout or the timeout
	// passes, and Run waits for it to return.
	During func(ctx context.Context, stdout *Watcher)
}

// Result is what the host printed and how it exited.
type Result struct {
	Stdout, Stderr string
	Status         int // exit status
	Elapsed        time.Duration
}

// Run runs the host with o's script in a fresh directory and returns what it printed. It fails t
// when the host does not exit normally (a crash, or the timeout); the exit status is for the test
// to judge. The output is logged to t.
func Run(t testing.TB, o Options) Result {
	t.Helper()
	dir := t.TempDir()
	for name, data := range o.Files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	script := filepath.Join(dir, "script")
	if err := os.WriteFile(script, []byte(o.Script), 0o644); err != nil {
		t.Fatal(err)
	}
	timeout := o.Timeout
	if timeout == 0 {
		timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, o.Host, append(slices.Clone(o.Args), o.SO, script)...)
	cmd.Dir = dir
	cmd.Env = append(env(dir), o.Env...)
	cmd.WaitDelay = 5 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	watch := &Watcher{changed: make(chan struct{})}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The function beside the host ends at the latest when the host closes its stdout.
	duringCtx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	wg.Go(func() {
		defer stop()
		sc := bufio.NewScanner(pipe)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			watch.add(sc.Text())
		}
		watch.finish()
	})
	if o.During != nil {
		wg.Go(func() { o.During(duringCtx, watch) })
	}
	wg.Wait()
	err = cmd.Wait()
	res := Result{Stdout: watch.text(), Stderr: stderr.String(), Elapsed: time.Since(start)}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit) && exit.Exited():
		res.Status = exit.ExitCode()
	default:
		t.Fatalf("host did not exit normally after %s: %v (a crash or the %s bound)\nstdout:\n%s\nstderr (tail):\n%s",
			res.Elapsed.Round(time.Millisecond), err, timeout, res.Stdout, Tail(res.Stderr, 8000))
	}
	t.Logf("host %s: status %d in %s\nstdout (tail):\n%s\nstderr (tail):\n%s", strings.Join(o.Args, " "), res.Status,
		res.Elapsed.Round(time.Millisecond), Tail(res.Stdout, 3000), Tail(res.Stderr, 6000))
	return res
}

func env(dir string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "ASAN_") {
			env = append(env, kv)
		}
	}
	return append(env,
		"HOME="+dir,
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE="+filepath.Join(dir, "no-aws-config"),
		"AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "no-aws-credentials"),
	)
}

// Watcher collects the host's stdout as it comes, so a test can act when a line appears.
type Watcher struct {
	mu      sync.Mutex
	lines   []string
	done    bool
	changed chan struct{} // closed and replaced on every change
}

func (w *Watcher) add(l string) {
	w.mu.Lock()
	w.lines = append(w.lines, l)
	close(w.changed)
	w.changed = make(chan struct{})
	w.mu.Unlock()
}

func (w *Watcher) finish() {
	w.mu.Lock()
	w.done = true
	close(w.changed)
	w.changed = make(chan struct{})
	w.mu.Unlock()
}

func (w *Watcher) text() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.lines, "\n") + "\n"
}

// WaitFor blocks until n lines starting with prefix have been printed and returns true, or
// returns false when the host ended or ctx is done first.
func (w *Watcher) WaitFor(ctx context.Context, prefix string, n int) bool {
	for {
		w.mu.Lock()
		c := 0
		for _, l := range w.lines {
			if strings.HasPrefix(l, prefix) {
				c++
			}
		}
		done, ch := w.done, w.changed
		w.mu.Unlock()
		if c >= n {
			return true
		}
		if done {
			return false
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
	}
}

// Lines returns the lines of out that start with prefix.
func Lines(out, prefix string) []string {
	var got []string
	for l := range strings.SplitSeq(out, "\n") {
		if strings.HasPrefix(l, prefix) {
			got = append(got, l)
		}
	}
	return got
}

// Field returns the integer value of name=N in a host line; it fails t when there is none.
func Field(t testing.TB, line, name string) int {
	t.Helper()
	m := regexp.MustCompile(`\b` + regexp.QuoteMeta(name) + `=(-?\d+)\b`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("no %s= in %q", name, line)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// Props is a properties file for the host's `instance` command: the "key value" lines of base,
// changed by extra. Each "key value" of extra replaces the first line of the same key
// (case-insensitive, as Fluent Bit matches keys) or is added; "key" alone removes that line.
func Props(base []string, extra ...string) string {
	lines := slices.Clone(base)
	for _, e := range extra {
		key, _, _ := strings.Cut(e, " ")
		i := slices.IndexFunc(lines, func(l string) bool {
			k, _, _ := strings.Cut(l, " ")
			return strings.EqualFold(k, key)
		})
		switch {
		case i >= 0 && !strings.Contains(e, " "):
			lines = slices.Delete(lines, i, i+1)
		case i >= 0:
			lines[i] = e
		default:
			lines = append(lines, e)
		}
	}
	return strings.Join(lines, "\n") + "\n"
}

// Tail is the last n bytes of s, marked as cut when it is.
func Tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
