package report

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestLimitedOncePerInterval(t *testing.T) {
	var buf bytes.Buffer
	r := New("cloudwatch_opensearch.0", &buf)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	r.SetClock(func() time.Time { return now })

	if !r.Limited("perm:a", Warn, "missing %s", "logs:PutLogEvents") {
		t.Fatal("first line suppressed")
	}
	for i := 0; i < 5; i++ {
		if r.Limited("perm:a", Warn, "missing %s", "logs:PutLogEvents") {
			t.Fatal("repeat within the interval printed")
		}
	}
	if !r.Limited("perm:b", Warn, "another key") {
		t.Fatal("a different key was suppressed")
	}
	now = now.Add(Interval)
	if !r.Limited("perm:a", Warn, "missing %s", "logs:PutLogEvents") {
		t.Fatal("line not printed again after the interval")
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3:\n%s", len(lines), buf.String())
	}
	want := "[2026/01/02 03:05:05] [ warn] [output:cloudwatch_opensearch:cloudwatch_opensearch.0] missing logs:PutLogEvents (5 similar messages suppressed)"
	if lines[2] != want {
		t.Fatalf("got  %q\nwant %q", lines[2], want)
	}
}

func TestLevelsAndCounters(t *testing.T) {
	var buf bytes.Buffer
	r := New("x", &buf)
	r.Logf(Debug, "hidden")
	r.Errorf("shown %d", 1)
	if strings.Contains(buf.String(), "hidden") || !strings.Contains(buf.String(), "[error]") {
		t.Fatalf("levels wrong:\n%s", buf.String())
	}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 1000; j++ {
				r.Add("rejected_opensearch", 1)
			}
		}()
	}
	wg.Wait()
	r.Add("zero", 0)
	if got := r.Count("rejected_opensearch"); got != 8000 {
		t.Fatalf("counter = %d, want 8000", got)
	}
	if s := r.Summary(); s != "rejected_opensearch=8000" {
		t.Fatalf("Summary = %q", s)
	}
}
