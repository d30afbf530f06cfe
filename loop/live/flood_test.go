package live

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/insitu-lab/insitu/loop"
	"github.com/insitu-lab/insitu/loop/journal"
	"github.com/insitu-lab/insitu/safety"
	"github.com/insitu-lab/insitu/simulators/cnon"
)

// cnonRun is the README's demo (configs/cnon.yaml: online GradPIE on the
// 10-oscillator CNON twin, a 256×256 surrogate) cut to iterations,
// journaled and served live while streams clients hold /api/events open
// and read every event. It returns the run's queries per second and how
// many of the streams the server took.
func cnonRun(tb testing.TB, iterations, streams int) (qps float64, served int) {
	tb.Helper()
	cc := cnon.DefaultConfig()
	cc.N, cc.Horizon, cc.Steps, cc.Seed = 10, 5, 50, 1
	twin, err := cnon.New(cc)
	if err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	obj, dir, err := loop.NewObjective(ctx, loop.ObjectiveConfig{Kind: "distance", TargetSeed: 3}, twin)
	if err != nil {
		tb.Fatal(err)
	}
	cfg := loop.DefaultConfig()
	cfg.Method, cfg.Seed, cfg.Iterations, cfg.Init.Points, cfg.TopK = loop.MethodGradPIE, 1, iterations, 100, 5
	cfg.Surrogate.Hidden, cfg.Surrogate.InitialEpochs, cfg.Surrogate.Steps, cfg.Surrogate.Overlap = []int{256, 256}, 50, 2, true
	runDir := filepath.Join(tb.TempDir(), "run")
	j, err := journal.Create(runDir, journal.Meta{Version: "test", Method: cfg.Method, Kind: "cnon", Seed: 1, Direction: journal.Direction(dir)}, []byte("name: flood\n"))
	if err != nil {
		tb.Fatal(err)
	}
	defer j.Close()
	rate := 100000.0
	guard, err := safety.New(twin, safety.Config{Rate: &rate, Burst: 1000})
	if err != nil {
		tb.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	hold := NewHold(runCtx.Done())
	ln, err := Listen("127.0.0.1:0", false)
	if err != nil {
		tb.Fatal(err)
	}
	srv, err := Start(ln, Options{
		Dir: runDir, Token: testToken,
		Info: RunInfo{Command: "run", Name: "flood", Method: cfg.Method, Kind: "cnon", Objective: true, Budget: cfg.EffectiveBudget(), Iterations: cfg.Iterations, Unit: "iteration"},
		In:   twin.Spec().In, Out: twin.Spec().Out,
		Guard: func() (safety.Counters, bool) { return guard.Counters(), true },
		Hold:  hold, Stop: cancel,
	})
	if err != nil {
		tb.Fatal(err)
	}
	defer srv.Close()

	// The streams connect and are answered before the run starts.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, MaxIdleConns: -1}}
	var wg sync.WaitGroup
	var mu sync.Mutex
	connected := make(chan struct{}, streams)
	for range streams {
		wg.Go(func() {
			req, _ := http.NewRequestWithContext(runCtx, "GET", "http://"+srv.Addr().String()+"/api/events", nil)
			req.Header.Set("Authorization", "Bearer "+testToken)
			resp, err := client.Do(req)
			connected <- struct{}{}
			if err != nil {
				return
			}
			defer resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				mu.Lock()
				served++
				mu.Unlock()
			}
			_, _ = io.Copy(io.Discard, resp.Body)
		})
	}
	for range streams {
		select {
		case <-connected:
		case <-time.After(60 * time.Second):
			tb.Fatalf("%d streams did not get an answer within a minute", streams)
		}
	}

	start := time.Now()
	var res *loop.Result
	err = guard.Do(runCtx, func(ctx context.Context) error {
		var err error
		res, err = loop.Run(ctx, cfg, loop.Problem{Box: hold.Wrap(guard), Objective: obj, Direction: dir}, j, nil)
		return err
	})
	elapsed := time.Since(start)
	if err != nil {
		tb.Fatal(err)
	}
	if err := j.SetStatus(ctx, journal.RunFinished); err != nil {
		tb.Fatal(err)
	}
	srv.Close() // ends the streams
	cancel()
	wg.Wait()
	return float64(res.Queries) / elapsed.Seconds(), served
}

// BenchmarkEventsFlood measures what 500 clients opening /api/events cost
// a run: the CNON demo's queries per second with no client and with 500
// attempted streams, alternately, in the same benchmark. Figures:
// qps_0 and qps_500 (medians), ratio = qps_500/qps_0, and the streams the
// server took (the rest were refused). Run it with
//
//	go test -run '^$' -bench EventsFlood -benchtime 3x ./loop/live
func BenchmarkEventsFlood(b *testing.B) {
	const iterations, streams = 20, 500
	var free, flood []float64
	served := 0
	for b.Loop() {
		q, _ := cnonRun(b, iterations, 0)
		free = append(free, q)
		q, served = cnonRun(b, iterations, streams)
		flood = append(flood, q)
	}
	sort.Float64s(free)
	sort.Float64s(flood)
	q0, q1 := free[len(free)/2], flood[len(flood)/2]
	b.ReportMetric(q0, "qps_0")
	b.ReportMetric(q1, "qps_500")
	b.ReportMetric(q1/q0, "ratio")
	b.ReportMetric(float64(served), "served")
	b.Logf("queries/s: %.1f without clients, %.1f with %d attempted streams (%d served): ratio %.2f; runs %s vs %s",
		q0, q1, streams, served, q1/q0, fmt.Sprint(free), fmt.Sprint(flood))
}
