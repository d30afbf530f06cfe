package journal

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The crash test runs the loop's journaling pattern in a child process (this
// test binary, re-executed) and kills it with SIGKILL at random moments.
const (
	helperEnv      = "INSITU_JOURNAL_HELPER"
	helperDirEnv   = "INSITU_JOURNAL_HELPER_DIR"
	helperSyncEnv  = "INSITU_JOURNAL_HELPER_SYNC"
	helperItersEnv = "INSITU_JOURNAL_HELPER_ITERS"
	crashSlots     = 4 // points per iteration
	crashCkptEvery = 3 // iterations between checkpoints
)

// crashX is the input of slot s in iteration it; it carries bit patterns
// that must survive (-0, a subnormal).
func crashX(it, s int) []float64 {
	return []float64{float64(it) + float64(s)/8, -float64(s), 1e-310, math.Copysign(0, -1)}
}

// crashBox is the black box the child queries: a pure function of x, so the
// parent can check every recorded result.
func crashBox(x []float64) (y []float64, objective float64) {
	y = make([]float64, len(x))
	for i, v := range x {
		y[i] = 3*math.Sin(v) + float64(i)
		objective += y[i]
	}
	return y, objective
}

func crashKey(it, s int) string { return fmt.Sprintf("iter %d slot %d step", it, s) }

// crashCheckpoint is the checkpoint after iteration it; the parent verifies
// that a checkpoint is always whole.
func crashCheckpoint(it int) map[string][]byte {
	state := binary.LittleEndian.AppendUint64(nil, uint64(it))
	return map[string][]byte{"loop": state, "surrogate": bytes.Repeat(state, 512), "rng": []byte(strconv.Itoa(it))}
}

// TestHelperProcess is the child: the resume-and-continue pattern of the
// loop. It prints "ready" once the journal is open and "synced ID" for each
// query whose result has been committed.
func TestHelperProcess(t *testing.T) {
	if os.Getenv(helperEnv) != "crash" {
		t.Skip("helper process of TestCrashDurability")
	}
	if err := crashChild(); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(3)
	}
	os.Exit(0)
}

func crashChild() error {
	ctx := context.Background()
	policy := SyncPerIteration
	if os.Getenv(helperSyncEnv) == "every" {
		policy = SyncEvery
	}
	iters, err := strconv.Atoi(os.Getenv(helperItersEnv))
	if err != nil {
		return err
	}
	j, err := Open(os.Getenv(helperDirEnv), WithSync(policy))
	if err != nil {
		return err
	}
	defer j.Close()
	fmt.Println("ready")
	for it := range iters {
		// Begin every new point first, measure, then Finish: the shape in
		// which SyncPerIteration really batches, so a kill can land while
		// results are pending.
		type pending struct {
			id        int64
			s         int
			remeasure bool
		}
		var todo []pending
		for s := range crashSlots {
			q, ok, err := j.Lookup(ctx, crashKey(it, s))
			switch {
			case err != nil:
				return err
			case !ok:
				id, err := j.Begin(ctx, Intent{Iteration: it, Slot: s, Role: RoleStep, Key: crashKey(it, s), X: crashX(it, s)})
				if err != nil {
					return err
				}
				todo = append(todo, pending{id, s, false})
			case q.Status == StatusStarted:
				todo = append(todo, pending{q.ID, s, true})
			}
		}
		if len(todo) == 0 {
			continue
		}
		for _, p := range todo {
			y, obj := crashBox(crashX(it, p.s))
			finish := j.Finish
			if p.remeasure {
				finish = j.Remeasure
			}
			if err := finish(ctx, p.id, y, obj, nil); err != nil {
				return err
			}
		}
		if err := j.Sync(ctx); err != nil {
			return err
		}
		var b strings.Builder
		for _, p := range todo {
			fmt.Fprintf(&b, "synced %d\n", p.id)
		}
		os.Stdout.WriteString(b.String())
		// The loop now acts on the results (trains the surrogate) without
		// writing: a kill here must find every reported result on disk.
		time.Sleep(time.Millisecond)
		if err := j.Event(ctx, EventRecord{Kind: "rate", Detail: "iteration done", QueryID: todo[0].id, Value: float64(it)}); err != nil {
			return err
		}
		if it%crashCkptEvery == crashCkptEvery-1 {
			if err := j.SaveCheckpoint(ctx, it, crashCheckpoint(it)); err != nil {
				return err
			}
		}
	}
	fmt.Println("done")
	return nil
}

// runChild starts the child and returns the ids it reported as synced. With
// a kill delay it is SIGKILLed that long after it is ready; without, it must
// run to completion.
func runChild(t *testing.T, dir, policy string, iters int, kill time.Duration, doKill bool) (synced []int64) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), helperEnv+"=crash", helperDirEnv+"="+dir, helperSyncEnv+"="+policy, helperItersEnv+"="+strconv.Itoa(iters))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	lines := make(chan []int64)
	go func() {
		var ids []int64
		br := bufio.NewReader(out)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				break // a fragment without its newline was cut by the kill: not a report
			}
			line = strings.TrimSuffix(line, "\n")
			switch {
			case line == "ready":
				close(ready)
			case strings.HasPrefix(line, "synced "):
				id, err := strconv.ParseInt(strings.TrimPrefix(line, "synced "), 10, 64)
				if err != nil {
					t.Errorf("child printed %q", line)
					continue
				}
				ids = append(ids, id)
			}
		}
		lines <- ids
	}()
	select {
	case <-ready:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("child never became ready; stderr:\n%s", stderr.String())
	}
	if doKill {
		time.Sleep(kill)
		if err := cmd.Process.Kill(); err != nil { // SIGKILL on Unix
			t.Fatal(err)
		}
	}
	synced = <-lines
	err = cmd.Wait()
	if !doKill && err != nil {
		t.Fatalf("child: %v; stderr:\n%s", err, stderr.String())
	}
	if doKill && err == nil {
		t.Logf("child finished before it was killed")
	}
	return synced
}

// crashState is what the parent knows after a kill.
type crashState struct {
	maxIter int
	started map[int64]Query // ids found started after some kill, as first seen
}

// verifyCrash opens the journal as a resuming loop would and checks it.
func verifyCrash(t *testing.T, dir string, synced map[int64]bool, st *crashState) {
	t.Helper()
	ctx := context.Background()
	j, err := Open(dir)
	if err != nil {
		t.Fatalf("journal does not open after a kill: %v", err)
	}
	defer j.Close()
	if err := j.IntegrityCheck(ctx); err != nil {
		t.Fatal(err)
	}
	qs, err := j.Queries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[int64]Query{}
	slots := map[[2]int]int64{}
	for _, q := range qs {
		byID[q.ID] = q
		at := [2]int{q.Iteration, q.Slot}
		if prev, dup := slots[at]; dup {
			t.Fatalf("iteration %d slot %d queried twice: ids %d and %d", q.Iteration, q.Slot, prev, q.ID)
		}
		slots[at] = q.ID
		if q.Key != crashKey(q.Iteration, q.Slot) || !sameBits(q.X, crashX(q.Iteration, q.Slot)) {
			t.Fatalf("query %d: key %q x %v do not match its iteration and slot", q.ID, q.Key, q.X)
		}
		st.maxIter = max(st.maxIter, q.Iteration)
		switch q.Status {
		case StatusDone, StatusRemeasured:
			y, obj := crashBox(q.X)
			if !sameBits(q.Y, y) || q.Objective != obj {
				t.Fatalf("query %d: y %v objective %v, want %v %v", q.ID, q.Y, q.Objective, y, obj)
			}
			if q.Status == StatusRemeasured {
				if first, ok := st.started[q.ID]; !ok {
					t.Errorf("query %d remeasured but never seen started", q.ID)
				} else if !q.StartedAt.Equal(first.StartedAt) {
					t.Errorf("query %d: remeasure moved started_at from %v to %v", q.ID, first.StartedAt, q.StartedAt)
				}
			}
		case StatusStarted:
			if synced[q.ID] {
				t.Fatalf("query %d was reported synced but reads back as started", q.ID)
			}
			if q.Y != nil || q.FinishedAt != (time.Time{}) {
				t.Fatalf("started query %d has a result: %+v", q.ID, q)
			}
			if _, seen := st.started[q.ID]; !seen {
				st.started[q.ID] = q
			}
		default:
			t.Fatalf("query %d: status %s", q.ID, q.Status)
		}
	}
	for id := range synced {
		q, ok := byID[id]
		if !ok {
			t.Fatalf("query %d was reported synced but is missing", id)
		}
		if q.Status != StatusDone && q.Status != StatusRemeasured {
			t.Fatalf("query %d was reported synced but is %s", id, q.Status)
		}
	}
	started, err := j.QueriesWhere(ctx, Filter{Statuses: []QueryStatus{StatusStarted}})
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range started {
		if st.started[q.ID].ID != q.ID {
			t.Fatalf("started query %d not reported by QueriesWhere", q.ID)
		}
	}
	// A checkpoint is whole, and every result of its iteration is committed.
	if it, parts, ok, err := j.LatestCheckpoint(ctx); err != nil {
		t.Fatal(err)
	} else if ok {
		want := crashCheckpoint(it)
		if len(parts) != len(want) {
			t.Fatalf("checkpoint of iteration %d has %d parts, want %d", it, len(parts), len(want))
		}
		for name, b := range want {
			if !bytes.Equal(parts[name], b) {
				t.Fatalf("checkpoint of iteration %d: part %q damaged", it, name)
			}
		}
		for s := range crashSlots {
			q, ok := byID[slots[[2]int{it, s}]]
			if !ok || (q.Status != StatusDone && q.Status != StatusRemeasured) {
				t.Fatalf("checkpoint of iteration %d refers to slot %d, which is not done: %+v", it, s, q)
			}
		}
	}
}

func TestCrashDurability(t *testing.T) {
	const kills = 12
	dir := t.TempDir()
	j, err := Create(dir, testMeta(), []byte("crash: test\n"))
	if err != nil {
		t.Fatal(err)
	}
	j.Close()

	rng := rand.New(rand.NewPCG(20261122, 1))
	synced := map[int64]bool{}
	st := &crashState{started: map[int64]Query{}}
	var startedAfterKill int
	for k := range kills {
		policy := []string{"iteration", "every"}[k%2]
		delay := time.Duration(rng.IntN(80)) * time.Millisecond
		ids := runChild(t, dir, policy, 1<<30, delay, true)
		for _, id := range ids {
			if synced[id] {
				t.Fatalf("kill %d: query %d reported synced twice: it was measured again", k, id)
			}
			synced[id] = true
		}
		before := len(st.started)
		verifyCrash(t, dir, synced, st)
		startedAfterKill += len(st.started) - before
		t.Logf("kill %d (%s, after %v): %d synced so far, last iteration %d", k, policy, delay, len(synced), st.maxIter)
	}

	// Resume to the end: every interrupted query is remeasured, nothing is
	// queried twice, nothing is left started.
	iters := st.maxIter + 2
	for _, id := range runChild(t, dir, "iteration", iters, 0, false) {
		if synced[id] {
			t.Fatalf("final run: query %d reported synced twice", id)
		}
		synced[id] = true
	}
	verifyCrash(t, dir, synced, st)
	r, err := OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx := context.Background()
	qs, err := r.Queries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// A kill between Sync and the report leaves done queries never
	// reported, so synced may fall short of the total.
	if len(qs) != iters*crashSlots || len(synced) > len(qs) {
		t.Fatalf("%d queries, %d reported synced, want %d", len(qs), len(synced), iters*crashSlots)
	}
	remeasured := 0
	for _, q := range qs {
		switch q.Status {
		case StatusRemeasured:
			remeasured++
		case StatusDone:
			if _, ok := st.started[q.ID]; ok {
				t.Errorf("query %d was seen started after a kill but ends done, not remeasured", q.ID)
			}
		default:
			t.Errorf("query %d ends %s", q.ID, q.Status)
		}
	}
	if remeasured != len(st.started) {
		t.Errorf("%d remeasured, want the %d seen started", remeasured, len(st.started))
	}
	t.Logf("%d kills, %d queries, %d left started by a kill and remeasured", kills, len(qs), startedAfterKill)
}
