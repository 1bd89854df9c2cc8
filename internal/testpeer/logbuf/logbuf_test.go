package logbuf

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
)

// TestConcurrentWrites: writes from many goroutines, read while they happen, all arrive whole.
// Run with -race to prove the locking.
func TestConcurrentWrites(t *testing.T) {
	const writers, each = 8, 200
	var b Buffer
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if n, err := fmt.Fprintf(&b, "w%d-%d\n", w, i); err != nil || n == 0 {
					t.Errorf("write: n=%d err=%v", n, err)
				}
			}
		})
	}
	wg.Go(func() {
		for range each {
			_ = b.String()
		}
	})
	wg.Wait()
	got := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	var want []string
	for w := range writers {
		for i := range each {
			want = append(want, fmt.Sprintf("w%d-%d", w, i))
		}
	}
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("got %d lines, want %d whole lines", len(got), len(want))
	}
}

func TestZeroValueIsEmpty(t *testing.T) {
	var b Buffer
	if s := b.String(); s != "" {
		t.Fatalf("String() = %q, want empty", s)
	}
}
