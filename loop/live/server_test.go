package live

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/loop/journal"
	"github.com/insitu-lab/insitu/safety"
)

const testToken = "0123456789abcdef0123456789abcdef"

// fakeRun is a journal written by the test as a run would write it: 3×3
// phases in, a 2×2 camera image out.
type fakeRun struct {
	t   *testing.T
	dir string
	j   *journal.Journal
	n   int
}

func newFakeRun(t *testing.T) *fakeRun {
	t.Helper()
	dir := t.TempDir()
	j, err := journal.Create(dir, journal.Meta{Version: "test", Method: "random", Kind: "owms", Seed: 1}, []byte("name: fake\n"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return &fakeRun{t: t, dir: dir, j: j}
}

func (r *fakeRun) space() insitu.Space { return phaseSpace("", 3) }

func (r *fakeRun) outputs() []string {
	return []string{"px_0_0", "px_0_1", "px_1_0", "px_1_1"}
}

// query journals one finished query with objective f.
func (r *fakeRun) query(f float64) {
	r.t.Helper()
	ctx := context.Background()
	x := make([]float64, 9)
	for i := range x {
		x[i] = f + float64(i)/10
	}
	id, err := r.j.Begin(ctx, journal.Intent{Iteration: r.n / 2, Slot: journal.NoSlot, Role: journal.RoleBaseline, Key: fmt.Sprintf("q%07d", r.n), X: x})
	if err != nil {
		r.t.Fatal(err)
	}
	if err := r.j.Finish(ctx, id, []float64{f, 2 * f, 3, 4}, f, nil); err != nil {
		r.t.Fatal(err)
	}
	if r.n >= 2 { // the surrogate predicts from the third query on
		if err := r.j.Prediction(ctx, id, f/10); err != nil {
			r.t.Fatal(err)
		}
	}
	r.n++
	if err := r.j.Sync(ctx); err != nil {
		r.t.Fatal(err)
	}
}

type fakeControls struct {
	stops  atomic.Int32
	passed atomic.Uint64
}

func startServer(t *testing.T, r *fakeRun, c *fakeControls, hold *Hold) *Server {
	t.Helper()
	ln, err := Listen("127.0.0.1:0", false)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Start(ln, Options{
		Dir: r.dir, Token: testToken, Poll: 20 * time.Millisecond,
		Info: RunInfo{Command: "run", Name: "fake", Method: "random", Kind: "owms", Dir: r.dir, Objective: true, Budget: 100, Iterations: 50, Unit: "iteration"},
		In:   r.space(), Out: r.outputs(),
		Guard: func() (safety.Counters, bool) {
			return safety.Counters{Attempted: c.passed.Load(), Passed: c.passed.Load(), Rejected: map[string]uint64{"bounds": 0}}, true
		},
		Hold: hold,
		Stop: func() { c.stops.Add(1) },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func base(s *Server) string { return "http://" + s.Addr().String() }

// request sends method path with the given headers and returns the status
// and body.
func request(t *testing.T, method, u string, hdr map[string]string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func TestServeAuth(t *testing.T) {
	r := newFakeRun(t)
	s := startServer(t, r, &fakeControls{}, NewHold(nil))
	if !strings.HasPrefix(s.URL(), "http://127.0.0.1:") || !strings.HasSuffix(s.URL(), "/?token="+testToken) {
		t.Errorf("URL %s", s.URL())
	}
	bearer := map[string]string{"Authorization": "Bearer " + testToken}
	wrong := map[string]string{"Authorization": "Bearer " + strings.Repeat("0", len(testToken))}
	wrongCookie := map[string]string{"Cookie": s.cookie + "=nope"}
	for _, path := range []string{"/", "/static/app.js", "/api/state", "/api/events"} {
		for name, hdr := range map[string]map[string]string{"no token": nil, "wrong token": wrong, "wrong cookie": wrongCookie} {
			if code, _, h := request(t, "GET", base(s)+path, hdr); code != http.StatusUnauthorized || h.Get("WWW-Authenticate") == "" {
				t.Errorf("GET %s, %s: %d, want 401", path, name, code)
			}
		}
	}
	for _, path := range []string{"/api/stop", "/api/pause", "/api/resume"} {
		if code, _, _ := request(t, "POST", base(s)+path, nil); code != http.StatusUnauthorized {
			t.Errorf("POST %s without a token: %d, want 401", path, code)
		}
		if code, _, _ := request(t, "POST", base(s)+path, wrong); code != http.StatusUnauthorized {
			t.Errorf("POST %s with a wrong token: %d, want 401", path, code)
		}
	}
	if code, _, _ := request(t, "GET", base(s)+"/?token=wrong", nil); code != http.StatusUnauthorized {
		t.Errorf("page with a wrong ?token=: %d, want 401", code)
	}
	if code, _, _ := request(t, "GET", base(s)+"/api/state?token="+testToken, nil); code != http.StatusUnauthorized {
		t.Errorf("?token= on the API: %d, want 401 (only the page takes it)", code)
	}
	// The page's ?token= sets the cookie and drops the token from the address.
	code, _, h := request(t, "GET", s.URL(), nil)
	ck := h.Get("Set-Cookie")
	if code != http.StatusSeeOther || h.Get("Location") != "/" || !strings.Contains(ck, "HttpOnly") || !strings.Contains(ck, "SameSite=Strict") {
		t.Fatalf("?token=: %d, Location %q, Set-Cookie %q", code, h.Get("Location"), ck)
	}
	cookie := map[string]string{"Cookie": strings.Split(ck, ";")[0]}
	for _, hdr := range []map[string]string{cookie, bearer} {
		code, body, h := request(t, "GET", base(s)+"/", hdr)
		if code != 200 || !strings.Contains(body, `id="stop"`) || !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
			t.Errorf("page: %d %q", code, h.Get("Content-Security-Policy"))
		}
		if code, body, _ := request(t, "GET", base(s)+"/static/app.js", hdr); code != 200 || !strings.Contains(body, "EventSource") {
			t.Errorf("app.js: %d", code)
		}
	}
	// DNS rebinding: a foreign host name is refused even with the token.
	if code, _, _ := request(t, "GET", base(s)+"/api/state", map[string]string{"Authorization": "Bearer " + testToken, "Host": fmt.Sprintf("evil.example:%d", s.Addr().(*net.TCPAddr).Port)}); code != http.StatusForbidden {
		t.Errorf("foreign Host: %d, want 403", code)
	}
	// Any loopback name and port is fine: ssh -L may forward another port.
	if code, _, _ := request(t, "GET", base(s)+"/api/state", map[string]string{"Authorization": "Bearer " + testToken, "Host": "localhost:9999"}); code != 200 {
		t.Errorf("Host localhost:9999: %d, want 200", code)
	}
}

// TestServeCookiePerPort: two live views on one host, even with the same
// token, name their cookies apart (a browser sends every cookie of the
// host to every port), and neither takes the other's.
func TestServeCookiePerPort(t *testing.T) {
	r := newFakeRun(t)
	a := startServer(t, r, &fakeControls{}, NewHold(nil))
	b := startServer(t, r, &fakeControls{}, NewHold(nil))
	_, _, h := request(t, "GET", a.URL(), nil)
	ck := strings.Split(h.Get("Set-Cookie"), ";")[0]
	name, _, _ := strings.Cut(ck, "=")
	if name == b.cookie || !strings.Contains(name, strconv.Itoa(a.Addr().(*net.TCPAddr).Port)) {
		t.Errorf("cookie %q of the server on %v, %q of the one on %v: want each named by its port", name, a.Addr(), b.cookie, b.Addr())
	}
	if code, _, _ := request(t, "GET", base(a)+"/api/state", map[string]string{"Cookie": ck}); code != 200 {
		t.Errorf("own cookie: %d, want 200", code)
	}
	if code, _, _ := request(t, "GET", base(b)+"/api/state", map[string]string{"Cookie": ck}); code != http.StatusUnauthorized {
		t.Errorf("the other server's cookie: %d, want 401", code)
	}
}

func TestServeControls(t *testing.T) {
	r := newFakeRun(t)
	c := &fakeControls{}
	hold := NewHold(nil)
	s := startServer(t, r, c, hold)
	_, _, h := request(t, "GET", s.URL(), nil)
	cookie := strings.Split(h.Get("Set-Cookie"), ";")[0]
	own := "http://" + s.Addr().String()
	bearer := "Bearer " + testToken

	for _, path := range []string{"/api/stop", "/api/pause", "/api/resume"} {
		code, _, h := request(t, "GET", base(s)+path, map[string]string{"Authorization": bearer})
		if code != http.StatusMethodNotAllowed || h.Get("Allow") != "POST" {
			t.Errorf("GET %s: %d (Allow %q), want 405", path, code, h.Get("Allow"))
		}
	}
	for _, path := range []string{"/api/state", "/api/events"} {
		if code, _, _ := request(t, "POST", base(s)+path, map[string]string{"Authorization": bearer, "Origin": own}); code != http.StatusMethodNotAllowed {
			t.Errorf("POST %s: %d, want 405", path, code)
		}
	}
	refused := []struct {
		name string
		hdr  map[string]string
		code int
	}{
		{"cookie, foreign Origin", map[string]string{"Cookie": cookie, "Origin": "http://evil.example"}, 403},
		{"cookie, Origin of another port", map[string]string{"Cookie": cookie, "Origin": "http://127.0.0.1:1"}, 403},
		{"bearer, foreign Origin", map[string]string{"Authorization": bearer, "Origin": "http://evil.example"}, 403},
		{"cookie, no Origin", map[string]string{"Cookie": cookie}, 403},
		// An Origin that only ends or starts with this server's host.
		{"cookie, Origin ending in this host", map[string]string{"Cookie": cookie, "Origin": "http://evil" + s.Addr().String()}, 403},
		{"cookie, Origin of this host over https", map[string]string{"Cookie": cookie, "Origin": "https://" + s.Addr().String()}, 403},
		{"cookie, Origin starting with this host", map[string]string{"Cookie": cookie, "Origin": own + ".evil.example"}, 403},
		{"cookie, Origin of a subdomain of this host", map[string]string{"Cookie": cookie, "Origin": fmt.Sprintf("http://evil.localhost:%d", s.Addr().(*net.TCPAddr).Port), "Host": fmt.Sprintf("localhost:%d", s.Addr().(*net.TCPAddr).Port)}, 403},
		{"Origin null", map[string]string{"Cookie": cookie, "Origin": "null"}, 403},
	}
	for _, path := range []string{"/api/stop", "/api/pause", "/api/resume"} {
		for _, rc := range refused {
			if code, _, _ := request(t, "POST", base(s)+path, rc.hdr); code != rc.code {
				t.Errorf("POST %s, %s: %d, want %d", path, rc.name, code, rc.code)
			}
		}
	}
	if p, _ := hold.Paused(); p || c.stops.Load() != 0 {
		t.Fatal("a refused request changed the run")
	}

	// The page's own requests: cookie and same Origin.
	page := map[string]string{"Cookie": cookie, "Origin": own}
	if code, body, _ := request(t, "POST", base(s)+"/api/pause", page); code != 200 || !strings.Contains(body, `"paused":true`) {
		t.Errorf("pause: %d %s", code, body)
	}
	if p, _ := hold.Paused(); !p {
		t.Error("pause did not pause")
	}
	waitState(t, s, func(st State) bool { return st.Paused })
	// A script: bearer, no Origin.
	if code, body, _ := request(t, "POST", base(s)+"/api/resume", map[string]string{"Authorization": bearer}); code != 200 || !strings.Contains(body, `"paused":false`) {
		t.Errorf("resume: %d %s", code, body)
	}
	if code, _, _ := request(t, "POST", base(s)+"/api/stop", page); code != 200 || c.stops.Load() != 1 {
		t.Errorf("stop: %d, %d stops", code, c.stops.Load())
	}
	waitState(t, s, func(st State) bool { return st.Stopping })
	if code, _, _ := request(t, "POST", base(s)+"/api/stop", page); code != http.StatusConflict || c.stops.Load() != 1 {
		t.Errorf("a second stop: %d, %d stops", code, c.stops.Load())
	}
	if code, _, _ := request(t, "POST", base(s)+"/api/pause", page); code != http.StatusConflict {
		t.Errorf("pause while stopping: %d, want 409", code)
	}
}

// getState reads /api/state.
func getState(t *testing.T, s *Server) (State, map[string]any) {
	t.Helper()
	code, body, h := request(t, "GET", base(s)+"/api/state", map[string]string{"Authorization": "Bearer " + testToken})
	if code != 200 || !strings.HasPrefix(h.Get("Content-Type"), "application/json") {
		t.Fatalf("state: %d %s", code, body)
	}
	var st State
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("state does not parse: %v\n%s", err, body)
	}
	var raw map[string]any
	if err := json.Unmarshal([]byte(body), &raw); err != nil {
		t.Fatal(err)
	}
	return st, raw
}

func waitState(t *testing.T, s *Server, ok func(State) bool) State {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, _ := getState(t, s)
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("state never reached the condition: %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestServeState(t *testing.T) {
	r := newFakeRun(t)
	c := &fakeControls{}
	s := startServer(t, r, c, NewHold(nil))
	ctx := context.Background()
	for _, f := range []float64{3, 1, 2, 0.5, 4} {
		r.query(f)
	}
	// One query in flight: begun, not measured.
	if _, err := r.j.Begin(ctx, journal.Intent{Iteration: 9, Slot: journal.NoSlot, Role: journal.RoleStep, Key: "inflight", X: make([]float64, 9)}); err != nil {
		t.Fatal(err)
	}
	for it := range 3 {
		loss := math.NaN()
		if it > 0 {
			loss = 1 / float64(it)
		}
		if err := r.j.RecordIteration(ctx, journal.Iteration{Iteration: it, Queries: 2 * it, Best: 1, StepObjective: 1, TrainLoss: loss, Controller: 30 * time.Millisecond, Box: 10 * time.Millisecond}); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.j.Event(ctx, journal.EventRecord{Kind: "clamp", Detail: "phi_00_01 clamped", Name: "phi_00_01", Value: 7}); err != nil {
		t.Fatal(err)
	}
	if err := r.j.Event(ctx, journal.EventRecord{Kind: "safestate", Detail: "ok", Value: math.NaN()}); err != nil {
		t.Fatal(err)
	}
	c.passed.Store(5)

	st := waitState(t, s, func(st State) bool { return len(st.Queries) == 5 && len(st.Events) == 2 && len(st.Iterations) == 3 })
	_, raw := getState(t, s)
	for _, k := range []string{"seq", "time", "run", "status", "paused", "stopping", "ended", "progress", "guard", "queries", "iterations", "events", "event_counts", "predictions", "input", "output"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("state lacks %q", k)
		}
	}
	p := st.Progress
	if p.Measured != 5 || p.Begun != 6 || p.Best != 0.5 || p.BestQuery != 4 || p.Budget != 100 || p.Iteration != 2 {
		t.Errorf("progress %+v", p)
	}
	if st.Status != "running" || st.Run.Name != "fake" || st.Run.Method != "random" || st.Run.Direction != "min" || st.Run.Inputs != 9 || st.Run.Outputs != 4 {
		t.Errorf("run %+v, status %s", st.Run, st.Status)
	}
	wantBest := []Float{3, 1, 1, 0.5, 0.5}
	for i, q := range st.Queries {
		if q.N != i+1 || q.Best != wantBest[i] {
			t.Errorf("point %d: %+v", i, q)
		}
	}
	if st.Guard == nil || st.Guard.Passed != 5 {
		t.Errorf("guard %+v", st.Guard)
	}
	if st.Input == nil || st.Input.Kind != "phase" || st.Input.Rows != 3 || st.Input.ID != 4 || st.Input.N != 4 {
		t.Errorf("input %+v", st.Input)
	}
	if st.Output == nil || st.Output.Kind != "image" || st.Output.Rows != 2 || st.Output.Max != 8 {
		t.Errorf("output %+v", st.Output)
	}
	if it := st.Iterations[0]; !math.IsNaN(float64(it.TrainLoss)) || st.Iterations[2].TrainLoss != 0.5 || st.Iterations[1].Controller != 0.03 {
		t.Errorf("iterations %+v", st.Iterations)
	}
	if len(st.EventCounts) != 2 || st.EventCounts["clamp"] != 1 || st.EventCounts["safestate"] != 1 || st.Events[0].Name != "phi_00_01" || !math.IsNaN(float64(st.Events[1].Value)) {
		t.Errorf("safety events %+v %+v", st.Events, st.EventCounts)
	}
	// Prediction records are not safety events: they are the prediction
	// error series, placed at their queries.
	if len(st.Predictions) != 3 || st.Predictions[0].N != 3 || st.Predictions[0].ID != 3 || st.Predictions[0].Err != 0.2 || st.Predictions[2].Err != 0.4 {
		t.Errorf("predictions %+v", st.Predictions)
	}
	if math.IsNaN(float64(st.Progress.QPS)) {
		t.Error("no query rate")
	}

	// The end: the final state says so.
	if err := r.j.SetStatus(ctx, journal.RunInterrupted); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if st := s.snapshotState(); !st.Ended || st.Status != "interrupted" {
		t.Errorf("final state: ended %v, status %s", st.Ended, st.Status)
	}
}

// snapshotState is the whole state as /api/state serves it.
func (s *Server) snapshotState() State {
	var st State
	b, _ := s.snapshot()
	_ = json.Unmarshal(b, &st)
	return st
}

// sse reads server-sent events from the stream and sends each data
// payload (and "end" for the end event) on the returned channel.
func sse(t *testing.T, s *Server) <-chan string {
	t.Helper()
	return sseCtx(t, context.Background(), s)
}

// sseCtx is sse on a request that ends with ctx.
func sseCtx(t *testing.T, ctx context.Context, s *Server) <-chan string {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", base(s)+"/api/events", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	ch := make(chan string, 1000)
	go func() {
		defer resp.Body.Close()
		defer close(ch)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<24)
		event := ""
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				if event == "end" {
					ch <- "end"
				} else {
					ch <- strings.TrimPrefix(line, "data: ")
				}
				event = ""
			}
		}
	}()
	t.Cleanup(func() { resp.Body.Close() })
	return ch
}

func TestServeEventsSendWhatIsNew(t *testing.T) {
	r := newFakeRun(t)
	s := startServer(t, r, &fakeControls{}, NewHold(nil))
	r.query(2)
	r.query(1)
	waitState(t, s, func(st State) bool { return len(st.Queries) == 2 })
	ch := sse(t, s)
	next := func() State {
		t.Helper()
		select {
		case m, ok := <-ch:
			if !ok || m == "end" {
				t.Fatalf("stream ended early (%q)", m)
			}
			var st State
			if err := json.Unmarshal([]byte(m), &st); err != nil {
				t.Fatal(err)
			}
			return st
		case <-time.After(10 * time.Second):
			t.Fatal("no event")
		}
		return State{}
	}
	first := next()
	if first.QueriesFrom != 0 || len(first.Queries) != 2 || first.Input == nil || first.Output == nil {
		t.Fatalf("first event: from %d, %d points, input %v", first.QueriesFrom, len(first.Queries), first.Input != nil)
	}
	r.query(3)
	for {
		st := next()
		if len(st.Queries) == 0 {
			if st.Input != nil {
				t.Error("an unchanged input was sent again")
			}
			continue
		}
		if st.QueriesFrom != 2 || len(st.Queries) != 1 || st.Queries[0].F != 3 || st.Output == nil || st.Input != nil {
			t.Fatalf("delta: from %d, %+v, output %v, input %v", st.QueriesFrom, st.Queries, st.Output != nil, st.Input != nil)
		}
		break
	}
	if err := r.j.SetStatus(context.Background(), journal.RunFinished); err != nil {
		t.Fatal(err)
	}
	go s.Close()
	var last State
	for m := range ch {
		if m == "end" {
			if !last.Ended || last.Status != "finished" {
				t.Errorf("the last state before end: ended %v, status %s", last.Ended, last.Status)
			}
			return
		}
		last = State{}
		_ = json.Unmarshal([]byte(m), &last)
	}
	t.Fatal("the stream closed without an end event")
}

func TestListenRefusesPublicAddresses(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0", "192.0.2.1:8080", "bench-host:8080"} {
		_, err := Listen(addr, false)
		if err == nil || !strings.Contains(err.Error(), "ssh -L") || !strings.Contains(err.Error(), "--serve-public") {
			t.Errorf("%s: %v", addr, err)
		}
	}
	for _, addr := range []string{"127.0.0.1:0", "localhost:0"} {
		ln, err := Listen(addr, false)
		if err != nil {
			t.Errorf("%s: %v", addr, err)
			continue
		}
		ln.Close()
	}
	if _, err := Listen("127.0.0.1", false); err == nil {
		t.Error("an address without a port was accepted")
	}
	ln, err := Listen("0.0.0.0:0", true)
	if err != nil {
		t.Fatalf("public: %v", err)
	}
	ln.Close()
}

// TestEventsStreamsCappedAndShared: the server serves at most MaxStreams
// event streams (one more is refused with 429 and Retry-After, and taken
// again once a stream ends), and encodes each update once for all of them:
// the states encoded while every stream follows a few updates are one per
// update, not one per update and stream.
func TestEventsStreamsCappedAndShared(t *testing.T) {
	r := newFakeRun(t)
	s := startServer(t, r, &fakeControls{}, NewHold(nil))
	r.query(1)
	waitState(t, s, func(st State) bool { return len(st.Queries) == 1 })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type stream struct {
		ch   <-chan string
		stop context.CancelFunc
	}
	var streams []stream
	for range DefaultMaxStreams {
		sctx, stop := context.WithCancel(ctx)
		streams = append(streams, stream{sseCtx(t, sctx, s), stop})
	}
	// Each has its first event: the whole state.
	for i, st := range streams {
		select {
		case <-st.ch:
		case <-time.After(10 * time.Second):
			t.Fatalf("stream %d: no first event", i)
		}
	}
	code, body, h := request(t, "GET", base(s)+"/api/events", map[string]string{"Authorization": "Bearer " + testToken})
	if code != http.StatusTooManyRequests || h.Get("Retry-After") == "" || !strings.Contains(body, "at most") {
		t.Errorf("stream %d: %d %q (Retry-After %q), want 429", DefaultMaxStreams+1, code, body, h.Get("Retry-After"))
	}

	// Three updates with a query each; every stream follows them.
	enc0, seq0 := s.encodes.Load(), s.snapshotState().Seq
	for k := range 3 {
		r.query(float64(2 + k))
	}
	for i, st := range streams {
		n := 1
		for n < 4 {
			select {
			case m := <-st.ch:
				var u State
				if err := json.Unmarshal([]byte(m), &u); err != nil {
					t.Fatal(err)
				}
				n = max(n, u.QueriesFrom+len(u.Queries))
			case <-time.After(10 * time.Second):
				t.Fatalf("stream %d: has %d of 4 queries after 10 s", i, n)
			}
		}
	}
	updates := s.snapshotState().Seq - seq0
	encodes := s.encodes.Load() - enc0
	t.Logf("%d streams followed %d updates: %d states encoded", len(streams), updates, encodes)
	if encodes > updates+2 {
		t.Errorf("%d states encoded for %d updates to %d streams: want one per update", encodes, updates, len(streams))
	}

	// A stream that ends frees its place.
	streams[0].stop()
	deadline := time.Now().Add(10 * time.Second)
	for {
		sctx, stop := context.WithTimeout(ctx, 10*time.Second)
		req, _ := http.NewRequestWithContext(sctx, "GET", base(s)+"/api/events", nil)
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		stop()
		if resp.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a stream ended, and a new one is still refused: %d", resp.StatusCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
