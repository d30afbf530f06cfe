package sleep

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestFor(t *testing.T) {
	start := time.Now()
	if err := For(context.Background(), 20*time.Millisecond); err != nil || time.Since(start) < 20*time.Millisecond {
		t.Errorf("For 20ms: %v after %v", err, time.Since(start))
	}
	if err := For(context.Background(), 0); err != nil {
		t.Errorf("For 0: %v", err)
	}
	cause := errors.New("watchdog")
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(cause)
	if err := For(ctx, time.Hour); !errors.Is(err, cause) {
		t.Errorf("done context: %v, want its cause", err)
	}
	if err := For(ctx, 0); !errors.Is(err, cause) {
		t.Errorf("done context, no wait: %v", err)
	}
	// A context that ends during the wait ends it.
	ctx, stop := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- For(ctx, time.Hour) }()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("deadline: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("For did not return when its context ended")
	}
}
