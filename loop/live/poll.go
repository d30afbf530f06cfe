package live

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" driver, as the journal uses

	"github.com/insitu-lab/insitu/loop/journal"
)

// pollRows bounds the rows one read takes, and pollBatches the reads of
// one poll, so that the first poll of a long journal does not hold a read
// transaction for long; the rest comes with the next polls.
const (
	pollRows    = 5000
	pollBatches = 20
)

// poller reads a journal that another connection (the run) is writing:
// every poll reads only what is new since the last one. It has its own
// read-only connection, so the run never waits for it (WAL readers do not
// block the writer) and it never waits for the run but for SQLite's own
// brief locks.
type poller struct {
	path      string
	objective bool // queries have an objective: show the best input, else the last
	in, out   layout
	since     time.Time // the server's start: the query rate is measured from it

	db    *sql.DB
	marks bool // the queries table has a marks column

	maxID      int64
	pending    map[int64]bool // rows read while started
	measured   int
	begun      int
	failed     int
	remeasured int
	minimize   bool
	bestF      float64
	bestID     int64
	bestN      int
	lastID     int64 // the last measured query with an output
	lastN      int
	lastIter   int
	lastEvent  int64
	inShown    int64 // the queries whose input and output were drawn last
	outShown   int64
	recent     []time.Time   // finish times of recent queries measured since `since`
	nOf        map[int64]int // journal id → N of every measured query
	early      []Prediction  // predictions read before their query's result
}

func newPoller(dir string, info RunInfo, in, out layout) *poller {
	return &poller{
		path: filepath.Join(dir, journal.FileName), objective: info.Objective, in: in, out: out, since: time.Now(),
		pending: map[int64]bool{}, minimize: true, bestF: math.NaN(), lastIter: -1, nOf: map[int64]int{},
	}
}

// delta is what one poll found.
type delta struct {
	polled            bool // the journal was read (progress is valid)
	status, direction string
	points            []Point
	iterations        []Iteration
	events            []Event
	predictions       []Prediction
	progress          Progress // all but Elapsed, ETA (the server's)
	input, output     *Vector  // nil: unchanged
}

func (p *poller) open(ctx context.Context) error {
	if p.db != nil {
		return nil
	}
	q := url.Values{}
	q.Set("mode", "ro")
	q.Add("_pragma", "busy_timeout(2000)")
	q.Add("_pragma", "query_only(1)")
	dsn := (&url.URL{Scheme: "file", Path: p.path, RawQuery: q.Encode()}).String()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return err
	}
	db.SetMaxOpenConns(1)
	cols := map[string]bool{}
	rows, err := db.QueryContext(ctx, "SELECT name FROM pragma_table_info('queries')")
	if err != nil {
		db.Close()
		return err
	}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			db.Close()
			return err
		}
		cols[n] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		db.Close()
		return err
	}
	if !cols["objective"] {
		db.Close()
		return fmt.Errorf("%s: not an insitu journal (no queries table)", p.path)
	}
	p.marks = cols["marks"] // journals of schema version 3 keep each query's timing marks
	p.db = db
	return nil
}

func (p *poller) close() {
	if p.db != nil {
		p.db.Close()
		p.db = nil
	}
}

// poll reads what is new in one read transaction.
func (p *poller) poll(ctx context.Context) (d delta, err error) {
	if err := p.open(ctx); err != nil {
		return d, err
	}
	tx, err := p.db.BeginTx(ctx, nil)
	if err != nil {
		return d, err
	}
	defer tx.Rollback()
	if err := p.readMeta(ctx, tx, &d); err != nil {
		return d, err
	}
	if err := p.readQueries(ctx, tx, &d); err != nil {
		return d, err
	}
	if err := p.readVectors(ctx, tx, &d); err != nil {
		return d, err
	}
	if err := p.readIterations(ctx, tx, &d); err != nil {
		return d, err
	}
	if err := p.readEvents(ctx, tx, &d); err != nil {
		return d, err
	}
	d.polled = true
	d.progress = Progress{
		Measured: p.measured, Begun: p.begun, Failed: p.failed, Remeasured: p.remeasured,
		Iteration: p.lastIter, Best: Float(p.bestF), BestQuery: p.bestID, QPS: nan(),
	}
	if n := len(p.recent); n >= 2 {
		if s := p.recent[n-1].Sub(p.recent[0]).Seconds(); s > 0 {
			d.progress.QPS = Float(float64(n-1) / s)
		}
	}
	return d, nil
}

func (p *poller) readMeta(ctx context.Context, tx *sql.Tx, d *delta) error {
	rows, err := tx.QueryContext(ctx, "SELECT key, value FROM meta WHERE key IN ('status', 'direction')")
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return err
		}
		switch k {
		case "status":
			d.status = v
		case "direction":
			d.direction = v
			p.minimize = v != string(journal.Maximize)
		}
	}
	return rows.Err()
}

type queryRow struct {
	id         int64
	iteration  int
	role       string
	status     string
	objective  sql.NullFloat64
	finishedAt sql.NullInt64
	hasY       bool
	marks      sql.NullString // JSON [{"part", "event", "t"}], t in unix ns
}

func (p *poller) selectQueries(ctx context.Context, tx *sql.Tx, where string, args ...any) ([]queryRow, error) {
	marks := "NULL"
	if p.marks {
		marks = "marks"
	}
	rows, err := tx.QueryContext(ctx, "SELECT id, iteration, role, status, objective, finished_at, y IS NOT NULL, "+marks+" FROM queries "+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []queryRow
	for rows.Next() {
		var r queryRow
		if err := rows.Scan(&r.id, &r.iteration, &r.role, &r.status, &r.objective, &r.finishedAt, &r.hasY, &r.marks); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// markTimes turns a query's journaled marks into the page's: each event's
// time in seconds after the query's start mark (the earliest mark when it
// has none), the last mark of an event when several parts made it (the
// pattern is shown when the last SLM has shown it). Nil without marks.
func markTimes(text sql.NullString) map[string]Float {
	if !text.Valid || text.String == "" {
		return nil
	}
	var ms []struct {
		Event string `json:"event"`
		T     int64  `json:"t"`
	}
	if json.Unmarshal([]byte(text.String), &ms) != nil || len(ms) == 0 {
		return nil
	}
	at := map[string]int64{}
	first := ms[0].T
	for _, m := range ms {
		first = min(first, m.T)
		if t, ok := at[m.Event]; !ok || m.T > t {
			at[m.Event] = m.T
		}
	}
	if t, ok := at["start"]; ok {
		first = t
	}
	out := make(map[string]Float, len(at))
	for e, t := range at {
		out[e] = Float(float64(t-first) / 1e9)
	}
	return out
}

func (p *poller) readQueries(ctx context.Context, tx *sql.Tx, d *delta) error {
	// Rows seen started before: the query in flight, or one a crash left
	// that a resume will measure again.
	if len(p.pending) > 0 {
		ids := make([]string, 0, len(p.pending))
		for id := range p.pending {
			ids = append(ids, fmt.Sprint(id))
		}
		rs, err := p.selectQueries(ctx, tx, "WHERE id IN ("+strings.Join(ids, ",")+") AND status != 'started' ORDER BY id")
		if err != nil {
			return err
		}
		for _, r := range rs {
			delete(p.pending, r.id)
			p.measure(r, d)
		}
	}
	for range pollBatches {
		rs, err := p.selectQueries(ctx, tx, "WHERE id > ? ORDER BY id LIMIT ?", p.maxID, pollRows)
		if err != nil {
			return err
		}
		for _, r := range rs {
			p.maxID = r.id
			p.begun++
			if r.status == string(journal.StatusStarted) {
				p.pending[r.id] = true
				continue
			}
			p.measure(r, d)
		}
		if len(rs) < pollRows {
			break
		}
	}
	return nil
}

// measure accounts a query that has its result.
func (p *poller) measure(r queryRow, d *delta) {
	p.measured++
	p.nOf[r.id] = p.measured
	pt := Point{N: p.measured, ID: r.id, Iteration: r.iteration, Role: r.role, F: nan(), Marks: markTimes(r.marks)}
	switch {
	case r.status == string(journal.StatusFailed):
		pt.Failed = true
		p.failed++
	case r.objective.Valid:
		f := r.objective.Float64
		pt.F = Float(f)
		if p.objective && (math.IsNaN(p.bestF) || (p.minimize && f < p.bestF) || (!p.minimize && f > p.bestF)) {
			p.bestF, p.bestID, p.bestN = f, r.id, p.measured
		}
	}
	if r.status == string(journal.StatusRemeasured) {
		p.remeasured++
	}
	pt.Best = Float(p.bestF)
	if r.hasY {
		p.lastID, p.lastN = r.id, p.measured
	}
	if r.finishedAt.Valid {
		if t := time.Unix(0, r.finishedAt.Int64); !t.Before(p.since) {
			p.recent = append(p.recent, t)
			if len(p.recent) > 200 {
				p.recent = append(p.recent[:0], p.recent[len(p.recent)-100:]...)
			}
		}
	}
	d.points = append(d.points, pt)
}

// readVectors draws the input to show (the best query's, or the last
// one's when queries have no objective) and the last output, when they
// changed.
func (p *poller) readVectors(ctx context.Context, tx *sql.Tx, d *delta) error {
	in, inN := p.bestID, p.bestN
	if !p.objective {
		in, inN = p.lastID, p.lastN
	}
	if in != 0 && in != p.inShown {
		var b []byte
		if err := tx.QueryRowContext(ctx, "SELECT x FROM queries WHERE id = ?", in).Scan(&b); err != nil {
			return err
		}
		x, err := journal.DecodeFloats(b)
		if err != nil {
			return fmt.Errorf("query %d: x: %w", in, err)
		}
		d.input = p.in.vector(x)
		d.input.ID, d.input.N = in, inN
		p.inShown = in
	}
	if p.lastID != 0 && p.lastID != p.outShown {
		var b []byte
		if err := tx.QueryRowContext(ctx, "SELECT y FROM queries WHERE id = ?", p.lastID).Scan(&b); err != nil {
			return err
		}
		y, err := journal.DecodeFloats(b)
		if err != nil {
			return fmt.Errorf("query %d: y: %w", p.lastID, err)
		}
		d.output = p.out.vector(y)
		d.output.ID, d.output.N = p.lastID, p.lastN
		p.outShown = p.lastID
	}
	return nil
}

func (p *poller) readIterations(ctx context.Context, tx *sql.Tx, d *delta) error {
	rows, err := tx.QueryContext(ctx, `SELECT iteration, queries, best, step_objective, train_loss, controller_s, box_s, time
		FROM iterations WHERE iteration > ? ORDER BY iteration`, p.lastIter)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			it               Iteration
			best, step, loss sql.NullFloat64
			ctrl, box        float64
			t                int64
		)
		if err := rows.Scan(&it.Iteration, &it.Queries, &best, &step, &loss, &ctrl, &box, &t); err != nil {
			return err
		}
		it.Best, it.Step, it.TrainLoss = orNaN(best), orNaN(step), orNaN(loss)
		it.Controller, it.Box, it.Time = Float(ctrl), Float(box), time.Unix(0, t)
		p.lastIter = it.Iteration
		d.iterations = append(d.iterations, it)
	}
	return rows.Err()
}

func orNaN(v sql.NullFloat64) Float {
	if v.Valid {
		return Float(v.Float64)
	}
	return nan()
}

func (p *poller) readEvents(ctx context.Context, tx *sql.Tx, d *delta) error {
	// A prediction written before its query's result was read.
	early := p.early
	p.early = nil
	for _, pr := range early {
		p.predict(pr, d)
	}
	rows, err := tx.QueryContext(ctx, "SELECT id, time, kind, detail, name, value, query_id FROM events WHERE id > ? ORDER BY id LIMIT ?", p.lastEvent, pollRows)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			e     Event
			t     int64
			name  sql.NullString
			value sql.NullFloat64
			qid   sql.NullInt64
		)
		if err := rows.Scan(&e.ID, &t, &e.Kind, &e.Detail, &name, &value, &qid); err != nil {
			return err
		}
		p.lastEvent = e.ID
		if e.Kind == journal.KindPrediction {
			// Not a safety event: the surrogate's prediction error of a query.
			p.predict(Prediction{ID: qid.Int64, Err: orNaN(value)}, d)
			continue
		}
		e.Time, e.Name, e.Value = time.Unix(0, t), name.String, orNaN(value)
		d.events = append(d.events, e)
	}
	return rows.Err()
}

// predict places a prediction error at its query's position.
func (p *poller) predict(pr Prediction, d *delta) {
	n, ok := p.nOf[pr.ID]
	if !ok {
		if p.pending[pr.ID] || pr.ID > p.maxID {
			p.early = append(p.early, pr) // its result comes with a later poll
		}
		return
	}
	pr.N = n
	d.predictions = append(d.predictions, pr)
}
