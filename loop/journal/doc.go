// Package journal records a run so that nothing paid for is ever lost.
//
// A run directory holds one SQLite database, journal.db (modernc.org/sqlite,
// no cgo), with the run's resolved config and metadata, every query made to
// the black box, safety events and checkpoints. Vectors are stored as
// little-endian float64 BLOBs, so Python reads them with
// numpy.frombuffer(b, dtype='<f8'); package loop/export writes the same data,
// named, for tools that do not speak SQLite (CSV, NumPy, NetCDF, Bluesky).
//
// # What the loop may rely on
//
//   - Begin writes the intent to query (status started) and commits it before
//     it returns, so the device is touched only after the journal knows. A
//     keyed intent is refused if the key is already journaled: a resumed
//     loop cannot repeat a query by accident.
//   - Finish records a result. Under SyncEvery it is committed before Finish
//     returns. Under SyncPerIteration (the default) Finishes are batched in
//     one transaction that Sync commits; the loop calls Sync at the end of
//     each iteration, before it acts on the results. Every other write
//     (Begin, Event, SaveCheckpoint, SetStatus) commits at once and takes
//     any pending Finishes with it: committing early is never unsafe.
//     Batching pays off when an iteration Begins its points, measures them,
//     then Finishes them (BeginBatch makes the Begins one commit too).
//   - A commit is on disk when it returns (WAL, synchronous=FULL). A crash,
//     SIGKILL included, loses at most the Finishes not yet synced; those
//     queries read back as started. It never loses a committed row and never
//     corrupts the file.
//   - Writes that record what has already happened (Finish, Remeasure,
//     Sync, Event, SetStatus, SaveCheckpoint) complete even when their
//     context is cancelled: the measurement is paid for, and a Ctrl-C between
//     measuring and journaling must not throw it away; the shutdown path
//     itself logs events and sets the status to interrupted. Begin refuses
//     a cancelled context (a cancelled loop starts no new query) but is never
//     interrupted half-way, because SQLite answers an interrupted write by
//     rolling back the whole transaction, pending Finishes included. Reads
//     respect cancellation. Close commits too.
//   - On resume the loop asks Lookup for each keyed query it is about to make.
//     Done (or remeasured): use the recorded y and objective, do not query.
//     Started: the device may or may not have been touched and the result is
//     lost, so the loop measures again and records it with Remeasure, which
//     marks the row remeasured and keeps its original started_at. Failed: the
//     row keeps the failure; a retry needs a new key (the loop tries a
//     device fault again under the next attempt's key). Rejected (a failed
//     row whose Outcome said the guard refused it before any device was
//     touched): the refusal is the result, and is not retried.
//   - FinishOutcome also records the query's marks (Mark: the instants its
//     devices reported, and the loop's start and end), which Query.Marks
//     returns.
//   - Dataset returns the (x, y) of every done or remeasured query in id
//     order, the training set of the surrogate.
//   - SaveCheckpoint stores named opaque blobs in one transaction, so a
//     checkpoint is whole or absent, and never refers to a result that is
//     not committed. The last few are kept (WithKeepCheckpoints).
//   - If SQLite rolls back the open transaction on its own (a full disk, an
//     I/O error, a damaged file), the journal knows: the error is the first
//     cause, the next write begins a new transaction, and if unsynced
//     Finishes were lost with it the error also matches ErrRolledBack and
//     every later write but Event and SetStatus is refused with it (Sync
//     included), as after a crash: their queries read back as started.
//   - The run's status is the caller's to set: SetStatus(RunFailed or
//     RunInterrupted) on every exit path, which is tried even after
//     ErrRolledBack. Close never changes the status.
//
// A Journal is safe for concurrent use; its methods are serialized on one
// connection. Another process may read a running journal with OpenReadOnly
// (WAL readers do not block the writer) and sees committed data only; Peek
// takes a short look at a journal no process writes without leaving a -wal
// or -shm file behind.
//
// # Integrity
//
// Every row carries a CRC-32C checksum: queries two, intent_sum over what
// Begin writes (iteration, slot, role, key, x, started_at) and result_sum
// over what Finish writes (status, remeasured, y, objective, error,
// finished_at, and the rejected flag and marks when set); every meta row
// one over its key and value (the config among them), every event, every
// iteration record and every checkpoint part one over its columns. Each
// read checks the rows it returns. Verify checks the whole file: SQLite's
// integrity check of its structure, then every checksum, and that the meta
// rows a journal always has are there. Open runs Verify before it returns,
// so a resume refuses a damaged journal (an error matching ErrCorrupt,
// naming the row) before any device is opened; on a journal of 10 000
// queries of 3600 inputs (290 MB) it takes about a second (BenchmarkVerify).
//
// Open migrates an older journal to version 3 in one transaction, after
// SQLite's integrity check and a check of the checksums its version has:
// version 1 has none, version 2 has them on queries and checkpoints only.
// The checksums the migration computes vouch for the data from then on
// only. OpenReadOnly and Peek leave an old journal as it is and read what
// it has no checksums for unverified. In version 1 a failed Remeasure
// cannot be told from a failed query, so QueryCounts counts only its
// remeasured rows.
//
// # Self-description
//
// A run stores its Description (Meta.Description at Create, or
// SetDescription): every input's and output's name, role, unit, bounds and
// shape, the devices' identities, the config's hash (ConfigHash) and the
// build of insitu that ran it. Describe reads it back; exports use it
// rather than describing the config again with whichever binary reads the
// journal. A journal older than version 3 has none (ErrNoDescription).
//
// # Run directories
//
// Create makes a run directory 0700 and the journal 0600 (SQLite gives its
// -wal and -shm files the same mode): measurements can be private. LockDir
// takes a run directory for one process (flock of DIR/lock): a run, resume
// or train locks it before it opens any device, and a second one fails at
// once with a *LockedError naming the holder's pid.
//
// # Schema (version 3)
//
//	meta(key TEXT PRIMARY KEY, value, sum)  schema_version, insitu_version,
//	                                    method, kind, seed, direction,
//	                                    created (unix ns), status, stop,
//	                                    config (the resolved YAML),
//	                                    config_sha256, description (JSON)
//	queries(id INTEGER PRIMARY KEY AUTOINCREMENT, iteration, slot, role,
//	        status, key UNIQUE, x BLOB, y BLOB, objective REAL, error,
//	        started_at, finished_at,      times in unix nanoseconds
//	        remeasured, intent_sum, result_sum, rejected, marks)
//	events(id, time, kind, detail, name, value, query_id, sum)
//	iterations(iteration, queries, best, step_objective, train_loss,
//	           controller_s, box_s, projected, time, sum)
//	checkpoints(id, iteration, created_at)
//	checkpoint_parts(checkpoint_id, name, data BLOB, sum)
//
// remeasured is 1 once Remeasure has recorded a result, failed or not. The
// objective column is an SQL REAL for queries like MIN(objective): a NaN
// objective is stored as NULL (unknown), and -0 reads back as +0 (SQLite
// stores an integral REAL as an integer). The x and y BLOBs keep every bit.
package journal
