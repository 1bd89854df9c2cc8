// Package retry is the plugin's single retry layer: exponential backoff with full jitter, bounded
// by the flush's context (flush_timeout). The SDKs' own retries are turned off so they never stack
// with this one.
package retry

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff computes waits between attempts. The zero value is usable (100ms doubling to 5s).
type Backoff struct {
	Base time.Duration // first wait before jitter; default 100ms
	Max  time.Duration // cap before jitter; default 5s
}

// Delay returns the wait before attempt n (n >= 1 is the first retry): a uniformly random
// duration in [d/2, d] where d = min(Max, Base*2^(n-1)). Half-jitter keeps a floor so retries
// against a throttled service really slow down.
func (b Backoff) Delay(n int) time.Duration {
	base, max := b.Base, b.Max
	if base <= 0 {
		base = 100 * time.Millisecond
	}
	if max <= 0 {
		max = 5 * time.Second
	}
	d := base
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	half := d / 2
	return half + rand.N(half+1)
}

// Wait sleeps for Delay(n) or until ctx is done; it returns ctx.Err() in the latter case.
func (b Backoff) Wait(ctx context.Context, n int) error {
	t := time.NewTimer(b.Delay(n))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
