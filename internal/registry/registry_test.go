package registry

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cwos/cloudwatch-opensearch/internal/delivery"
	"github.com/cwos/cloudwatch-opensearch/internal/testpeer/logbuf"
)

// fake is a scripted instance.
type fake struct {
	name    string
	rc      int
	panicOn string // tag that makes Flush panic
	flushes atomic.Int64
	closes  atomic.Int64
	lastTag atomic.Value
}

func (f *fake) Flush(data []byte, tag string) int {
	if tag == f.panicOn {
		panic("boom in " + f.name)
	}
	f.flushes.Add(1)
	f.lastTag.Store(tag)
	return f.rc
}

func (f *fake) Close() { f.closes.Add(1) }

func addFake(t *testing.T, r *Registry, f Flusher) (int, string) {
	t.Helper()
	var got string
	id, rc := r.Init(func(name string) (Flusher, error) {
		got = name
		if ff, ok := f.(*fake); ok {
			ff.name = name
		}
		return f, nil
	})
	if rc != delivery.OK || id == 0 {
		t.Fatalf("init: id=%d rc=%d", id, rc)
	}
	return id, got
}

func TestInitNamesAndIDs(t *testing.T) {
	r := New(&logbuf.Buffer{})
	a, b := &fake{rc: delivery.OK}, &fake{rc: delivery.Retry}
	idA, nameA := addFake(t, r, a)
	idB, nameB := addFake(t, r, b)
	if idA == idB {
		t.Fatalf("ids not distinct: %d %d", idA, idB)
	}
	if nameA != "cloudwatch_opensearch.0" || nameB != "cloudwatch_opensearch.1" {
		t.Fatalf("names = %q, %q", nameA, nameB)
	}
	// Each id reaches its own instance.
	if rc := r.Flush(idA, []byte{0x90}, "t.a"); rc != delivery.OK {
		t.Fatalf("flush a rc=%d", rc)
	}
	if rc := r.Flush(idB, []byte{0x90}, "t.b"); rc != delivery.Retry {
		t.Fatalf("flush b rc=%d", rc)
	}
	if a.lastTag.Load() != "t.a" || b.lastTag.Load() != "t.b" {
		t.Fatalf("tags crossed: a=%v b=%v", a.lastTag.Load(), b.lastTag.Load())
	}
	// Register while instances are open keeps counting; once all are closed it starts again.
	r.Registered()
	_, nameC := addFake(t, r, &fake{})
	if nameC != "cloudwatch_opensearch.2" {
		t.Fatalf("name while open = %q", nameC)
	}
	r.ExitAll()
	r.Registered()
	_, nameD := addFake(t, r, &fake{})
	if nameD != "cloudwatch_opensearch.0" {
		t.Fatalf("name after reload = %q", nameD)
	}
}

func TestInitFailures(t *testing.T) {
	tests := []struct {
		name    string
		build   func(string) (Flusher, error)
		wantLog string
	}{
		{"error", func(string) (Flusher, error) { return nil, errors.New("config: region: required") }, ""},
		{"nil instance", func(string) (Flusher, error) { return nil, nil }, ""},
		{"panic", func(string) (Flusher, error) { panic("init exploded") }, "init: recovered from a panic (please report this bug): init exploded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log := &logbuf.Buffer{}
			r := New(log)
			id, rc := r.Init(tt.build)
			if rc != delivery.Error || id != 0 {
				t.Fatalf("init = id %d rc %d, want 0, %d", id, rc, delivery.Error)
			}
			if r.open() != 0 {
				t.Fatalf("%d instances open after a failed init", r.open())
			}
			if tt.wantLog == "" && log.String() != "" {
				t.Fatalf("unexpected log (the builder logs its own problems): %s", log)
			}
			if tt.wantLog != "" && !strings.Contains(log.String(), "[output:cloudwatch_opensearch:cloudwatch_opensearch.0] "+tt.wantLog) {
				t.Fatalf("log %q lacks %q", log, tt.wantLog)
			}
		})
	}
}

func TestFlushPanicReturnsRetry(t *testing.T) {
	log := &logbuf.Buffer{}
	r := New(log)
	f := &fake{rc: delivery.OK, panicOn: "explode"}
	id, name := addFake(t, r, f)
	if rc := r.Flush(id, nil, "explode"); rc != delivery.Retry {
		t.Fatalf("panicking flush rc=%d, want %d", rc, delivery.Retry)
	}
	out := log.String()
	if !strings.Contains(out, "["+"output:cloudwatch_opensearch:"+name+"] flush: recovered from a panic (please report this bug): boom in "+name) {
		t.Fatalf("log lacks the panic line: %s", out)
	}
	if !strings.Contains(out, "goroutine ") {
		t.Fatalf("log lacks the stack: %s", out)
	}
	// The instance still works afterwards.
	if rc := r.Flush(id, nil, "fine"); rc != delivery.OK {
		t.Fatalf("flush after panic rc=%d", rc)
	}
}

func TestUnknownContexts(t *testing.T) {
	log := &logbuf.Buffer{}
	r := New(log)
	for _, id := range []int{0, 1, -7} {
		if rc := r.Flush(id, []byte{1}, "t"); rc != delivery.Error {
			t.Fatalf("flush(%d) rc=%d", id, rc)
		}
		if rc := r.Exit(id); rc != delivery.OK {
			t.Fatalf("exit(%d) rc=%d", id, rc)
		}
	}
	if !strings.Contains(log.String(), "never initialized (context 0)") {
		t.Fatalf("log: %s", log)
	}
	if rc := r.FlushWithoutContext("old.api"); rc != delivery.Error {
		t.Fatalf("flushWithoutContext rc=%d", rc)
	}
	if !strings.Contains(log.String(), `FLBPluginFlush called without an instance context (chunk with tag "old.api")`) {
		t.Fatalf("log: %s", log)
	}
}

func TestExitClosesOnceAndForgets(t *testing.T) {
	r := New(&logbuf.Buffer{})
	a, b := &fake{rc: delivery.OK}, &fake{rc: delivery.OK}
	idA, _ := addFake(t, r, a)
	idB, _ := addFake(t, r, b)
	for range 2 {
		if rc := r.Exit(idA); rc != delivery.OK {
			t.Fatalf("exit rc=%d", rc)
		}
	}
	if a.closes.Load() != 1 || b.closes.Load() != 0 {
		t.Fatalf("closes a=%d b=%d", a.closes.Load(), b.closes.Load())
	}
	if rc := r.Flush(idA, nil, "t"); rc != delivery.Retry {
		t.Fatalf("flush after exit rc=%d, want %d (the chunk is kept)", rc, delivery.Retry)
	}
	if a.flushes.Load() != 0 {
		t.Fatalf("a flush reached the instance after its exit")
	}
	if rc := r.Flush(idB, nil, "t"); rc != delivery.OK {
		t.Fatalf("other instance rc=%d", rc)
	}
	r.ExitAll()
	r.ExitAll()
	if b.closes.Load() != 1 || r.open() != 0 {
		t.Fatalf("closes b=%d open=%d", b.closes.Load(), r.open())
	}
	if rc := r.Flush(idB, nil, "t"); rc != delivery.Retry {
		t.Fatalf("flush after exitAll rc=%d", rc)
	}
}

func TestClosePanicIsContained(t *testing.T) {
	log := &logbuf.Buffer{}
	r := New(log)
	id, _ := addFake(t, r, panicCloser{})
	if rc := r.Exit(id); rc != delivery.OK {
		t.Fatalf("exit rc=%d", rc)
	}
	if !strings.Contains(log.String(), "exit: recovered from a panic (please report this bug): close failed") {
		t.Fatalf("log: %s", log)
	}
}

type panicCloser struct{}

func (panicCloser) Flush([]byte, string) int { return delivery.OK }
func (panicCloser) Close()                   { panic("close failed") }

// TestConcurrentFlushAndExit runs flushes of two instances on many goroutines while one
// instance exits; with -race it proves the registry's locking.
func TestConcurrentFlushAndExit(t *testing.T) {
	r := New(&logbuf.Buffer{})
	a, b := &fake{rc: delivery.OK}, &fake{rc: delivery.OK}
	idA, _ := addFake(t, r, a)
	idB, _ := addFake(t, r, b)
	var wg sync.WaitGroup
	var afterExit atomic.Int64
	var exited atomic.Bool
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				if g == 0 && i == 100 {
					r.Exit(idA)
					exited.Store(true)
				}
				wasExited := exited.Load()
				rc := r.Flush(idA, nil, fmt.Sprint(g))
				if wasExited && rc != delivery.Retry {
					afterExit.Add(1)
				}
				if rc := r.Flush(idB, nil, "b"); rc != delivery.OK {
					t.Errorf("flush b rc=%d", rc)
				}
			}
		})
	}
	wg.Wait()
	if afterExit.Load() != 0 {
		t.Fatalf("%d flushes reached instance a after its exit", afterExit.Load())
	}
	if b.flushes.Load() != 8*200 {
		t.Fatalf("b flushes = %d", b.flushes.Load())
	}
	if a.closes.Load() != 1 {
		t.Fatalf("a closes = %d", a.closes.Load())
	}
	r.ExitAll()
}

// BenchmarkFlushDispatch measures what the export layer adds to every flush: the id lookup
// under the registry's read lock and the panic guard, from parallel goroutines as Fluent Bit's
// workers call it.
func BenchmarkFlushDispatch(b *testing.B) {
	r := New(&logbuf.Buffer{})
	id, rc := r.Init(func(string) (Flusher, error) { return panicCloser{}, nil }) // Flush: return OK
	if rc != delivery.OK {
		b.Fatal("init failed")
	}
	data := []byte{0x90}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if r.Flush(id, data, "bench") != delivery.OK {
				b.Error("flush failed")
				return
			}
		}
	})
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/flush")
}
