// Package registry holds the live [OUTPUT] instances of the process behind integer ids, the
// only thing Fluent Bit keeps for a Go plugin. The cgo exports in plugin/ only call it.
package registry

import (
	"fmt"
	"io"
	"runtime/debug"
	"strings"
	"sync"

	"github.com/cwos/cloudwatch-opensearch/internal/delivery"
	"github.com/cwos/cloudwatch-opensearch/internal/report"
)

// Flusher is what the exports drive: a *delivery.Instance, or a fake in tests.
type Flusher interface {
	Flush(data []byte, tag string) int
	Close()
}

// registry holds the live [OUTPUT] instances of the process by an integer id. Fluent Bit only
// ever sees that id (through fluent-bit-go's context map), never a Go pointer. Every method
// turns a panic into a log line and a return code, so a bug never takes Fluent Bit down.
// PluginName is the name used in [OUTPUT] Name and in instance labels.
const PluginName = "cloudwatch_opensearch"

// Registry holds the live instances.
type Registry struct {
	w   io.Writer        // log output; nil = stderr
	rep *report.Reporter // lines that belong to no instance

	mu     sync.RWMutex
	live   map[int]*entry
	closed map[int]bool // ids that have exited; one per instance ever closed
	next   int          // last id handed out; ids start at 1, so a missing context (0) is never valid
	seq    int          // instance number for log labels, in Init order since the last Register
}

type entry struct {
	in  Flusher
	rep *report.Reporter // the instance's label, for panics caught here
}

// Reporter logs lines that belong to no instance.
func (r *Registry) Reporter() *report.Reporter { return r.rep }

// New returns an empty registry logging to w (nil = stderr).
func New(w io.Writer) *Registry {
	return &Registry{w: w, rep: report.New("plugin", w), live: map[int]*entry{}, closed: map[int]bool{}}
}

// registered starts the instance numbering again when no instance is open (a hot reload calls
// FLBPluginRegister again in the same process, since a Go .so is never unloaded).
func (r *Registry) Registered() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.live) == 0 {
		r.seq = 0
	}
}

// Init builds one instance named "cloudwatch_opensearch.N" and returns its id and FLB_OK, or
// FLB_ERROR when build fails or panics (build has logged why; Fluent Bit then refuses to start).
func (r *Registry) Init(build func(name string) (Flusher, error)) (id, rc int) {
	r.mu.Lock()
	name := fmt.Sprintf("%s.%d", PluginName, r.seq)
	r.seq++
	r.mu.Unlock()
	rep := report.New(name, r.w)
	defer func() {
		if p := recover(); p != nil {
			logPanic(rep, "init", p)
			id, rc = 0, delivery.Error
		}
	}()
	in, err := build(name)
	if err != nil || in == nil {
		return 0, delivery.Error
	}
	r.mu.Lock()
	r.next++
	id = r.next
	r.live[id] = &entry{in: in, rep: rep}
	r.mu.Unlock()
	return id, delivery.OK
}

// get returns the open instance id, or nil and whether id has exited.
func (r *Registry) get(id int) (e *entry, closed bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	e = r.live[id]
	return e, e == nil && r.closed[id]
}

// Flush hands one chunk to instance id. A panic returns FLB_RETRY: the chunk stays with Fluent
// Bit. So does a flush racing with the instance's exit (as delivery answers while closing); a
// A flush for an id that never existed is a caller bug, answered with FLB_ERROR.
func (r *Registry) Flush(id int, data []byte, tag string) (rc int) {
	e, closed := r.get(id)
	if closed {
		r.rep.Limited("flush:closed", report.Warn,
			"flush of a chunk with tag %q after its instance exited (context %d); Fluent Bit keeps it for a retry", tag, id)
		return delivery.Retry
	}
	if e == nil {
		r.rep.Limited("flush:unknown", report.Error,
			"flush of a chunk with tag %q for an instance that was never initialized (context %d); Fluent Bit drops it", tag, id)
		return delivery.Error
	}
	defer func() {
		if p := recover(); p != nil {
			logPanic(e.rep, "flush", p)
			rc = delivery.Retry
		}
	}()
	return e.in.Flush(data, tag)
}

// flushWithoutContext answers the pre-context FLBPluginFlush, which cannot name its instance.
func (r *Registry) FlushWithoutContext(tag string) int {
	r.rep.Limited("flush:nocontext", report.Error,
		"FLBPluginFlush called without an instance context (chunk with tag %q): this Fluent Bit is too old for this plugin; it drops the chunk", tag)
	return delivery.Error
}

// exit closes instance id and forgets it. An unknown id (already closed) is not an error:
// Fluent Bit may reach the exit path twice on a failed start.
func (r *Registry) Exit(id int) int {
	r.mu.Lock()
	e := r.live[id]
	if e != nil {
		delete(r.live, id)
		r.closed[id] = true
	}
	r.mu.Unlock()
	if e != nil {
		r.close(e)
	}
	return delivery.OK
}

// exitAll closes every open instance, concurrently, since each waits up to its exit grace.
func (r *Registry) ExitAll() int {
	r.mu.Lock()
	all := make([]*entry, 0, len(r.live))
	for id, e := range r.live {
		all = append(all, e)
		delete(r.live, id)
		r.closed[id] = true
	}
	r.mu.Unlock()
	var wg sync.WaitGroup
	for _, e := range all {
		wg.Go(func() { r.close(e) })
	}
	wg.Wait()
	return delivery.OK
}

func (r *Registry) close(e *entry) {
	defer func() {
		if p := recover(); p != nil {
			logPanic(e.rep, "exit", p)
		}
	}()
	e.in.Close()
}

// open returns how many instances are open.
func (r *Registry) open() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.live)
}

// logPanic prints a caught panic with its stack, rate-limited per call site so a panicking flush
// under load cannot flood the log.
func logPanic(rep *report.Reporter, where string, p any) {
	stack := strings.TrimSpace(string(debug.Stack()))
	rep.Limited("panic:"+where, report.Error, "%s: recovered from a panic (please report this bug): %v\n%s", where, p, stack)
}
