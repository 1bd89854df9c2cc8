package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestMain owns the directory the plugin and the host are built into, and prints every test's
// summary line at the end. `go test` hides a passing package's output unless -v is given (or it
// runs in local directory mode), so the lines are also appended to the file named by
// E2E_SUMMARY when that is set (the Makefile can cat it).
func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "cwos-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	buildDir = dir
	code := m.Run()
	summaries.mu.Lock()
	lines := summaries.lines
	summaries.mu.Unlock()
	if len(lines) > 0 {
		fmt.Println(strings.Join(lines, "\n"))
		if path := os.Getenv("E2E_SUMMARY"); path != "" {
			f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
			if err == nil {
				_, err = f.WriteString(strings.Join(lines, "\n") + "\n")
				f.Close()
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, "e2e: E2E_SUMMARY:", err)
			}
		}
	}
	return code
}

var summaries struct {
	mu    sync.Mutex
	lines []string
}

// summarize logs a test's one-line summary and keeps it for the end of the run.
func summarize(t *testing.T, format string, args ...any) {
	t.Helper()
	line := "e2e " + t.Name() + ": " + fmt.Sprintf(format, args...)
	t.Log(line)
	summaries.mu.Lock()
	summaries.lines = append(summaries.lines, line)
	summaries.mu.Unlock()
}

// The plugin .so and the C host, built once, on first use (the Go-level tests need neither).
var (
	buildDir  string
	buildOnce sync.Once
	built     struct {
		so, host string
		err      error
	}
)

func artifacts(t *testing.T) (so, host string) {
	t.Helper()
	buildOnce.Do(func() { built.so, built.host, built.err = build(buildDir) })
	if built.err != nil {
		t.Fatalf("build: %v", built.err)
	}
	return built.so, built.host
}

// build compiles the plugin as Fluent Bit loads it (-buildmode=c-shared, -trimpath as in the
// Makefile, so the build cache is shared) and test/host/host.c, concurrently.
func build(dir string) (so, host string, err error) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		return "", "", err
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		return "", "", err
	}
	cc, err := exec.LookPath("cc")
	if err != nil {
		return "", "", err
	}
	so = filepath.Join(dir, "cloudwatch_opensearch.so")
	host = filepath.Join(dir, "host")
	jobs := [][]string{
		{goCmd, "build", "-buildmode=c-shared", "-trimpath", "-o", so, "./plugin"},
		{cc, "-std=c11", "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-pthread", "-o", host, filepath.Join(root, "test", "host", "host.c"), "-ldl"},
	}
	errs := make([]error, len(jobs))
	var wg sync.WaitGroup
	for i, args := range jobs {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, args[0], args[1:]...)
			cmd.Dir = root
			cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
			if out, err := cmd.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("%s: %v\n%s", strings.Join(args, " "), err, out)
			}
		})
	}
	wg.Wait()
	return so, host, errors.Join(errs...)
}
