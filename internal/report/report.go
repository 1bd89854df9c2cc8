// Package report is how the plugin tells operators what happened: log lines in Fluent Bit's
// style on stderr, warnings rate-limited per key so a bad template or a missing permission
// cannot flood the log, and counters of everything that was not delivered the normal way.
package report

import (
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Level of a log line.
type Level int

// Levels, as Fluent Bit prints them.
const (
	Debug Level = iota
	Info
	Warn
	Error
)

func (l Level) String() string {
	switch l {
	case Debug:
		return "debug"
	case Info:
		return "info"
	case Warn:
		return "warn"
	default:
		return "error"
	}
}

// Interval is how often a rate-limited message with the same key is printed.
const Interval = time.Minute

// Reporter logs and counts for one plugin instance. It is safe for concurrent use.
type Reporter struct {
	name string // instance label, e.g. "cloudwatch_opensearch.0"

	mu      sync.Mutex
	w       io.Writer
	last    map[string]time.Time
	dropped map[string]int // suppressed repeats since the last print, per key
	now     func() time.Time

	counters sync.Map // string -> *atomic.Int64
	MinLevel Level
}

// New returns a Reporter that writes to w (os.Stderr when nil).
func New(name string, w io.Writer) *Reporter {
	if w == nil {
		w = os.Stderr
	}
	return &Reporter{name: name, w: w, last: map[string]time.Time{}, dropped: map[string]int{}, now: time.Now, MinLevel: Info}
}

// SetClock replaces the clock (tests).
func (r *Reporter) SetClock(now func() time.Time) { r.mu.Lock(); r.now = now; r.mu.Unlock() }

// Logf prints one line.
func (r *Reporter) Logf(l Level, format string, args ...any) {
	if l < r.MinLevel {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.write(l, fmt.Sprintf(format, args...))
}

// Infof, Warnf and Errorf print one line at their level.
func (r *Reporter) Infof(format string, args ...any)  { r.Logf(Info, format, args...) }
func (r *Reporter) Warnf(format string, args ...any)  { r.Logf(Warn, format, args...) }
func (r *Reporter) Errorf(format string, args ...any) { r.Logf(Error, format, args...) }

// Limited prints a line at most once per Interval for key; repeats in between are counted and
// the count is appended to the next line printed for the key. It reports whether it printed.
func (r *Reporter) Limited(key string, l Level, format string, args ...any) bool {
	if l < r.MinLevel {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if t, ok := r.last[key]; ok && now.Sub(t) < Interval {
		r.dropped[key]++
		return false
	}
	if len(r.last) > 10_000 { // bounded: names come from records
		for k, t := range r.last {
			if now.Sub(t) >= Interval {
				delete(r.last, k)
				delete(r.dropped, k)
			}
		}
	}
	r.last[key] = now
	msg := fmt.Sprintf(format, args...)
	if n := r.dropped[key]; n > 0 {
		msg += fmt.Sprintf(" (%d similar messages suppressed)", n)
		delete(r.dropped, key)
	}
	r.write(l, msg)
	return true
}

func (r *Reporter) write(l Level, msg string) {
	ts := r.now().UTC().Format("2006/01/02 15:04:05")
	fmt.Fprintf(r.w, "[%s] [%5s] [output:cloudwatch_opensearch:%s] %s\n", ts, l, r.name, msg)
}

// Add adds n to the named counter.
func (r *Reporter) Add(counter string, n int64) {
	c, ok := r.counters.Load(counter)
	if !ok {
		c, _ = r.counters.LoadOrStore(counter, new(atomic.Int64))
	}
	c.(*atomic.Int64).Add(n)
}

// Count returns the named counter.
func (r *Reporter) Count(counter string) int64 {
	if c, ok := r.counters.Load(counter); ok {
		return c.(*atomic.Int64).Load()
	}
	return 0
}

// Counters returns a copy of every counter.
func (r *Reporter) Counters() map[string]int64 {
	out := map[string]int64{}
	r.counters.Range(func(k, v any) bool {
		out[k.(string)] = v.(*atomic.Int64).Load()
		return true
	})
	return out
}

// Summary formats the non-zero counters as "name=value" pairs in name order.
func (r *Reporter) Summary() string {
	c := r.Counters()
	keys := make([]string, 0, len(c))
	for k, v := range c {
		if v != 0 {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	s := ""
	for i, k := range keys {
		if i > 0 {
			s += " "
		}
		s += fmt.Sprintf("%s=%d", k, c[k])
	}
	return s
}
