package ledger

import (
	"sync"
	"testing"
	"time"
)

func TestRetryFindsMarks(t *testing.T) {
	l := New(Options{Destinations: 2})
	k := KeyOf("kube.a", []byte("chunk bytes"))
	e, retry := l.Acquire(k, 100)
	if retry {
		t.Fatal("first Acquire reported a retry")
	}
	e.Mark(0, 3)
	e.Mark(1, 99)
	l.Release(e, false)

	e2, retry := l.Acquire(KeyOf("kube.a", []byte("chunk bytes")), 100)
	if !retry || e2 != e {
		t.Fatalf("retry of the same chunk got a new entry (retry=%v)", retry)
	}
	if !e2.Done(0, 3) || e2.Done(1, 3) || !e2.Done(1, 99) || e2.Done(0, 99) {
		t.Fatal("marks not kept per destination and record")
	}
	if got := e2.Remaining(0); got != 99 {
		t.Fatalf("Remaining(0) = %d, want 99", got)
	}
	l.Release(e2, true)
	if l.Len() != 0 {
		t.Fatalf("settled chunk still remembered: Len = %d", l.Len())
	}
}

func TestKeyDependsOnTagAndBytes(t *testing.T) {
	a := KeyOf("t1", []byte("x"))
	cases := []Key{KeyOf("t2", []byte("x")), KeyOf("t1", []byte("y")), KeyOf("t1x", nil), KeyOf("t", []byte("1x"))}
	for i, k := range cases {
		if k == a {
			t.Fatalf("case %d: key collides with the original", i)
		}
	}
}

func TestDifferentCountStartsOver(t *testing.T) {
	l := New(Options{Destinations: 1})
	k := KeyOf("t", []byte("c"))
	e, _ := l.Acquire(k, 10)
	e.Mark(0, 1)
	l.Release(e, false)
	e2, retry := l.Acquire(k, 11)
	if retry || e2.Done(0, 1) {
		t.Fatal("an entry with a different record count was reused")
	}
	l.Release(e2, false)
}

func TestBoundedAndExpiring(t *testing.T) {
	now := time.Unix(1000, 0)
	l := New(Options{Destinations: 1, MaxChunks: 3, TTL: time.Minute, Now: func() time.Time { return now }})
	var held *Entry
	for i := 0; i < 10; i++ {
		e, _ := l.Acquire(KeyOf("t", []byte{byte(i)}), 5)
		if i == 0 {
			held = e // in use: must survive eviction
			continue
		}
		l.Release(e, false)
	}
	if l.Len() > 4 { // 3 + the one in use
		t.Fatalf("Len = %d, want <= 4", l.Len())
	}
	if _, retry := l.Acquire(KeyOf("t", []byte{0}), 5); !retry {
		t.Fatal("an entry in use was evicted")
	}
	l.Release(held, false)
	l.Release(held, false)
	now = now.Add(2 * time.Minute)
	if _, retry := l.Acquire(KeyOf("t", []byte{9}), 5); retry {
		t.Fatal("an expired entry was reused")
	}
	if l.Evicted() == 0 {
		t.Fatal("evictions not counted")
	}
}

func TestConcurrentMarks(t *testing.T) {
	l := New(Options{Destinations: 2})
	e, _ := l.Acquire(KeyOf("t", nil), 10_000)
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for seq := w; seq < 10_000; seq += 8 {
				e.Mark(w%2, seq)
			}
		}(w)
	}
	wg.Wait()
	if e.Remaining(0)+e.Remaining(1) != 10_000 {
		t.Fatalf("lost marks: remaining %d + %d, want 10000 in total", e.Remaining(0), e.Remaining(1))
	}
	chunks, recs := l.Pending()
	if chunks != 1 || recs != 10_000 {
		t.Fatalf("Pending = %d chunks, %d records; want 1, 10000", chunks, recs)
	}
}

func BenchmarkKeyOf2MB(b *testing.B) {
	data := make([]byte, 2_000_000)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		KeyOf("kube.var.log.containers.x", data)
	}
}
