package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insitu-lab/insitu/loop/journal"
	"github.com/insitu-lab/insitu/loop/live"
)

// syncBuffer is a bytes.Buffer that a child process writes while the test
// reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// liveRun is `insitu ARGS --serve 127.0.0.1:0` running in a child process,
// with the live view's address and token.
type liveRun struct {
	cmd   *exec.Cmd
	out   *syncBuffer
	done  chan struct{}
	base  string // http://127.0.0.1:PORT
	token string
	url   string // as printed, with ?token=
}

var liveURL = regexp.MustCompile(`live view: (http://[^/\s]+)/\?token=([0-9a-f]+)`)

func startLive(t *testing.T, args ...string) *liveRun {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "INSITU_TEST_MAIN=1", "INSITU_TEST_ARGS="+strings.Join(append(args, "--serve", "127.0.0.1:0"), " "))
	r := &liveRun{cmd: cmd, out: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = r.out, r.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = cmd.Wait(); close(r.done) }()
	t.Cleanup(func() {
		select {
		case <-r.done:
		default:
			_ = cmd.Process.Kill()
			<-r.done
		}
	})
	deadline := time.After(60 * time.Second)
	for {
		if m := liveURL.FindStringSubmatch(r.out.String()); m != nil {
			r.base, r.token, r.url = m[1], m[2], m[0][len("live view: "):]
			return r
		}
		select {
		case <-r.done:
			t.Fatalf("insitu %v ended without a live view:\n%s", args, r.out)
		case <-deadline:
			t.Fatalf("no live view URL after 60 s:\n%s", r.out)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// wait waits for the process to end and returns its exit code.
func (r *liveRun) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-r.done:
		return r.cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		t.Fatalf("the run did not end within %v:\n%s", timeout, r.out)
	}
	return -1
}

func (r *liveRun) request(t *testing.T, method, path string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, r.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+r.token)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", method, path, err, r.out)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (r *liveRun) post(t *testing.T, what string) {
	t.Helper()
	if code, body := r.request(t, "POST", "/api/"+what); code != 200 {
		t.Fatalf("POST /api/%s: %d %s", what, code, body)
	}
}

func (r *liveRun) state(t *testing.T) live.State {
	t.Helper()
	code, body := r.request(t, "GET", "/api/state")
	if code != 200 {
		t.Fatalf("GET /api/state: %d %s", code, body)
	}
	var st live.State
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatalf("state: %v\n%s", err, body)
	}
	return st
}

// until polls the state until ok holds.
func (r *liveRun) until(t *testing.T, what string, timeout time.Duration, ok func(live.State) bool) live.State {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st := r.state(t)
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v; last state: status %s, progress %+v\n%s", what, timeout, st.Status, st.Progress, r.out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stream follows the live view's event stream and returns the last state
// it sent before its end event.
func (r *liveRun) stream(t *testing.T) <-chan live.State {
	t.Helper()
	req, _ := http.NewRequest("GET", r.base+"/api/events", nil)
	req.Header.Set("Authorization", "Bearer "+r.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("events: %v %v", err, resp)
	}
	last := make(chan live.State, 1)
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<26)
		var st live.State
		end := false
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "event: end":
				end = true
			case strings.HasPrefix(line, "data: ") && !end:
				st = live.State{}
				_ = json.Unmarshal([]byte(line[len("data: "):]), &st)
			case strings.HasPrefix(line, "data: ") && end:
				last <- st
				return
			}
		}
		close(last)
	}()
	return last
}

// journalState reads the run's status, query count and safety events.
func journalState(t *testing.T, dir string) (journal.RunStatus, int, []journal.EventRecord, int) {
	t.Helper()
	j, err := journal.OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	ctx := context.Background()
	s, err := j.Summary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	es, err := j.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	qs, err := j.QueriesWhere(ctx, journal.Filter{Statuses: []journal.QueryStatus{journal.StatusStarted}})
	if err != nil {
		t.Fatal(err)
	}
	return s.Status, s.Queries, es, len(qs)
}

func hasEvent(es []journal.EventRecord, kind string) bool {
	for _, e := range es {
		if e.Kind == kind {
			return true
		}
	}
	return false
}

// cnonArgs runs configs/cnon.yaml (100 initial queries, then 5 per
// iteration, a 256×256 surrogate) for a few iterations: long enough to be
// stopped in the middle, short enough to resume to the end. The guard's
// rate (20 queries/s, no burst) paces it as a bench would: the float32
// surrogate makes an iteration take milliseconds, and an unpaced run can end
// before the test's STOP or PAUSE reaches it.
func cnonArgs(dir string, iterations int) []string {
	return []string{"run", filepath.Join("..", "..", "configs", "cnon.yaml"), "--out", dir, "-q", "--iterations", fmt.Sprint(iterations),
		"--set", "safety.rate=20", "--set", "safety.burst=1"}
}

// TestServeStopEndsTheRunResumably: STOP through the API is one Ctrl-C:
// the run ends interrupted with the device in its safe state, the live view
// pushes a final state and closes, and `insitu resume` finishes the run.
func TestServeStopEndsTheRunResumably(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	dir := filepath.Join(t.TempDir(), "run")
	r := startLive(t, cnonArgs(dir, 8)...)
	if !strings.HasPrefix(r.base, "http://127.0.0.1:") {
		t.Errorf("live view on %s, want loopback", r.base)
	}
	st := r.until(t, "the first iteration", 120*time.Second, func(st live.State) bool { return st.Progress.Iteration >= 1 })
	if st.Run.Method != "gradpie" || st.Run.Name != "cnon" || st.Run.Budget != 140 || st.Guard == nil || st.Status != "running" {
		t.Errorf("state: %+v", st)
	}
	final := r.stream(t)
	r.post(t, "stop")
	if code := r.wait(t, 120*time.Second); code != 130 {
		t.Fatalf("exit code %d, want 130 (interrupted)\n%s", code, r.out)
	}
	for _, want := range []string{"STOP from the live view", "Continue with: insitu resume"} {
		if !strings.Contains(r.out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, r.out)
		}
	}
	select {
	case last, ok := <-final:
		if !ok || !last.Ended || last.Status != "interrupted" || !last.Stopping {
			t.Errorf("final pushed state: ok %v, ended %v, status %q, stopping %v", ok, last.Ended, last.Status, last.Stopping)
		}
	case <-time.After(10 * time.Second):
		t.Error("no final state and end event on the stream")
	}
	status, n, events, started := journalState(t, dir)
	if status != journal.RunInterrupted || !hasEvent(events, "safestate") || started != 0 || n >= 140 {
		t.Fatalf("after STOP: status %s, %d queries, %d left started, safestate event %v", status, n, started, hasEvent(events, "safestate"))
	}
	stdout, stderr, err := run(t, "resume", dir, "-q")
	if err != nil {
		t.Fatalf("resume: %v\n%s", err, stderr)
	}
	if !strings.Contains(stdout, "140 queries") {
		t.Errorf("resume summary:\n%s", stdout)
	}
	if status, n, _, _ := journalState(t, dir); status != journal.RunFinished || n != 140 {
		t.Errorf("after resume: status %s, %d queries, want finished with 140", status, n)
	}
}

// TestServePauseHoldsQueries: while paused no query is journaled; after
// RESUME the run finishes.
func TestServePauseHoldsQueries(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	dir := filepath.Join(t.TempDir(), "run")
	r := startLive(t, cnonArgs(dir, 4)...)
	r.until(t, "the initial design", 120*time.Second, func(st live.State) bool { return st.Progress.Measured >= 20 })
	r.post(t, "pause")
	st := r.until(t, "the run reaching the hold", 120*time.Second, func(st live.State) bool { return st.Holding })
	if !st.Paused {
		t.Fatal("holding but not paused")
	}
	_, before, _, _ := journalState(t, dir)
	for range 6 {
		time.Sleep(100 * time.Millisecond)
		if _, n, _, _ := journalState(t, dir); n != before {
			t.Fatalf("%d queries journaled while paused (%d before)", n-before, before)
		}
	}
	if st := r.state(t); st.Progress.Begun != before || !st.Paused {
		t.Errorf("live view while paused: begun %d (journal %d), paused %v", st.Progress.Begun, before, st.Paused)
	}
	r.post(t, "resume")
	if code := r.wait(t, 180*time.Second); code != 0 {
		t.Fatalf("exit code %d after RESUME\n%s", code, r.out)
	}
	if status, n, _, _ := journalState(t, dir); status != journal.RunFinished || n != 120 {
		t.Errorf("status %s, %d queries, want finished with 120", status, n)
	}
}

// TestServeStopWhilePaused: STOP releases the hold; the held query (already
// journaled as started) finishes, as the query in flight does on Ctrl-C.
func TestServeStopWhilePaused(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	dir := filepath.Join(t.TempDir(), "run")
	r := startLive(t, cnonArgs(dir, 4)...)
	r.until(t, "the first queries", 120*time.Second, func(st live.State) bool { return st.Progress.Measured >= 5 })
	r.post(t, "pause")
	r.until(t, "the hold", 120*time.Second, func(st live.State) bool { return st.Holding })
	r.post(t, "stop")
	if code := r.wait(t, 120*time.Second); code != 130 {
		t.Fatalf("exit code %d, want 130\n%s", code, r.out)
	}
	status, _, events, started := journalState(t, dir)
	if status != journal.RunInterrupted || started != 0 || !hasEvent(events, "safestate") {
		t.Errorf("status %s, %d queries left started, safestate %v", status, started, hasEvent(events, "safestate"))
	}
	if _, stderr, err := run(t, "resume", dir, "-q"); err != nil {
		t.Fatalf("resume: %v\n%s", err, stderr)
	}
}

// TestServeRefusesPublicAddress: a non-loopback --serve is refused before
// a run directory exists, with the reason and the way out.
func TestServeRefusesPublicAddress(t *testing.T) {
	cfg := writeFile(t, "tiny.yaml", tinyRun)
	dir := filepath.Join(t.TempDir(), "r")
	_, _, err := run(t, "run", cfg, "--out", dir, "-q", "--serve", "0.0.0.0:0")
	if err == nil || !strings.Contains(err.Error(), "ssh -L") || !strings.Contains(err.Error(), "--serve-public") || !strings.Contains(err.Error(), "in clear") {
		t.Fatalf("--serve 0.0.0.0:0: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Error("a refused --serve left a run directory")
	}
	if _, _, err := run(t, "run", cfg, "--out", dir, "-q", "--serve-public"); err == nil || !strings.Contains(err.Error(), "--serve ADDR") {
		t.Errorf("--serve-public alone: %v", err)
	}
	for _, c := range []string{"run", "resume", "train"} {
		if stdout, _, err := run(t, c, "--help"); err != nil || !strings.Contains(stdout, "--serve string") || !strings.Contains(stdout, "--serve-public") {
			t.Errorf("%s --help: %v\n%s", c, err, stdout)
		}
	}
}

// TestServeLiveInProcess: an in-process run with --serve prints the URL,
// and the server is gone when the command returns.
func TestServeLiveInProcess(t *testing.T) {
	cfg := writeFile(t, "tiny.yaml", tinyRun)
	dir := filepath.Join(t.TempDir(), "r")
	_, stderr, err := run(t, "run", cfg, "--out", dir, "-q", "--serve", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	m := liveURL.FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("no live view URL in:\n%s", stderr)
	}
	u, _ := url.Parse(m[1])
	if _, err := http.Get(m[1] + "/api/state"); err == nil {
		t.Errorf("the live view on %s still answers after the run", u.Host)
	}
}

// TestServeLiveTrain: a training behind the live view (and its hold)
// makes the same queries as without it.
func TestServeLiveTrain(t *testing.T) {
	cfg := writeFile(t, "tiny-train.yaml", `
method: exact
seed: 3
epochs: 8
batch: 10
lr: 0.05
blackbox: {kind: test-tanh, gain: 0.8}
data: {kind: test-blobs, n: 80, noise: 0.25, test_fraction: 0.25, seed: 4}
safety: {timeout: 5s}
`)
	dir := filepath.Join(t.TempDir(), "r")
	stdout, stderr, err := run(t, "train", cfg, "--out", dir, "-q", "--serve", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	// 60 train + 20 test evaluated 9 times, 60 forward passes 8 times.
	if !strings.Contains(stdout, "1200 queries") || !liveURL.MatchString(stderr) {
		t.Errorf("stdout:\n%s\nstderr:\n%s", stdout, stderr)
	}
}
