package live

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/safety"
)

// Defaults of Options.
const (
	DefaultPoll = 250 * time.Millisecond
	// writeTimeout bounds one write to a client; a client that takes
	// longer is disconnected (its browser reconnects and starts afresh).
	writeTimeout = 10 * time.Second
	// pingEvery keeps an idle event stream open through proxies and finds
	// clients that have gone.
	pingEvery = 15 * time.Second
	// closeTimeout bounds how long Close waits for clients to take the
	// final state before it drops them.
	closeTimeout = 2 * time.Second
	// lastEvents is how many events a state carries.
	lastEvents = 50
	// keepUpdates is how many encoded updates the server keeps for
	// clients that are behind; one further behind gets the whole state.
	keepUpdates = 64
)

// DefaultMaxStreams is Options.MaxStreams when it is 0: a few browser tabs
// and scripts; more streams than this are refused.
const DefaultMaxStreams = 16

// ErrNotLoopback is returned by Listen for an address that is not a
// loopback address when public serving was not asked for.
var ErrNotLoopback = errors.New("not a loopback address")

// Options configure a Server.
type Options struct {
	// Dir is the run directory; its journal is read, never written.
	Dir  string
	Info RunInfo
	// In and Out describe the black box's inputs and outputs, to draw them;
	// OutUnits are the outputs' units (nil when unknown).
	In       insitu.Space
	Out      []string
	OutUnits []string
	// Guard returns the guard's counters; nil, or ok false, before there
	// is a guard.
	Guard func() (safety.Counters, bool)
	// Hold pauses the run (PAUSE / RESUME); nil: no pausing.
	Hold *Hold
	// Stop stops the run as one Ctrl-C does (STOP); nil: no stopping.
	Stop func()
	// Token is the access token; empty: a random one.
	Token string
	// Poll is how often the journal is read (DefaultPoll when 0).
	Poll time.Duration
	// MaxStreams bounds the event streams served at once
	// (DefaultMaxStreams when 0); one more is refused with 429 Too Many
	// Requests.
	MaxStreams int
}

// Server is the live view of one run: an HTTP server on its own listener.
type Server struct {
	o      Options
	ln     net.Listener
	srv    *http.Server
	public bool
	token  [sha256.Size]byte // hashed, to compare in constant time whatever the length
	raw    string
	cookie string
	url    string

	poller *poller

	mu       sync.Mutex // guards the fields below
	st       State      // the whole state: every point, every iteration
	updates  []update   // the newest keepUpdates updates, oldest first
	clients  map[*client]struct{}
	stopping bool
	ended    bool

	fullMu sync.Mutex // one encoding of the whole state at a time
	full   update     // the whole state, encoded at full.seq

	encodes atomic.Uint64 // states encoded, whole or update: shared by every client

	dropped   atomic.Uint64 // updates not sent to a busy client (coalesced into a later one)
	done      chan struct{} // closed by Close: event streams send the final state and end
	pollStop  chan struct{}
	pollDone  chan struct{}
	changed   chan struct{} // a control changed: publish without waiting for the next poll
	closeOnce sync.Once
	closeErr  error
	start     time.Time
}

// client is one event stream. wake has room for one update: when it is
// full the update is dropped, and the client gets the newest state when it
// is ready; a slow client never holds up the server or the run.
type client struct {
	wake chan struct{}
	seq  uint64 // the state the client has: every update up to this one
}

// update is one encoded state: a whole State, or what changed in one
// refresh (the State at seq with only the points, iterations and
// predictions added by it, and the input and output images only if they
// changed). Every client is sent the same bytes.
type update struct {
	seq  uint64
	json []byte
}

// Listen binds addr for a Server. Unless public, addr must be a loopback
// address (127.0.0.0/8, ::1 or localhost): the token and the run's data
// travel in clear over HTTP. Port 0 picks a free port.
func Listen(addr string, public bool) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("live view address %q: %w (want HOST:PORT, e.g. 127.0.0.1:8080)", addr, err)
	}
	if !public && !isLoopback(host) {
		return nil, fmt.Errorf("live view address %q: %w: the access token and the run's data would travel in clear over HTTP; "+
			"serve on 127.0.0.1 and forward the port over SSH (ssh -L 8080:127.0.0.1:8080 bench-host, then open the printed URL "+
			"with localhost:8080), or pass --serve-public on a network you trust", addr, ErrNotLoopback)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("live view: %w", err)
	}
	return ln, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// Start serves the live view of the run in o.Dir on ln (see Listen) until
// Close. The journal is read every o.Poll; the run itself is never waited
// for.
func Start(ln net.Listener, o Options) (*Server, error) {
	if o.Poll <= 0 {
		o.Poll = DefaultPoll
	}
	if o.MaxStreams <= 0 {
		o.MaxStreams = DefaultMaxStreams
	}
	raw := o.Token
	if raw == "" {
		b := make([]byte, 24)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		raw = hex.EncodeToString(b)
	}
	s := &Server{
		o: o, ln: ln, raw: raw, token: sha256.Sum256([]byte(raw)),
		public:   !isLoopback(hostOf(ln.Addr().String())),
		clients:  map[*client]struct{}{},
		done:     make(chan struct{}),
		pollStop: make(chan struct{}),
		pollDone: make(chan struct{}),
		changed:  make(chan struct{}, 1),
		start:    time.Now(),
	}
	// Browsers keep cookies per host, not per port: each server names its
	// own by its port (and token), so two runs on one machine, even given
	// the same token, neither log each other out nor accept each other's.
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	s.cookie = "insitu_" + port + "_" + hex.EncodeToString(s.token[:6])
	s.url = fmt.Sprintf("http://%s/?token=%s", urlHost(ln.Addr()), url.QueryEscape(raw))
	s.st = State{
		Run: o.Info, Status: "running", EventCounts: map[string]int{},
		Queries: []Point{}, Iterations: []Iteration{}, Events: []Event{}, Predictions: []Prediction{},
		Progress: Progress{Iteration: -1, Best: nan(), QPS: nan(), ETA: nan(), Budget: o.Info.Budget},
	}
	s.st.Run.Inputs, s.st.Run.Outputs = o.In.Dim(), len(o.Out)
	s.poller = newPoller(o.Dir, o.Info, inputLayout(o.In), outputLayout(o.Out, o.OutUnits))
	if o.Hold != nil {
		o.Hold.onChange(s.wakeUp)
	}
	s.srv = &http.Server{
		Handler:           s.handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		// No WriteTimeout: event streams last the run; each write has its own deadline.
	}
	s.refresh(delta{}, nil) // the state before the first poll: controls and guard
	go s.pollLoop()
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

func hostOf(addr string) string {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return h
}

// urlHost is the host:port of the URL to print: an unspecified address
// (0.0.0.0, ::) is replaced by the machine's name.
func urlHost(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		if name, err := os.Hostname(); err == nil {
			host = name
		}
	}
	return net.JoinHostPort(host, port)
}

// URL is the page's address with the access token.
func (s *Server) URL() string { return s.url }

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Dropped counts the updates left out for clients that had not taken the
// previous one yet.
func (s *Server) Dropped() uint64 { return s.dropped.Load() }

// Close reads the journal a last time, sends that final state to every
// client, and shuts the server down; clients that do not take it within a
// couple of seconds are dropped. It is safe to call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		close(s.pollStop)
		<-s.pollDone
		d, err := s.poller.poll(context.Background())
		s.poller.close()
		s.mu.Lock()
		s.ended = true
		s.mu.Unlock()
		s.refresh(d, err)
		close(s.done)
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		if err := s.srv.Shutdown(ctx); err != nil {
			s.closeErr = s.srv.Close()
		}
	})
	return s.closeErr
}

func (s *Server) pollLoop() {
	defer close(s.pollDone)
	t := time.NewTicker(s.o.Poll)
	defer t.Stop()
	for {
		var d delta
		var err error
		select {
		case <-s.pollStop:
			return
		case <-s.changed:
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			d, err = s.poller.poll(ctx)
			cancel()
		}
		s.refresh(d, err)
	}
}

// wakeUp asks the poll loop to publish the controls now.
func (s *Server) wakeUp() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// refresh applies what a poll found and what the process knows, and wakes
// every client.
func (s *Server) refresh(d delta, perr error) {
	var guard *Counters
	if s.o.Guard != nil {
		if c, ok := s.o.Guard(); ok {
			guard = countersOf(c)
		}
	}
	var paused, holding bool
	if s.o.Hold != nil {
		paused, holding = s.o.Hold.Paused()
	}
	now := time.Now()
	s.mu.Lock()
	st := &s.st
	st.Seq++
	nq, ni, np := len(st.Queries), len(st.Iterations), len(st.Predictions)
	st.Time = now
	if d.status != "" {
		st.Status = d.status
	}
	if d.direction != "" {
		st.Run.Direction = d.direction
	}
	st.Queries = append(st.Queries, d.points...)
	st.Iterations = append(st.Iterations, d.iterations...)
	st.Predictions = append(st.Predictions, d.predictions...)
	if len(d.events) > 0 {
		// A new map and slice: snapshots taken earlier marshal the old ones.
		counts := cloneCounts(st.EventCounts)
		for _, e := range d.events {
			counts[e.Kind]++
		}
		st.EventCounts = counts
		ev := append(append([]Event(nil), st.Events...), d.events...)
		st.Events = ev[max(len(ev)-lastEvents, 0):]
	}
	if d.input != nil {
		st.Input = d.input
	}
	if d.output != nil {
		st.Output = d.output
	}
	if d.polled {
		d.progress.Budget = st.Run.Budget
		st.Progress = d.progress
	}
	st.Progress.Elapsed = Float(now.Sub(s.start).Seconds())
	st.Progress.ETA = s.eta(st)
	if guard != nil {
		st.Guard = guard
	}
	st.Paused, st.Holding, st.Stopping, st.Ended = paused, holding, s.stopping, s.ended
	st.Error = ""
	if perr != nil {
		st.Error = perr.Error()
	}
	// The update: this refresh's points, iterations and predictions, and
	// the images if they changed. The slices are only appended to, so the
	// copy can be encoded without the lock.
	u := *st
	u.QueriesFrom, u.Queries = nq, st.Queries[nq:]
	u.IterationsFrom, u.Iterations = ni, st.Iterations[ni:]
	u.PredictionsFrom, u.Predictions = np, st.Predictions[np:]
	u.Input, u.Output = d.input, d.output
	s.mu.Unlock()

	// Refreshes come one at a time (from the poll loop, and from Start
	// and Close outside it), so updates are published in order.
	b := s.encode(&u)
	s.mu.Lock()
	if len(s.updates) == keepUpdates {
		s.updates = append(s.updates[:0], s.updates[1:]...)
	}
	s.updates = append(s.updates, update{seq: u.Seq, json: b})
	for c := range s.clients {
		select {
		case c.wake <- struct{}{}:
		default:
			s.dropped.Add(1)
		}
	}
	s.mu.Unlock()
}

// encode marshals a state.
func (s *Server) encode(st *State) []byte {
	s.encodes.Add(1)
	b, err := json.Marshal(st)
	if err != nil { // Float and the plain types always marshal
		b = []byte(`{"error":` + fmt.Sprintf("%q", err.Error()) + `}`)
	}
	return b
}

func cloneCounts(m map[string]int) map[string]int {
	c := make(map[string]int, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// eta estimates the seconds left: from the query rate and the budget, or
// from the time per iteration and the iterations left. NaN when unknown.
func (s *Server) eta(st *State) Float {
	if st.Status != "running" {
		return nan()
	}
	p := st.Progress
	if b := st.Run.Budget; b > 0 && float64(p.QPS) > 0 {
		return Float(float64(max(b-p.Measured, 0)) / float64(p.QPS))
	}
	its := st.Iterations
	if n := st.Run.Iterations; n > 0 && len(its) >= 2 {
		a, b := its[max(len(its)-11, 0)], its[len(its)-1]
		if b.Iteration > a.Iteration && b.Time.After(a.Time) {
			per := b.Time.Sub(a.Time).Seconds() / float64(b.Iteration-a.Iteration)
			return Float(float64(max(n-b.Iteration, 0)) * per)
		}
	}
	return nan()
}

// snapshot is the whole state, encoded, and its seq. It is encoded once
// per state, however many clients ask for it.
func (s *Server) snapshot() ([]byte, uint64) {
	s.fullMu.Lock()
	defer s.fullMu.Unlock()
	s.mu.Lock()
	st := s.st // the slices are only appended to: the copy's elements do not change
	s.mu.Unlock()
	if s.full.json == nil || s.full.seq != st.Seq {
		s.full = update{seq: st.Seq, json: s.encode(&st)}
	}
	return s.full.json, s.full.seq
}

// next returns what client c lacks, encoded, oldest first: the updates
// since its state, or the whole state when it has none yet or is further
// behind than the updates kept; it moves c on.
func (s *Server) next(c *client) [][]byte {
	s.mu.Lock()
	if n := len(s.updates); c.seq > 0 && n > 0 && s.updates[0].seq <= c.seq+1 {
		var out [][]byte
		for _, u := range s.updates {
			if u.seq > c.seq {
				out = append(out, u.json)
			}
		}
		c.seq = max(c.seq, s.updates[n-1].seq)
		s.mu.Unlock()
		return out
	}
	s.mu.Unlock()
	b, seq := s.snapshot()
	c.seq = seq
	return [][]byte{b}
}

// ---- HTTP ----

func (s *Server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/", s.page)
	mux.HandleFunc("/static/", s.get(s.asset))
	mux.HandleFunc("/api/state", s.get(s.state))
	mux.HandleFunc("/api/events", s.get(s.events))
	mux.HandleFunc("/api/stop", s.post(s.stop))
	mux.HandleFunc("/api/pause", s.post(s.pause))
	mux.HandleFunc("/api/resume", s.post(s.resume))
	return s.secure(mux)
}

// secure sets the headers every response gets and refuses a Host that is
// not this server's (DNS rebinding: a page of another site whose name was
// made to resolve to 127.0.0.1).
func (s *Server) secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		if !s.public && !isLoopback(hostOf(r.Host)) {
			http.Error(w, "forbidden: this server answers only to a loopback host name", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// auth reports how r proves it has the token: "bearer" (Authorization
// header), "cookie", or "" (it does not).
func (s *Server) auth(r *http.Request) string {
	if a := r.Header.Get("Authorization"); a != "" {
		if t, ok := strings.CutPrefix(a, "Bearer "); ok && s.valid(t) {
			return "bearer"
		}
		return ""
	}
	if c, err := r.Cookie(s.cookie); err == nil && s.valid(c.Value) {
		return "cookie"
	}
	return ""
}

func (s *Server) valid(t string) bool {
	h := sha256.Sum256([]byte(t))
	return subtle.ConstantTimeCompare(h[:], s.token[:]) == 1
}

func unauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="insitu"`)
	http.Error(w, "unauthorized: open the URL insitu printed (it carries ?token=), or send Authorization: Bearer TOKEN", http.StatusUnauthorized)
}

// page serves the page. ?token= sets the cookie and redirects to the bare
// address, so that the token does not stay in the address bar.
func (s *Server) page(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" && r.URL.Path != "/index.html" {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if t := r.URL.Query().Get("token"); t != "" {
		if !s.valid(t) {
			unauthorized(w)
			return
		}
		http.SetCookie(w, &http.Cookie{Name: s.cookie, Value: s.raw, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	if s.auth(r) == "" {
		unauthorized(w)
		return
	}
	b, _ := static.ReadFile("static/index.html")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(b)
}

func (s *Server) asset(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/")
	b, err := static.ReadFile(name)
	if err != nil || strings.Contains(name, "..") {
		http.NotFound(w, r)
		return
	}
	switch {
	case strings.HasSuffix(name, ".js"):
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	case strings.HasSuffix(name, ".css"):
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
	default:
		w.Header().Set("Content-Type", http.DetectContentType(b))
	}
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(b))
}

func (s *Server) get(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if s.auth(r) == "" {
			unauthorized(w)
			return
		}
		h(w, r)
	}
}

// post guards a request that changes the run: POST only, the token, and
// an Origin that is this server's own, so that no other page the operator
// has open can stop or resume the run. A request without Origin (not a
// browser's) must carry the token in the Authorization header.
func (s *Server) post(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			http.Error(w, "method not allowed: use POST", http.StatusMethodNotAllowed)
			return
		}
		how := s.auth(r)
		if how == "" {
			unauthorized(w)
			return
		}
		origin := r.Header.Get("Origin")
		switch {
		case origin == "" && how != "bearer":
			http.Error(w, "forbidden: a request without Origin must send Authorization: Bearer TOKEN", http.StatusForbidden)
			return
		case origin != "" && origin != "http://"+r.Host:
			http.Error(w, "forbidden: Origin "+origin+" is not this server's", http.StatusForbidden)
			return
		}
		h(w, r)
	}
}

func (s *Server) state(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	b, _ := s.snapshot()
	_, _ = w.Write(b)
}

// events streams the state as server-sent events: the whole state first,
// then each update, as often as the client takes them (several at once
// when it was busy); an "end" event follows the final state when the run
// is over. Beyond MaxStreams streams at once, a new one is refused with
// 429.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	h := w.Header()
	if r.Method == http.MethodHead {
		h.Set("Content-Type", "text/event-stream")
		return
	}
	c := &client{wake: make(chan struct{}, 1)}
	c.wake <- struct{}{}
	s.mu.Lock()
	ended, full := s.ended, len(s.clients) >= s.o.MaxStreams
	if !ended && !full {
		s.clients[c] = struct{}{}
	}
	s.mu.Unlock()
	if !ended && full {
		h.Set("Retry-After", "10")
		http.Error(w, fmt.Sprintf("too many clients: this live view serves at most %d event streams at once", s.o.MaxStreams), http.StatusTooManyRequests)
		return
	}
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	defer func() {
		s.mu.Lock()
		delete(s.clients, c)
		s.mu.Unlock()
	}()
	write := func(b ...[]byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		for _, p := range b {
			if _, err := w.Write(p); err != nil {
				return false
			}
		}
		return rc.Flush() == nil
	}
	if !write([]byte("retry: 2000\n\n")) {
		return
	}
	send := func() bool {
		var parts [][]byte
		for _, b := range s.next(c) {
			parts = append(parts, []byte("data: "), b, []byte("\n\n"))
		}
		return len(parts) == 0 || write(parts...)
	}
	if ended {
		if send() {
			write([]byte("event: end\ndata: {}\n\n"))
		}
		return
	}
	ping := time.NewTicker(pingEvery)
	defer ping.Stop()
	for {
		select {
		case <-c.wake:
			if !send() {
				return
			}
		case <-ping.C:
			if !write([]byte(": ping\n\n")) {
				return
			}
		case <-r.Context().Done():
			return
		case <-s.done:
			if send() {
				write([]byte("event: end\ndata: {}\n\n"))
			}
			return
		}
	}
}

func (s *Server) reply(w http.ResponseWriter, code int, msg string) {
	s.mu.Lock()
	body := map[string]any{"ok": code == http.StatusOK, "message": msg, "stopping": s.stopping, "ended": s.ended}
	s.mu.Unlock()
	if s.o.Hold != nil {
		body["paused"], _ = s.o.Hold.Paused()
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(body)
}

// control runs f unless the run is over or stopping; it reports the
// refusal itself.
func (s *Server) control(w http.ResponseWriter, f func() string) {
	s.mu.Lock()
	ended, stopping := s.ended, s.stopping
	s.mu.Unlock()
	switch {
	case ended:
		s.reply(w, http.StatusConflict, "the run is over")
	case stopping:
		s.reply(w, http.StatusConflict, "the run is stopping")
	default:
		msg := f()
		s.wakeUp()
		s.reply(w, http.StatusOK, msg)
	}
}

func (s *Server) stop(w http.ResponseWriter, r *http.Request) {
	if s.o.Stop == nil {
		s.reply(w, http.StatusNotImplemented, "this run cannot be stopped from here")
		return
	}
	s.control(w, func() string {
		s.mu.Lock()
		s.stopping = true
		s.mu.Unlock()
		s.o.Stop()
		if s.o.Hold != nil {
			s.o.Hold.Resume() // the held query goes ahead, as a Ctrl-C lets the query in flight finish
		}
		return "stopping: the query in flight finishes, then the device goes to its safe state"
	})
}

func (s *Server) pause(w http.ResponseWriter, r *http.Request) {
	s.hold(w, func(h *Hold) bool { return h.Pause() },
		"paused before the next query; the device stays in its current state", "already paused")
}

func (s *Server) resume(w http.ResponseWriter, r *http.Request) {
	s.hold(w, func(h *Hold) bool { return h.Resume() }, "resumed", "not paused")
}

// hold applies act to the run's Hold and replies done when it changed the
// state, else unchanged.
func (s *Server) hold(w http.ResponseWriter, act func(*Hold) bool, done, unchanged string) {
	if s.o.Hold == nil {
		s.reply(w, http.StatusNotImplemented, "this run cannot be paused")
		return
	}
	s.control(w, func() string {
		if act(s.o.Hold) {
			return done
		}
		return unchanged
	})
}
