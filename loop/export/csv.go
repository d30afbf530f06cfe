package export

import (
	"bytes"
	"encoding/binary"
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/insitu-lab/insitu/loop/journal"
)

// Column is one column of the CSV export: its header, unit and meaning.
type Column struct {
	Name, Unit, Role, Description string
}

// Columns are the CSV export's columns in order: the query's metadata,
// the objective (not for a training), in:NAME for every input and
// out:NAME for every output, so an SMU's set voltage and measured voltage
// are two columns, and the error of a failed query.
func Columns(r *Run) []Column {
	cols := []Column{
		{"query_id", "", "", "the query's id in the journal"},
		{"iteration", "", "", "iteration (a training's epoch)"},
		{"slot", "", "", "which selected point of the iteration (-1: none)"},
		{"role", "", "", "init, step, local, baseline or eval"},
		{"status", "", "", "done, failed, started (no result) or remeasured"},
		{"started_at", "", "", "intent journaled, before the device was touched (RFC 3339, UTC)"},
		{"finished_at", "", "", "result journaled (RFC 3339, UTC; empty: none)"},
	}
	if !r.Training {
		cols = append(cols, Column{"objective", r.Desc.Objective.Unit, "objective", fmt.Sprintf("%s, %s", r.Desc.Objective.Kind, r.Problem.Direction)})
	}
	for _, v := range r.Desc.Inputs {
		cols = append(cols, Column{"in:" + v.Name, v.Unit, v.Role, "input " + v.Name + bounds(v)})
	}
	for _, v := range r.Desc.Outputs {
		cols = append(cols, Column{"out:" + v.Name, v.Unit, v.Role, "measured output " + v.Name})
	}
	return append(cols, Column{"error", "", "", "the failure of a failed query"})
}

func bounds(v Variable) string {
	if v.Lower == nil || v.Upper == nil {
		return ""
	}
	return fmt.Sprintf(" in [%s, %s]", formatFloat(*v.Lower), formatFloat(*v.Upper))
}

// formatFloat is the shortest text that parses back to v; "" for NaN.
func formatFloat(v float64) string {
	if math.IsNaN(v) {
		return ""
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// CSV writes one row per journaled query, in id order, under the header of
// Columns; with unitsRow, a second row holds each column's unit (empty
// where it has none). Floats are the shortest text that parses back to the
// same float64; an unknown objective or a missing output is empty.
func CSV(w io.Writer, r *Run, unitsRow bool) error {
	cols := Columns(r)
	d, m := len(r.Desc.Inputs), len(r.Desc.Outputs)
	cw := csv.NewWriter(w)
	row := make([]string, len(cols))
	for i, c := range cols {
		row[i] = c.Name
	}
	cw.Write(row)
	if unitsRow {
		for i, c := range cols {
			row[i] = c.Unit
		}
		cw.Write(row)
	}
	ts := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339Nano)
	}
	for _, q := range r.Queries {
		if len(q.X) != d || q.Y != nil && len(q.Y) != m {
			return fmt.Errorf("%s: query %d has %d inputs and %d outputs, the run describes %d and %d", r.Dir, q.ID, len(q.X), len(q.Y), d, m)
		}
		clear(row)
		row[0], row[1], row[2] = strconv.FormatInt(q.ID, 10), strconv.Itoa(q.Iteration), strconv.Itoa(q.Slot)
		row[3], row[4], row[5], row[6] = string(q.Role), string(q.Status), ts(q.StartedAt), ts(q.FinishedAt)
		k := 7
		if !r.Training {
			row[k] = formatFloat(q.Objective)
			k++
		}
		for i, v := range q.X {
			row[k+i] = formatFloat(v)
		}
		for i, v := range q.Y {
			row[k+d+i] = formatFloat(v)
		}
		row[len(row)-1] = q.Err
		cw.Write(row)
	}
	cw.Flush()
	return cw.Error()
}

// Units writes the CSV export's data dictionary: one row per column of
// CSV with its unit, role and meaning.
func Units(w io.Writer, r *Run) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"column", "unit", "role", "description"})
	for _, c := range Columns(r) {
		cw.Write([]string{c.Name, c.Unit, c.Role, c.Description})
	}
	cw.Flush()
	return cw.Error()
}

// NPY writes the done and remeasured queries to dir as NumPy arrays:
// x.npy (n×d), y.npy (n×m), objective.npy (n; NaN where unknown; not for a
// training) and query_id.npy (n, int64), with the names and units beside
// them: x_names.npy, x_units.npy, y_names.npy, y_units.npy (string
// arrays, numpy.load reads them without pickle). Each file is written to a
// temporary name and renamed.
func NPY(dir string, r *Run) error {
	var qs []journal.Query
	for _, q := range r.Queries {
		if q.Status == journal.StatusDone || q.Status == journal.StatusRemeasured {
			qs = append(qs, q)
		}
	}
	d, m := len(r.Desc.Inputs), len(r.Desc.Outputs)
	n := len(qs)
	x := make([]float64, 0, n*d)
	y := make([]float64, 0, n*m)
	obj := make([]float64, n)
	ids := make([]int64, n)
	for i, q := range qs {
		if len(q.X) != d || len(q.Y) != m {
			return fmt.Errorf("%s: query %d has %d inputs and %d outputs, the run describes %d and %d", r.Dir, q.ID, len(q.X), len(q.Y), d, m)
		}
		x = append(x, q.X...)
		y = append(y, q.Y...)
		obj[i], ids[i] = q.Objective, q.ID
	}
	strs := func(vs []Variable, unit bool) []string {
		out := make([]string, len(vs))
		for i, v := range vs {
			out[i] = v.Name
			if unit {
				out[i] = v.Unit
			}
		}
		return out
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	type file struct {
		name string
		data func(io.Writer) error
	}
	files := []file{
		{"x.npy", func(w io.Writer) error { return journal.WriteNPY(w, []int{n, d}, x) }},
		{"y.npy", func(w io.Writer) error { return journal.WriteNPY(w, []int{n, m}, y) }},
		{"query_id.npy", func(w io.Writer) error { return writeNPYInt64(w, ids) }},
		{"x_names.npy", func(w io.Writer) error { return writeNPYStrings(w, strs(r.Desc.Inputs, false)) }},
		{"x_units.npy", func(w io.Writer) error { return writeNPYStrings(w, strs(r.Desc.Inputs, true)) }},
		{"y_names.npy", func(w io.Writer) error { return writeNPYStrings(w, strs(r.Desc.Outputs, false)) }},
		{"y_units.npy", func(w io.Writer) error { return writeNPYStrings(w, strs(r.Desc.Outputs, true)) }},
	}
	if !r.Training {
		files = append(files, file{"objective.npy", func(w io.Writer) error { return journal.WriteNPY(w, []int{n}, obj) }})
	}
	for _, f := range files {
		var buf bytes.Buffer
		if err := f.data(&buf); err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
		if err := WriteFileAtomic(filepath.Join(dir, f.name), buf.Bytes()); err != nil {
			return err
		}
	}
	return nil
}

// npyHeader is a version 1.0 .npy header for a 1-D array of n values of
// descr, padded so that the data starts on a 64-byte boundary.
func npyHeader(descr string, n int) []byte {
	dict := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': (%d,), }", descr, n)
	const prefix = 6 + 2 + 2
	total := (prefix + len(dict) + 1 + 63) / 64 * 64
	buf := append([]byte("\x93NUMPY"), 1, 0)
	buf = binary.LittleEndian.AppendUint16(buf, uint16(total-prefix))
	buf = append(buf, dict...)
	for len(buf) < total-1 {
		buf = append(buf, ' ')
	}
	return append(buf, '\n')
}

func writeNPYInt64(w io.Writer, v []int64) error {
	buf := npyHeader("<i8", len(v))
	for _, x := range v {
		buf = binary.LittleEndian.AppendUint64(buf, uint64(x))
	}
	_, err := w.Write(buf)
	return err
}

// writeNPYStrings writes a 1-D array of Unicode strings ('<U' of the
// longest string's length in characters, UTF-32LE, NUL-padded).
func writeNPYStrings(w io.Writer, v []string) error {
	width := 1
	for i, s := range v {
		v[i] = strings.ToValidUTF8(s, "\uFFFD")
		width = max(width, utf8.RuneCountInString(v[i]))
	}
	buf := npyHeader(fmt.Sprintf("<U%d", width), len(v))
	for _, s := range v {
		k := 0
		for _, r := range s {
			buf = binary.LittleEndian.AppendUint32(buf, uint32(r))
			k++
		}
		for ; k < width; k++ {
			buf = binary.LittleEndian.AppendUint32(buf, 0)
		}
	}
	_, err := w.Write(buf)
	return err
}

// WriteFileAtomic writes data to a temporary file beside path and renames
// it into place: a reader, or a failed export, never leaves half a file.
func WriteFileAtomic(path string, data []byte) error {
	return WriteAtomic(path, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// WriteAtomic calls write on a temporary file beside path and renames it
// to path when write and the file's sync and close succeed; on any error
// the temporary file is removed and path is left as it was.
func WriteAtomic(path string, write func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	err = write(tmp)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}
