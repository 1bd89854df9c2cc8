package retry

import (
	"context"
	"testing"
	"time"
)

func TestDelayBounds(t *testing.T) {
	b := Backoff{Base: 10 * time.Millisecond, Max: 80 * time.Millisecond}
	cases := []struct {
		n        int
		min, max time.Duration
	}{
		{1, 5 * time.Millisecond, 10 * time.Millisecond},
		{2, 10 * time.Millisecond, 20 * time.Millisecond},
		{4, 40 * time.Millisecond, 80 * time.Millisecond},
		{10, 40 * time.Millisecond, 80 * time.Millisecond}, // capped
	}
	for _, c := range cases {
		for i := 0; i < 200; i++ {
			if d := b.Delay(c.n); d < c.min || d > c.max {
				t.Fatalf("Delay(%d) = %v, want in [%v, %v]", c.n, d, c.min, c.max)
			}
		}
	}
}

func TestDelayJitters(t *testing.T) {
	b := Backoff{Base: time.Second, Max: time.Second}
	seen := map[time.Duration]bool{}
	for i := 0; i < 50; i++ {
		seen[b.Delay(1)] = true
	}
	if len(seen) < 10 {
		t.Fatalf("only %d distinct delays in 50 draws: no jitter", len(seen))
	}
}

func TestWaitStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if err := (Backoff{Base: time.Hour, Max: time.Hour}).Wait(ctx, 1); err != context.Canceled {
		t.Fatalf("Wait = %v, want context.Canceled", err)
	}
	if time.Since(start) > time.Second {
		t.Fatal("Wait did not return promptly on a cancelled context")
	}
}
