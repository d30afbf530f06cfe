// Package journal records a run so that nothing paid for is ever lost.
//
// A run directory holds one SQLite database, journal.db (modernc.org/sqlite,
// no cgo), with the run's resolved config and metadata, every query made to
// the black box, safety events and checkpoints. Vectors are stored as
// little-endian float64 BLOBs, so Python reads them with
// numpy.frombuffer(b, dtype='<f8'); ExportCSV and ExportNPY write the same
// data for tools that do not speak SQLite.
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
//     failure is the result; a retry needs a new key.
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
// (WAL readers do not block the writer) and sees committed data only.
//
// # Integrity
//
// Every row of queries carries two CRC-32C checksums: intent_sum over what
// Begin writes (iteration, slot, role, key, x, started_at) and result_sum
// over what Finish writes (status, remeasured, y, objective, error,
// finished_at); every checkpoint part one over its name and data. Each read
// of a query or checkpoint checks them. Verify checks the whole file:
// SQLite's integrity check of its structure, then every checksum. Open runs
// Verify before it returns, so a resume refuses a damaged journal (an error
// matching ErrCorrupt, naming the row) before any device is opened; on a
// journal of 10 000 queries of 3600 inputs (290 MB) it takes about a second
// (BenchmarkVerify).
//
// A journal of schema version 1 has no checksums. Open migrates it to
// version 2 in one transaction, after SQLite's integrity check: the columns
// are added and every row's checksums computed, which vouch for the data
// from then on only. OpenReadOnly leaves it as it is and reads its rows
// unverified. In version 1 a failed Remeasure cannot be told from a failed
// query, so QueryCounts counts only its remeasured rows.
//
// # Run directories
//
// Create makes a run directory 0700 and the journal 0600 (SQLite gives its
// -wal and -shm files the same mode): measurements can be private. LockDir
// takes a run directory for one process (flock of DIR/lock): a run, resume
// or train locks it before it opens any device, and a second one fails at
// once with a *LockedError naming the holder's pid.
//
// # Schema (version 2)
//
//	meta(key TEXT PRIMARY KEY, value)   schema_version, insitu_version, method,
//	                                    kind, seed, direction, created (unix ns),
//	                                    status, config (the resolved YAML)
//	queries(id INTEGER PRIMARY KEY AUTOINCREMENT, iteration, slot, role,
//	        status, key UNIQUE, x BLOB, y BLOB, objective REAL, error,
//	        started_at, finished_at,      times in unix nanoseconds
//	        remeasured, intent_sum, result_sum)
//	events(id, time, kind, detail, name, value, query_id)
//	checkpoints(id, iteration, created_at)
//	checkpoint_parts(checkpoint_id, name, data BLOB, sum)
//
// remeasured is 1 once Remeasure has recorded a result, failed or not. The
// objective column is an SQL REAL for queries like MIN(objective): a NaN
// objective is stored as NULL (unknown), and -0 reads back as +0 (SQLite
// stores an integral REAL as an integer). The x and y BLOBs keep every bit.
package journal
