// Package deploy_test checks what a platform team applies: the image's Dockerfile and configs,
// the Kustomize base and overlay, the demo compose file, and the IAM and OpenSearch permission
// documents. Nothing here needs a Docker engine, a cluster or the network: the manifests are
// validated offline against Kubernetes schemas and cross-checked against each other, the
// Dockerfile is linted and its paths compared with the configs, the built .so is checked for the
// glibc the runtime image ships, and the shipped configs go through `cwos check` and
// `cwos render`.
//
// Tools found on PATH (or where the CI installs them); a missing tool fails the test:
//   - kubectl (kubectl kustomize), else kustomize
//   - kubectl-validate      go install sigs.k8s.io/kubectl-validate@v0.0.4
//   - dockerfilelint        npm ci --prefix test/deploy/_npm
//   - objdump, cc           binutils, gcc
package deploy_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// workDir is a temporary directory for built binaries, removed when the tests end.
var workDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cwos-deploy-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	workDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// root is the repository root (this package lives in test/deploy).
func root(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the test source")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// repoPath joins a slash-separated repository path onto the root.
func repoPath(t testing.TB, rel string) string {
	return filepath.Join(root(t), filepath.FromSlash(rel))
}

func readRepo(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(repoPath(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// result is what one command did.
type result struct {
	stdout, stderr string
	code           int // exit code; -1 when it did not run to an exit
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// cmdSpec is one command to run with a bounded time.
type cmdSpec struct {
	name    string
	args    []string
	dir     string
	env     []string // added to the test's environment
	timeout time.Duration
}

// run runs a command; a non-zero exit is reported in result.code, not as an error. An error means
// the command could not run (missing binary, timeout).
func run(c cmdSpec) (result, error) {
	if c.timeout == 0 {
		c.timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.name, c.args...)
	cmd.Dir = c.dir
	cmd.Env = append(os.Environ(), c.env...)
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String(), code: -1}
	if ctx.Err() != nil {
		return r, fmt.Errorf("%s %s: timed out after %s", c.name, strings.Join(c.args, " "), c.timeout)
	}
	var exit *exec.ExitError
	switch {
	case err == nil:
		r.code = 0
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	default:
		return r, fmt.Errorf("%s: %w", c.name, err)
	}
	return r, nil
}

// mustRun runs a command that must succeed.
func mustRun(t testing.TB, c cmdSpec) result {
	t.Helper()
	r, err := run(c)
	if err != nil {
		t.Fatal(err)
	}
	if r.code != 0 {
		t.Fatalf("%s %s failed: %s", c.name, strings.Join(c.args, " "), r)
	}
	return r
}

// tool finds an executable on PATH, then in the extra places given (absolute paths). It fails
// the test, with the install step, when none has it.
func tool(t testing.TB, name, install string, extra ...string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, p := range extra {
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	t.Fatalf("%s not found on PATH (nor in %v); install it with: %s", name, extra, install)
	return ""
}

// goBin is where `go install` puts tools.
func goBin(t testing.TB) string {
	t.Helper()
	if b := os.Getenv("GOBIN"); b != "" {
		return b
	}
	r := mustRun(t, cmdSpec{name: "go", args: []string{"env", "GOPATH"}})
	first, _, _ := strings.Cut(strings.TrimSpace(r.stdout), string(os.PathListSeparator))
	return filepath.Join(first, "bin")
}

// built builds something once per test binary and remembers the outcome.
type built struct {
	once sync.Once
	path string
	err  error
}

func (b *built) get(t testing.TB, build func() (string, error)) string {
	t.Helper()
	b.once.Do(func() { b.path, b.err = build() })
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

var cwosBin, pluginSO built

// cwos builds cmd/cwos, the dry-run tool.
func cwos(t testing.TB) string {
	t.Helper()
	return cwosBin.get(t, func() (string, error) {
		out := filepath.Join(workDir, "cwos")
		r, err := run(cmdSpec{name: "go", args: []string{"build", "-o", out, "./cmd/cwos"}, dir: root(t), timeout: 5 * time.Minute})
		if err == nil && r.code != 0 {
			err = fmt.Errorf("go build ./cmd/cwos: %s", r)
		}
		return out, err
	})
}

// plugin builds the plugin the way `make build` does, into the temporary directory.
func plugin(t testing.TB) string {
	t.Helper()
	return pluginSO.get(t, func() (string, error) {
		out := filepath.Join(workDir, "cloudwatch_opensearch.so")
		r, err := run(cmdSpec{
			name:    "go",
			args:    []string{"build", "-buildmode=c-shared", "-trimpath", "-o", out, "./plugin"},
			dir:     root(t),
			env:     []string{"CGO_ENABLED=1"},
			timeout: 8 * time.Minute,
		})
		if err == nil && r.code != 0 {
			err = fmt.Errorf("go build -buildmode=c-shared ./plugin: %s", r)
		}
		return out, err
	})
}
