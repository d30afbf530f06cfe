// Package live serves the operator's console of a run: a small web page,
// updated live, with the objective curve, the best input (an SLM phase map
// or bars), the last camera frame, the guard's counters and events, the
// surrogate's loss, the time per iteration, the budget and an ETA, and
// STOP, PAUSE and RESUME buttons.
//
// # Data flow
//
// The server never sits in the run's path. A poller reads the run's journal
// through its own read-only SQLite connection every Options.Poll (250 ms):
// the queries, iterations and events with ids past the last it read (WAL
// readers do not block the writer). Options.Guard adds what only the
// process knows (the guard's counters); the Hold says whether the run is
// paused. Each poll updates one State and wakes every client.
//
// # Backpressure
//
// Each poll is encoded once, as an update: what changed since the previous
// one (the new points, iterations and predictions, and the input and
// output images only when they changed). Every event stream (GET
// /api/events, server-sent events) is sent those same bytes: the first
// event carries the whole state (encoded once per state, however many
// clients connect), later ones the updates the client lacks. A client
// more than 64 updates behind gets the whole state again. At most
// Options.MaxStreams streams are served at once (DefaultMaxStreams, 16);
// one more is refused with 429 Too Many Requests, so that no number of
// clients costs the run more than that many writes per poll.
//
// Each stream has a wake-up channel with room for one update. Waking is a
// non-blocking send: if the client has not taken the previous update yet,
// this one is dropped, and the client gets everything it has not had when
// it is ready. A stalled client therefore costs the poller nothing and the
// run nothing; its own write times out after writeTimeout and it is
// disconnected.
//
// # Security
//
// Listen refuses a non-loopback address unless asked (the token and the
// data would travel in clear): use SSH port forwarding. Every request needs
// the random token: ?token= on the page (which then sets an HttpOnly,
// SameSite=Strict cookie for the page's own requests) or Authorization:
// Bearer. Tokens are compared in constant time. STOP, PAUSE and RESUME are
// POSTs whose Origin must be the server's own (a POST without Origin must
// use the Bearer header), so no other page in the operator's browser can
// drive the run; the Host must be a loopback name (DNS rebinding), and the
// page may not be framed.
//
// # Controls
//
// STOP calls Options.Stop, which the command makes cancel the run's
// context with the cause a first Ctrl-C uses: the query in flight finishes,
// the device goes to its safe state, and the run is resumable. PAUSE holds
// the run before its next query (see Hold); it is hold-only, the device
// stays as the last query left it.
package live
