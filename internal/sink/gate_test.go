package sink

import (
	"context"
	"testing"
	"time"
)

func TestGate(t *testing.T) {
	var g Gate
	if !g.Enter() {
		t.Fatal("a new gate refused a delivery")
	}
	closed := make(chan error, 2)
	go func() { closed <- g.Close(context.Background()) }()
	go func() { closed <- g.Close(context.Background()) }()
	time.Sleep(20 * time.Millisecond)
	select {
	case <-closed:
		t.Fatal("Close returned while a delivery was running")
	default:
	}
	if g.Enter() {
		t.Fatal("a closing gate admitted a delivery")
	}
	g.Leave()
	for range 2 {
		if err := <-closed; err != nil {
			t.Fatal(err)
		}
	}

	var h Gate
	h.Enter()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := h.Close(ctx); err != context.DeadlineExceeded {
		t.Fatalf("Close with a stuck delivery = %v, want DeadlineExceeded", err)
	}
}
