package insitu_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/insitu-lab/insitu"
)

func TestQueryTraceCollectsMarks(t *testing.T) {
	// Without a trace, marking is a no-op and must not panic.
	insitu.MarkQuery(context.Background(), "slm", insitu.MarkShown, time.Now())

	var tr insitu.QueryTrace
	ctx := insitu.WithQueryTrace(context.Background(), &tr)
	t0 := time.Unix(100, 0)
	insitu.MarkQuery(ctx, "slm", insitu.MarkWritten, t0)
	insitu.MarkQuery(ctx, "slm", insitu.MarkShown, t0.Add(time.Millisecond))
	got := tr.Marks()
	if len(got) != 2 || got[0].Event != insitu.MarkWritten || got[1].Event != insitu.MarkShown ||
		got[1].Part != "slm" || !got[1].At.Equal(t0.Add(time.Millisecond)) {
		t.Fatalf("marks = %+v", got)
	}
	got[0].Event = "changed"
	if tr.Marks()[0].Event != insitu.MarkWritten {
		t.Fatal("Marks returned the trace's own slice")
	}
	tr.Reset()
	if n := len(tr.Marks()); n != 0 {
		t.Fatalf("after Reset: %d marks", n)
	}
}

func TestQueryTraceConcurrentParts(t *testing.T) {
	var tr insitu.QueryTrace
	ctx := insitu.WithQueryTrace(context.Background(), &tr)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 100; j++ {
				insitu.MarkQuery(ctx, "p", insitu.MarkMeasured, time.Now())
			}
		}()
	}
	wg.Wait()
	if n := len(tr.Marks()); n != 800 {
		t.Fatalf("%d marks, want 800", n)
	}
}
