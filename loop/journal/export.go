package journal

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
)

// ExportCSV writes one row per query in id order: id, iteration, slot, role,
// status, objective, then the inputs and the outputs. Their columns are
// named by in and out (the black box's coordinate and output names, e.g.
// smu/voltage) when they have one name per column; when both are nil, by
// the names the run stored at its start (Describe); and x0..x{d-1},
// y0..y{m-1} otherwise. Floats are written in the shortest form that
// parses back to the same float64; an unknown objective or a missing
// output is an empty cell.
func (j *Journal) ExportCSV(ctx context.Context, w io.Writer, in, out []string) error {
	if in == nil && out == nil {
		d, err := j.Describe(ctx)
		if err != nil && !errors.Is(err, ErrNoDescription) {
			return err
		}
		in, out = d.InputNames(), d.OutputNames()
	}
	qs, err := j.Queries(ctx)
	if err != nil {
		return err
	}
	d, m := 0, 0
	for _, q := range qs {
		d, m = max(d, len(q.X)), max(m, len(q.Y))
	}
	header := []string{"id", "iteration", "slot", "role", "status", "objective"}
	header = append(header, columnNames("x", d, in)...)
	header = append(header, columnNames("y", m, out)...)
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	cw := csv.NewWriter(w)
	cw.Write(header)
	row := make([]string, len(header))
	for _, q := range qs {
		clear(row)
		row[0], row[1], row[2] = strconv.FormatInt(q.ID, 10), strconv.Itoa(q.Iteration), strconv.Itoa(q.Slot)
		row[3], row[4] = string(q.Role), string(q.Status)
		if !math.IsNaN(q.Objective) {
			row[5] = f(q.Objective)
		}
		for i, v := range q.X {
			row[6+i] = f(v)
		}
		for i, v := range q.Y {
			row[6+d+i] = f(v)
		}
		cw.Write(row)
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return j.errorf("export csv", err)
	}
	return nil
}

// ExportNPY writes the dataset (the done and remeasured queries, in id
// order) to dir as x.npy (n×d), y.npy (n×m) and objective.npy (n, NaN where
// unknown): float64, little-endian, C order. Each file is written to a
// temporary name and renamed, so a reader never sees half a file.
func (j *Journal) ExportNPY(ctx context.Context, dir string) error {
	fail := func(err error) error { return j.errorf("export npy to "+dir, err) }
	qs, err := j.QueriesWhere(ctx, Filter{Statuses: []QueryStatus{StatusDone, StatusRemeasured}})
	if err != nil {
		return err
	}
	n, d, m := len(qs), 0, 0
	if n > 0 {
		d, m = len(qs[0].X), len(qs[0].Y)
	}
	x := make([]float64, 0, n*d)
	y := make([]float64, 0, n*m)
	obj := make([]float64, n)
	for i, q := range qs {
		if len(q.X) != d || len(q.Y) != m {
			return fail(fmt.Errorf("query %d has %d inputs and %d outputs, query %d has %d and %d: not one array",
				q.ID, len(q.X), len(q.Y), qs[0].ID, d, m))
		}
		x = append(x, q.X...)
		y = append(y, q.Y...)
		obj[i] = q.Objective
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fail(err)
	}
	files := []struct {
		name  string
		shape []int
		data  []float64
	}{
		{"x.npy", []int{n, d}, x},
		{"y.npy", []int{n, m}, y},
		{"objective.npy", []int{n}, obj},
	}
	for _, f := range files {
		var buf bytes.Buffer
		if err := WriteNPY(&buf, f.shape, f.data); err != nil {
			return fail(err)
		}
		if err := writeFileAtomic(filepath.Join(dir, f.name), buf.Bytes()); err != nil {
			return fail(err)
		}
	}
	return nil
}

func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
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

// columnNames is names when it has n of them, else prefix0..prefix{n-1}.
func columnNames(prefix string, n int, names []string) []string {
	if len(names) == n && n > 0 {
		return names
	}
	cols := make([]string, n)
	for i := range cols {
		cols[i] = prefix + strconv.Itoa(i)
	}
	return cols
}
