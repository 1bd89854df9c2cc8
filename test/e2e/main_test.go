package e2e_test

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/cwos/cloudwatch-opensearch/test/hostrun"
)

// TestMain removes the plugin and the host built by hostrun.Build, and prints every test's
// summary line at the end. `go test` hides a passing package's output unless -v is given (or it
// runs in local directory mode), so the lines are also appended to the file named by
// E2E_SUMMARY when that is set (the Makefile can cat it).
func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	defer hostrun.Cleanup() // the plugin and the host, built on first use (hostrun.Build)
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
