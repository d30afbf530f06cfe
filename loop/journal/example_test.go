package journal_test

import (
	"context"
	"fmt"
	"log"
	"math"
	"os"
	"path/filepath"

	"github.com/insitu-lab/insitu/loop/journal"
)

// The loop's use of a journal: intent before the device, result after,
// Sync before acting on the iteration's results; on resume, Lookup instead
// of querying again.
func Example() {
	ctx := context.Background()
	root, err := os.MkdirTemp("", "insitu-runs")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(root)
	dir := filepath.Join(root, "run-1")

	j, err := journal.Create(dir, journal.Meta{Version: "dev", Method: "gradpie", Kind: "cnon", Seed: 1}, []byte("blackbox: {kind: cnon}\n"))
	if err != nil {
		log.Fatal(err)
	}
	device := func(x []float64) []float64 { return []float64{math.Sin(x[0])} }
	for it := range 2 {
		x := []float64{float64(it)}
		id, err := j.Begin(ctx, journal.Intent{Iteration: it, Slot: 0, Role: journal.RoleStep, Key: fmt.Sprintf("iter %d slot 0 step", it), X: x})
		if err != nil {
			log.Fatal(err)
		}
		y := device(x) // only now is the device touched
		if err := j.Finish(ctx, id, y, y[0], nil); err != nil {
			log.Fatal(err)
		}
		if err := j.Sync(ctx); err != nil { // durable before the loop acts on it
			log.Fatal(err)
		}
	}
	j.Close()

	// Resume: iteration 1 is already paid for.
	j, err = journal.Open(dir)
	if err != nil {
		log.Fatal(err)
	}
	defer j.Close()
	q, ok, err := j.Lookup(ctx, "iter 1 slot 0 step")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ok, q.Status, q.Y)

	list, err := journal.List(root)
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range list {
		fmt.Println(filepath.Base(s.Dir), s.Method, s.Kind, s.Status, s.Done, s.Best)
	}
	// Output:
	// true done [0.8414709848078965]
	// run-1 gradpie cnon running 2 0
}
