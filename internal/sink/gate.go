package sink

import (
	"context"
	"sync"
)

// Gate counts a destination's running deliveries so that Close can refuse new ones and wait
// for those in flight. The zero value is open. Both destinations use it.
type Gate struct {
	mu      sync.Mutex
	running int
	closed  bool
	idle    chan struct{} // closed when the last delivery ends after Close
}

// Enter admits one delivery; false once the gate is closed.
func (g *Gate) Enter() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.running++
	return true
}

// Leave ends a delivery admitted by Enter.
func (g *Gate) Leave() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.running--; g.running == 0 && g.idle != nil {
		close(g.idle)
		g.idle = nil
	}
}

// Close refuses new deliveries and waits until none runs or ctx is done.
func (g *Gate) Close(ctx context.Context) error {
	g.mu.Lock()
	g.closed = true
	done := make(chan struct{})
	if g.running == 0 {
		close(done)
	} else {
		if g.idle != nil {
			done = g.idle // a second Close waits on the same channel
		} else {
			g.idle = done
		}
	}
	g.mu.Unlock()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
