package journal

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	sqlite "modernc.org/sqlite" // also registers the "sqlite" database/sql driver
)

// FileName is the journal's file name inside a run directory.
const FileName = "journal.db"

// SchemaVersion is the layout this package writes. It also reads versions
// 1 (no checksums) and 2 (checksums on queries and checkpoints only): Open
// migrates such a journal, OpenReadOnly reads what it lacks unverified.
const SchemaVersion = 3

var (
	// ErrExists: Create was given a directory that already holds a journal.
	ErrExists = errors.New("run directory already holds a journal")
	// ErrSchema: the file is not a journal of a version this build reads.
	ErrSchema = errors.New("unsupported journal schema")
	// ErrReadOnly: a write on a journal opened with OpenReadOnly.
	ErrReadOnly = errors.New("journal is read-only")
	// ErrClosed: a call after Close.
	ErrClosed = errors.New("journal is closed")
	// ErrNotFound: no query with that id.
	ErrNotFound = errors.New("no such query")
	// ErrRolledBack: SQLite rolled back the open transaction on its own (disk
	// full, I/O error, corruption) and took writes that were not yet synced
	// with it. The error also wraps the failure that caused it. From then on
	// the journal refuses every write except Event and SetStatus.
	ErrRolledBack = errors.New("SQLite rolled back the open transaction")
)

// RunStatus is the state of a whole run.
type RunStatus string

const (
	RunRunning     RunStatus = "running"
	RunFinished    RunStatus = "finished"
	RunFailed      RunStatus = "failed"
	RunInterrupted RunStatus = "interrupted" // Ctrl-C, SIGTERM, a tripped interlock; resumable
)

func (s RunStatus) valid() bool {
	switch s {
	case RunRunning, RunFinished, RunFailed, RunInterrupted:
		return true
	}
	return false
}

// Direction says whether the objective is minimized or maximized; List and
// Summary use it to pick the best query.
type Direction string

const (
	Minimize Direction = "min"
	Maximize Direction = "max"
)

// Meta describes a run.
type Meta struct {
	Version   string    // insitu version string that wrote the journal
	Method    string    // optimizer, e.g. "gradpie"
	Kind      string    // black box kind, e.g. "cnon" or "rig"
	Seed      uint64    // the run's one seed
	Direction Direction // Minimize when empty
	Created   time.Time // now when zero
	Status    RunStatus // RunRunning when empty
	// Stop is why the run ended, as SetStatus recorded it: "" while it
	// runs and in journals older than schema version 3.
	Stop string
	// ConfigHash is the SHA-256 of the resolved config, in hex; Create
	// computes it (ConfigHash), and it is "" in older journals.
	ConfigHash string
	// Description is what the run measures (Describe reads it back). Create
	// stores it when it is set; SetDescription can store it later.
	Description *Description
}

// SyncPolicy chooses when Finish is committed.
type SyncPolicy int

const (
	// SyncPerIteration batches Finishes until Sync: one commit per iteration.
	SyncPerIteration SyncPolicy = iota
	// SyncEvery commits each Finish before it returns.
	SyncEvery
)

func (p SyncPolicy) String() string {
	switch p {
	case SyncPerIteration:
		return "per-iteration"
	case SyncEvery:
		return "every"
	}
	return "SyncPolicy(" + strconv.Itoa(int(p)) + ")"
}

// Option configures Create and Open.
type Option func(*options)

type options struct {
	sync        SyncPolicy
	keep        int
	busyTimeout time.Duration
	immutable   bool // Peek: read the file as a snapshot, making no -wal or -shm
}

func defaultOptions() options {
	return options{sync: SyncPerIteration, keep: 3, busyTimeout: 10 * time.Second}
}

// WithSync sets the durability policy of Finish (default SyncPerIteration).
func WithSync(p SyncPolicy) Option { return func(o *options) { o.sync = p } }

// WithKeepCheckpoints sets how many checkpoints SaveCheckpoint keeps (default
// 3, at least 1); older ones are deleted to bound the file size.
func WithKeepCheckpoints(n int) Option { return func(o *options) { o.keep = n } }

// WithBusyTimeout bounds how long a statement waits for another process that
// holds the database lock (default 10 s).
func WithBusyTimeout(d time.Duration) Option { return func(o *options) { o.busyTimeout = d } }

func (o options) validate() error {
	if o.sync != SyncPerIteration && o.sync != SyncEvery {
		return fmt.Errorf("unknown sync policy %v", o.sync)
	}
	if o.keep < 1 {
		return fmt.Errorf("keep checkpoints = %d, want at least 1", o.keep)
	}
	if o.busyTimeout < 0 {
		return fmt.Errorf("busy timeout %v is negative", o.busyTimeout)
	}
	return nil
}

// Journal is an open run journal. Its methods are safe for concurrent use.
type Journal struct {
	path     string
	opts     options
	readOnly bool
	version  int // schema version of the file; set before the journal is shared

	// rolledBack is set by SQLite's rollback hook: the transaction SQLite
	// had open is gone, whether or not inTx knows it yet.
	rolledBack atomic.Bool

	mu      sync.Mutex // serializes every statement on conn and guards the fields below
	db      *sql.DB
	conn    *sql.Conn // the one connection: transactions are managed by hand on it
	inTx    bool      // a write transaction is open
	pending int       // Finishes in the open transaction
	lost    error     // set once writes that were not synced have been rolled back
	closed  bool
}

// Path is the journal file's path.
func (j *Journal) Path() string { return j.path }

// Dir is the run directory.
func (j *Journal) Dir() string { return filepath.Dir(j.path) }

// Pending is the number of Finishes not yet committed.
func (j *Journal) Pending() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.pending
}

func (j *Journal) errorf(op string, err error) error {
	return fmt.Errorf("journal %s: %s: %w", j.path, op, markCorrupt(err))
}

// Create makes dir (if needed) and a new journal in it holding meta and the
// resolved config. It refuses a directory that already holds a journal: a
// crashed run is resumed with Open, never overwritten. A directory it
// creates is the owner's only (0o700; missing parents get 0o755, as with
// mkdir -p), and so is the journal (0o600).
func Create(dir string, meta Meta, configYAML []byte, opts ...Option) (*Journal, error) {
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	path, err := filepath.Abs(filepath.Join(dir, FileName))
	if err != nil {
		return nil, fmt.Errorf("journal %s: create: %w", filepath.Join(dir, FileName), err)
	}
	fail := func(err error) (*Journal, error) { return nil, fmt.Errorf("journal %s: create: %w", path, err) }
	if err := o.validate(); err != nil {
		return fail(err)
	}
	if meta.Direction == "" {
		meta.Direction = Minimize
	}
	if meta.Direction != Minimize && meta.Direction != Maximize {
		return fail(fmt.Errorf("direction %q, want %q or %q", meta.Direction, Minimize, Maximize))
	}
	if meta.Status == "" {
		meta.Status = RunRunning
	}
	if !meta.Status.valid() {
		return fail(fmt.Errorf("unknown run status %q", meta.Status))
	}
	if meta.Created.IsZero() {
		meta.Created = time.Now()
	}
	if err := makeRunDir(filepath.Dir(path)); err != nil {
		return fail(err)
	}
	// A WAL or shared-memory file left without its database would be
	// replayed into the new one: refuse those as well as the journal.
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if _, err := os.Lstat(p); err == nil {
			return fail(fmt.Errorf("%w: %s exists; resume the run with Open or choose a new directory", ErrExists, p))
		}
	}
	// The journal is built under a temporary name and renamed into place
	// once its schema is committed, so a crash during Create leaves either
	// no journal or a whole one, never an empty file that blocks both a new
	// run and a resume. A leftover temporary file is from such a crash.
	tmp := path + ".new"
	for _, p := range []string{tmp, tmp + "-wal", tmp + "-shm", tmp + "-journal"} {
		os.Remove(p)
	}
	// Measurements can be private: the journal is the owner's only. SQLite
	// gives the -wal and -shm files the mode of the database file.
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		return fail(err)
	}
	removeTmp := func() {
		for _, p := range []string{tmp, tmp + "-wal", tmp + "-shm", tmp + "-journal"} {
			os.Remove(p)
		}
	}
	j, err := open(tmp, o, false)
	if err != nil {
		removeTmp()
		return fail(err)
	}
	j.version = SchemaVersion
	if err := j.initSchema(meta, configYAML); err != nil { // already names the journal and "create"
		j.closeConn()
		removeTmp()
		return nil, err
	}
	// Closing checkpoints the WAL into the file, which can then be renamed.
	if err := j.closeConn(); err != nil {
		removeTmp()
		return fail(err)
	}
	// Link fails if path appeared meanwhile: the refusal stays atomic even
	// against a concurrent Create.
	if err := os.Link(tmp, path); err != nil {
		removeTmp()
		if errors.Is(err, fs.ErrExist) {
			return fail(fmt.Errorf("%w: %s exists; resume the run with Open or choose a new directory", ErrExists, path))
		}
		return fail(err)
	}
	removeTmp()
	// The directory entry of a new file is durable only once the directory
	// itself is synced.
	if err := syncDir(filepath.Dir(path)); err != nil {
		return fail(err)
	}
	if j, err = open(path, o, false); err != nil {
		return fail(err)
	}
	j.version = SchemaVersion
	return j, nil
}

// Open opens an existing journal for writing: to resume a run. It verifies
// the whole journal first (see Verify) and refuses a damaged one with
// ErrCorrupt; a journal of schema version 1 is migrated to version 2, its
// rows given their checksums.
func Open(dir string, opts ...Option) (*Journal, error) {
	return openDir(dir, false, opts)
}

// OpenReadOnly opens an existing journal for reading, for show and export;
// it may be used while another process writes the journal. It does not
// verify the whole file (call Verify for that), but every query and
// checkpoint read is checked against its checksum.
func OpenReadOnly(dir string, opts ...Option) (*Journal, error) {
	return openDir(dir, true, opts)
}

// Peek opens an existing journal read-only for a short look (is the run
// finished? is it a training?) without leaving a trace in its directory:
// when no process has it open for writing (there is no -wal file), the
// file is read as an immutable snapshot, which makes no -wal or -shm file;
// otherwise it is opened as OpenReadOnly opens it. Close it soon: a
// snapshot does not see a writer that starts after it.
func Peek(dir string, opts ...Option) (*Journal, error) {
	if _, err := os.Lstat(filepath.Join(dir, FileName) + "-wal"); err == nil {
		return OpenReadOnly(dir, opts...)
	}
	return openDir(dir, true, append(opts, func(o *options) { o.immutable = true }))
}

func openDir(dir string, readOnly bool, opts []Option) (*Journal, error) {
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	path, err := filepath.Abs(filepath.Join(dir, FileName))
	if err != nil {
		return nil, fmt.Errorf("journal %s: open: %w", filepath.Join(dir, FileName), err)
	}
	fail := func(err error) (*Journal, error) {
		return nil, fmt.Errorf("journal %s: open: %w", path, markCorrupt(err))
	}
	if err := o.validate(); err != nil {
		return fail(err)
	}
	// Without this check SQLite would create an empty database.
	if _, err := os.Stat(path); err != nil {
		return fail(err)
	}
	j, err := open(path, o, readOnly)
	if err != nil {
		return fail(err)
	}
	version, err := j.checkSchema()
	if err != nil {
		j.closeConn()
		return fail(err)
	}
	j.version = version
	if !readOnly {
		// A resume must not touch the device on a damaged journal: check
		// the whole file first, and give an old journal its checksums.
		ctx := context.Background()
		if version < SchemaVersion {
			// What the old version has checksums for is checked before the
			// migration vouches for the rest.
			if err := j.verifyLocked(ctx, j.conn); err != nil {
				j.closeConn()
				return fail(err)
			}
			if err := j.migrate(ctx); err != nil {
				j.closeConn()
				return fail(err)
			}
		}
		if err := j.verifyLocked(ctx, j.conn); err != nil {
			j.closeConn()
			return fail(err)
		}
	}
	return j, nil
}

func open(path string, o options, readOnly bool) (*Journal, error) {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout("+strconv.FormatInt(o.busyTimeout.Milliseconds(), 10)+")")
	if readOnly {
		q.Set("mode", "ro")
		if o.immutable {
			q.Set("immutable", "1")
		}
	} else {
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous(FULL)") // a WAL commit is fsynced before it returns
		q.Add("_pragma", "foreign_keys(1)")
	}
	dsn := (&url.URL{Scheme: "file", Path: path, RawQuery: q.Encode()}).String()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	conn, err := db.Conn(context.Background())
	if err != nil {
		db.Close()
		return nil, err
	}
	j := &Journal{path: path, opts: o, readOnly: readOnly, db: db, conn: conn}
	// SQLite answers some failures (SQLITE_FULL, SQLITE_IOERR, SQLITE_NOMEM,
	// SQLITE_CORRUPT, depending on the statement) by rolling back the whole
	// transaction. The hook is how the journal learns of it.
	err = conn.Raw(func(dc any) error {
		h, ok := dc.(interface{ RegisterRollbackHook(sqlite.RollbackHookFn) })
		if !ok {
			return fmt.Errorf("the sqlite driver (%T) has no rollback hook", dc)
		}
		h.RegisterRollbackHook(func() { j.rolledBack.Store(true) })
		return nil
	})
	if err != nil {
		j.closeConn()
		return nil, err
	}
	if !readOnly {
		var mode string
		if err := conn.QueryRowContext(context.Background(), "PRAGMA journal_mode").Scan(&mode); err != nil {
			j.closeConn()
			return nil, err
		}
		if mode != "wal" {
			j.closeConn()
			return nil, fmt.Errorf("journal mode is %q, want wal", mode)
		}
	}
	return j, nil
}

// makeRunDir creates the run directory dir with mode 0o700 unless it
// exists; its missing parents are created with 0o755.
func makeRunDir(dir string) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	return os.MkdirAll(dir, 0o700)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

func (j *Journal) closeConn() error {
	err := j.conn.Close()
	if derr := j.db.Close(); err == nil {
		err = derr
	}
	return err
}

// Close commits pending Finishes and closes the journal. Calling it again
// does nothing. Close never changes the run's status: the caller sets it
// (SetStatus) before closing, on every exit path. Close does not repeat an
// ErrRolledBack the journal has already reported.
func (j *Journal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return nil
	}
	err := j.commitLocked(context.Background())
	j.closed = true
	if cerr := j.closeConn(); err == nil {
		err = cerr
	}
	if err != nil {
		return j.errorf("close", err)
	}
	return nil
}

// usable is called with mu held.
func (j *Journal) usable(write bool) error {
	if j.closed {
		return ErrClosed
	}
	if write && j.readOnly {
		return ErrReadOnly
	}
	return nil
}

// settle is called with mu held after a statement failed with cause. If
// SQLite rolled back the open transaction meanwhile, the journal forgets
// it, so that the next write begins a new one instead of committing one
// that no longer exists; writes it held that were not synced are lost, and
// the returned error says so. Otherwise it returns cause.
func (j *Journal) settle(cause error) error {
	if !j.rolledBack.Swap(false) || !j.inTx {
		return cause
	}
	j.inTx = false
	n := j.pending
	j.pending = 0
	if n == 0 {
		return cause
	}
	err := fmt.Errorf("%w; %w: %d writes not yet synced are lost (their queries read back as started)", cause, ErrRolledBack, n)
	if j.lost == nil {
		j.lost = err
	}
	return err
}

// exec runs one statement of the write path; see settle.
func (j *Journal) exec(ctx context.Context, query string) error {
	if _, err := j.conn.ExecContext(ctx, query); err != nil {
		return j.settle(err)
	}
	return nil
}

// read runs fn with mu held. Inside an open transaction fn sees the pending
// Finishes, which is what the loop expects of its own journal.
func (j *Journal) read(ctx context.Context, op string, fn func(ctx context.Context, c *sql.Conn) error) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.usable(false); err != nil {
		return j.errorf(op, err)
	}
	if err := fn(ctx, j.conn); err != nil {
		// A read that fails inside the open transaction (an I/O error, a
		// corrupted page) can take the transaction with it.
		return j.errorf(op, j.settle(err))
	}
	return nil
}

// beginLocked opens the write transaction unless one is open. IMMEDIATE
// takes the write lock now, so a reader in another process cannot make a
// later statement fail to upgrade its lock.
func (j *Journal) beginLocked(ctx context.Context) error { // ctx must not be cancellable, see write
	if j.inTx {
		return nil
	}
	j.rolledBack.Store(false)
	if _, err := j.conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return err
	}
	j.inTx = true
	return nil
}

// commitLocked commits the open transaction, if any. It ignores ctx's
// cancellation: what is in the transaction has been paid for.
func (j *Journal) commitLocked(ctx context.Context) error {
	if !j.inTx {
		return nil
	}
	if err := j.exec(context.WithoutCancel(ctx), "COMMIT"); err != nil {
		return err
	}
	j.inTx, j.pending = false, 0
	return nil
}

// writeMode says how write treats its statement.
type writeMode int

const (
	// commitNow commits at once, with any pending Finishes.
	commitNow writeMode = iota
	// batched leaves the write pending until the next commit (a Finish
	// under SyncPerIteration).
	batched
	// evenIfLost commits at once, and is tried even after ErrRolledBack:
	// the writes that record how a run ends (SetStatus, Event) must not be
	// refused because of the failure that ends it.
	evenIfLost
)

// write runs fn inside the write transaction, under a savepoint so that a
// failing fn leaves nothing half-written, and commits at once unless mode
// is batched. A failing fn still commits the pending Finishes, unless SQLite
// rolled the transaction back: then the error is fn's, together with
// ErrRolledBack if pending writes were lost, and later writes are refused
// (see evenIfLost).
//
// fn never sees ctx's cancellation: SQLite rolls back the whole transaction
// when a write inside it is interrupted, and that would take the pending
// Finishes with it. Writes are short and local; callers that must not start
// once cancelled (Begin) check ctx before calling write.
func (j *Journal) write(ctx context.Context, op string, mode writeMode, fn func(ctx context.Context, c *sql.Conn) error) error {
	ctx = context.WithoutCancel(ctx)
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.usable(true); err != nil {
		return j.errorf(op, err)
	}
	if j.lost != nil && mode != evenIfLost {
		return j.errorf(op, j.lost)
	}
	if err := j.writeLocked(ctx, mode == batched, fn); err != nil {
		return j.errorf(op, err)
	}
	return nil
}

func (j *Journal) writeLocked(ctx context.Context, batch bool, fn func(ctx context.Context, c *sql.Conn) error) error {
	if err := j.beginLocked(ctx); err != nil {
		return err
	}
	if err := j.exec(ctx, "SAVEPOINT op"); err != nil {
		return err
	}
	if ferr := fn(ctx, j.conn); ferr != nil {
		if err := j.settle(ferr); !j.inTx {
			return err // nothing left to roll back to, or to commit
		}
		if err := j.exec(ctx, "ROLLBACK TO op"); err != nil {
			return errors.Join(ferr, err)
		}
		if err := j.exec(ctx, "RELEASE op"); err != nil {
			return errors.Join(ferr, err)
		}
		if err := j.commitLocked(ctx); err != nil {
			return errors.Join(ferr, err)
		}
		return ferr
	}
	if err := j.exec(ctx, "RELEASE op"); err != nil {
		return err
	}
	if batch {
		j.pending++
		return nil
	}
	return j.commitLocked(ctx)
}

// Sync commits the pending Finishes. The loop calls it at the end of each
// iteration, before it acts on the results. After SQLite has rolled back
// writes that were pending, Sync reports that (ErrRolledBack) every time.
func (j *Journal) Sync(ctx context.Context) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.usable(false); err != nil {
		return j.errorf("sync", err)
	}
	if j.lost != nil {
		return j.errorf("sync", j.lost)
	}
	if err := j.commitLocked(ctx); err != nil {
		return j.errorf("sync", err)
	}
	return nil
}
