// Package ledger remembers, per chunk and per destination, which records are already settled
// (accepted or rejected for good), so that when Fluent Bit retries a chunk (the same bytes, the
// same tag) each destination is sent only what it has not yet taken. This is what keeps a partial
// failure on one side from resending, on either side, what already landed (DESIGN.md, promise 2).
//
// It is bounded: at most MaxChunks entries, each living at most TTL; when full, the oldest idle
// entry is dropped, which can only cause a resend (CloudWatch at-least-once; OpenSearch ids make
// it harmless), never a loss. It lives in memory: a restart forgets it.
package ledger

import (
	"container/list"
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"
)

// Key identifies a chunk: a hash of its tag and content, which Fluent Bit hands back unchanged
// on a retry. The plugin passes its records' ids as the content (they hash each record's time
// and bytes), so the chunk is not hashed a second time.
type Key [32]byte

// KeyOf returns the identity of a chunk from its tag and content.
func KeyOf(tag string, data []byte) Key {
	h := sha256.New()
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(tag)))
	h.Write(n[:])
	h.Write([]byte(tag))
	h.Write(data)
	var k Key
	h.Sum(k[:0])
	return k
}

// Options bound the ledger.
type Options struct {
	Destinations int           // how many destinations each entry tracks
	MaxChunks    int           // entries kept at most; default 4096
	TTL          time.Duration // an entry not settled within TTL is forgotten; default 2h
	Now          func() time.Time
}

// Ledger is safe for concurrent use.
type Ledger struct {
	o       Options
	mu      sync.Mutex
	entries map[Key]*list.Element // of *Entry, in lru (front = newest)
	lru     list.List
	evicted atomic.Int64
}

// Entry tracks one chunk's records for every destination. Mark and Done are safe for concurrent
// use (destinations settle records from several goroutines).
type Entry struct {
	key     Key
	n       int
	bits    [][]atomic.Uint64 // per destination, one bit per record
	created time.Time
	users   int // flushes holding the entry (guarded by Ledger.mu)
	retries int // how many times this chunk came back (guarded by Ledger.mu)
}

// New returns an empty ledger.
func New(o Options) *Ledger {
	if o.MaxChunks <= 0 {
		o.MaxChunks = 4096
	}
	if o.TTL <= 0 {
		o.TTL = 2 * time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Destinations <= 0 {
		o.Destinations = 1
	}
	return &Ledger{o: o, entries: map[Key]*list.Element{}}
}

// Acquire returns the entry of a chunk of n records, creating it if the chunk is new (or its
// entry expired, or the record count differs, which means the bytes decode differently and
// nothing can be trusted). Every Acquire is paired with one Release.
func (l *Ledger) Acquire(k Key, n int) (e *Entry, retry bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.o.Now()
	if el, ok := l.entries[k]; ok {
		e = el.Value.(*Entry)
		if e.n == n && now.Sub(e.created) < l.o.TTL {
			e.users++
			e.retries++
			l.lru.MoveToFront(el)
			return e, true
		}
		l.lru.Remove(el)
		delete(l.entries, k)
	}
	e = &Entry{key: k, n: n, created: now, users: 1, bits: make([][]atomic.Uint64, l.o.Destinations)}
	words := (n + 63) / 64
	for d := range e.bits {
		e.bits[d] = make([]atomic.Uint64, words)
	}
	l.entries[k] = l.lru.PushFront(e)
	l.evictLocked(now)
	return e, false
}

// Release ends a flush's use of the entry. settled means every destination settled every record
// (the flush answers FLB_OK): the chunk will not come back, so its entry is dropped.
func (l *Ledger) Release(e *Entry, settled bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e.users--
	if settled {
		if el, ok := l.entries[e.key]; ok && el.Value.(*Entry) == e {
			l.lru.Remove(el)
			delete(l.entries, e.key)
		}
	}
}

// evictLocked drops idle entries from the least recently used end while the ledger is over
// capacity or they are expired. Entries in use are never dropped.
func (l *Ledger) evictLocked(now time.Time) {
	for el := l.lru.Back(); el != nil; {
		prev := el.Prev()
		e := el.Value.(*Entry)
		over := l.lru.Len() > l.o.MaxChunks
		expired := now.Sub(e.created) >= l.o.TTL
		if !over && !expired {
			break
		}
		if e.users == 0 {
			l.lru.Remove(el)
			delete(l.entries, e.key)
			l.evicted.Add(1)
		}
		el = prev
	}
}

// Len returns the number of chunks remembered.
func (l *Ledger) Len() int { l.mu.Lock(); defer l.mu.Unlock(); return l.lru.Len() }

// Evicted returns how many unsettled entries were dropped for space or age.
func (l *Ledger) Evicted() int64 { return l.evicted.Load() }

// Pending returns how many remembered chunks are unsettled and how many of their records some
// destination has not settled (for the shutdown report).
func (l *Ledger) Pending() (chunks, records int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for el := l.lru.Front(); el != nil; el = el.Next() {
		e := el.Value.(*Entry)
		chunks++
		for seq := 0; seq < e.n; seq++ {
			for d := range e.bits {
				if !e.Done(d, seq) {
					records++
					break
				}
			}
		}
	}
	return chunks, records
}

// Len returns the number of records of the chunk.
func (e *Entry) Len() int { return e.n }

// Done reports whether destination d settled record seq.
func (e *Entry) Done(d, seq int) bool {
	return e.bits[d][seq>>6].Load()&(1<<(uint(seq)&63)) != 0
}

// Mark records that destination d settled record seq.
func (e *Entry) Mark(d, seq int) {
	e.bits[d][seq>>6].Or(1 << (uint(seq) & 63))
}

// Remaining returns how many records destination d has not settled.
func (e *Entry) Remaining(d int) int {
	n := 0
	for seq := 0; seq < e.n; seq++ {
		if !e.Done(d, seq) {
			n++
		}
	}
	return n
}
