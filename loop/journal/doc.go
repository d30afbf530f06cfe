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
//
// A Journal is safe for concurrent use; its methods are serialized on one
// connection. Another process may read a running journal with OpenReadOnly
// (WAL readers do not block the writer) and sees committed data only.
//
// # Schema (version 1)
//
//	meta(key TEXT PRIMARY KEY, value)   schema_version, insitu_version, method,
//	                                    kind, seed, direction, created (unix ns),
//	                                    status, config (the resolved YAML)
//	queries(id INTEGER PRIMARY KEY AUTOINCREMENT, iteration, slot, role,
//	        status, key UNIQUE, x BLOB, y BLOB, objective REAL, error,
//	        started_at, finished_at)      times in unix nanoseconds
//	events(id, time, kind, detail, name, value, query_id)
//	checkpoints(id, iteration, created_at)
//	checkpoint_parts(checkpoint_id, name, data BLOB)
//
// The objective column is an SQL REAL for queries like MIN(objective): a NaN
// objective is stored as NULL (unknown), and -0 reads back as +0 (SQLite
// stores an integral REAL as an integer). The x and y BLOBs keep every bit.
package journal
