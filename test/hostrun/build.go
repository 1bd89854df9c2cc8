// Package hostrun builds the plugin as Fluent Bit loads it (the c-shared .so) and the C host of
// test/host, runs the host on a script, and reads what it prints. It serves the test packages
// that drive the .so through the ABI (test/abi, test/e2e), so they build and run it one way.
//
//	func TestMain(m *testing.M) { code := m.Run(); hostrun.Cleanup(); os.Exit(code) }
//
//	so, host := hostrun.Build(t)
//	res := hostrun.Run(t, hostrun.Options{SO: so, Host: host, Script: "instance a a.props\n", ...})
//	for _, l := range hostrun.Lines(res.Stdout, "flush a ") { rc := hostrun.Field(t, l, "rc"); ... }
package hostrun

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

// builds is per test binary on purpose: every test of a package shares one build of each
// variant, made on first use (tests that need no host never pay for it), into one directory that
// Cleanup removes.
var builds struct {
	mu    sync.Mutex
	dir   string
	plain variant
	asan  variant
}

type variant struct {
	once     sync.Once
	so, host string
	err      error
}

// Build returns the plugin .so and the host, built once per test binary on first call; it fails
// t when the build failed.
func Build(t testing.TB) (so, host string) {
	t.Helper()
	return build(t, &builds.plain, "", nil, nil)
}

// BuildASan is Build with AddressSanitizer: the .so with `go build -asan` (so Go reads of freed C
// memory are caught too) and the host with -fsanitize=address. Its failure fails only the tests
// that call it. Run such a host with ASAN_OPTIONS in Options.Env.
func BuildASan(t testing.TB) (so, host string) {
	t.Helper()
	return build(t, &builds.asan, "asan", []string{"-asan"}, []string{"-fsanitize=address", "-fno-omit-frame-pointer"})
}

// Cleanup removes what Build and BuildASan wrote. TestMain calls it after m.Run.
func Cleanup() {
	builds.mu.Lock()
	defer builds.mu.Unlock()
	if builds.dir != "" {
		os.RemoveAll(builds.dir)
	}
}

func build(t testing.TB, v *variant, sub string, goFlags, ccFlags []string) (so, host string) {
	t.Helper()
	v.once.Do(func() {
		dir, err := buildDir()
		if err != nil {
			v.err = err
			return
		}
		v.so, v.host, v.err = compile(filepath.Join(dir, sub), goFlags, ccFlags)
	})
	if v.err != nil {
		t.Fatalf("build: %v", v.err)
	}
	return v.so, v.host
}

func buildDir() (string, error) {
	builds.mu.Lock()
	defer builds.mu.Unlock()
	if builds.dir == "" {
		dir, err := os.MkdirTemp("", "cwos-host-")
		if err != nil {
			return "", err
		}
		builds.dir = dir
	}
	return builds.dir, nil
}

// compile builds the plugin (-buildmode=c-shared, -trimpath as in the Makefile, so `make build`
// and the tests share the build cache) and test/host/host.c into dir, concurrently: the builds
// mostly wait on the linker.
func compile(dir string, goFlags, ccFlags []string) (so, host string, err error) {
	root, err := moduleRoot()
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
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	so = filepath.Join(dir, "cloudwatch_opensearch.so")
	host = filepath.Join(dir, "host")
	goArgs := append(append([]string{goCmd, "build"}, goFlags...), "-buildmode=c-shared", "-trimpath", "-o", so, "./plugin")
	ccArgs := append(append([]string{cc, "-std=c11", "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-pthread"}, ccFlags...),
		"-o", host, filepath.Join(root, "test", "host", "host.c"), "-ldl")
	jobs := [][]string{goArgs, ccArgs}
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

// moduleRoot is the nearest directory at or above the working directory (a test's package
// directory) that holds go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod at or above the working directory")
		}
		dir = parent
	}
}
