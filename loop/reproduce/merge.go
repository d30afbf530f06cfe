package reproduce

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/insitu-lab/insitu/loop/journal"
)

// MergeSummary says what Merge did.
type MergeSummary struct {
	Cells   int // cells of the grid
	Linked  int // finished cells hard-linked into out
	Copied  int // cells copied into out (unfinished ones always are)
	Present int // cells already in out
	Missing int // cells in no directory
}

// content is what a cell directory holds, for comparing two copies of
// one cell: its journal's meta and queries (a study's gradient.csv), and
// whether it finished.
type content struct {
	root     string // the merged directory it is in
	dir      string
	hash     string // "" when the cell has nothing to compare (no journal, no gradient.csv)
	finished bool
	what     string // for errors: status and query count
}

// cellContent fingerprints a cell directory: a journal's method, kind,
// seed, direction and status with its queries as `insitu export` writes
// them (ids, iterations, roles, statuses, x, y, objective: everything but
// times), or a study's gradient.csv byte for byte.
func cellContent(ctx context.Context, c Cell, root string) (content, error) {
	dir := filepath.Join(root, c.Dir())
	ct := content{root: root, dir: dir}
	if c.Kind == KindStudy {
		b, err := os.ReadFile(filepath.Join(dir, studyDone))
		if errors.Is(err, os.ErrNotExist) {
			return ct, nil
		}
		if err != nil {
			return ct, err
		}
		sum := sha256.Sum256(b)
		ct.hash, ct.finished, ct.what = hex.EncodeToString(sum[:]), true, "finished study"
		return ct, nil
	}
	if _, err := os.Stat(filepath.Join(dir, journal.FileName)); errors.Is(err, os.ErrNotExist) {
		return ct, nil
	}
	j, err := journal.OpenReadOnly(dir)
	if err != nil {
		return ct, err
	}
	defer j.Close()
	m, err := j.Meta(ctx)
	if err != nil {
		return ct, fmt.Errorf("%s: %w", dir, err)
	}
	qs, err := j.Queries(ctx)
	if err != nil {
		return ct, fmt.Errorf("%s: %w", dir, err)
	}
	// What the queries measured, bit for bit: two journals of one cell are
	// the same cell when this and the run's identity agree.
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%d\x00%s\x00%s\x00", m.Method, m.Kind, m.Seed, m.Direction, m.Status)
	for _, q := range qs {
		fmt.Fprintf(h, "%d\x00%d\x00%d\x00%s\x00%s\x00%x\x00", q.ID, q.Iteration, q.Slot, q.Role, q.Status, math.Float64bits(q.Objective))
		for _, v := range q.X {
			fmt.Fprintf(h, "%x,", math.Float64bits(v))
		}
		h.Write([]byte{0})
		for _, v := range q.Y {
			fmt.Fprintf(h, "%x,", math.Float64bits(v))
		}
		h.Write([]byte{0})
	}
	ct.hash, ct.finished = hex.EncodeToString(h.Sum(nil)), m.Status == journal.RunFinished
	ct.what = fmt.Sprintf("%s, %d queries", m.Status, len(qs))
	return ct, nil
}

// Merge gathers the cells of cells from the directories in into out:
// each cell directory found is hard-linked (a finished one; copied when
// linking fails) or copied (an unfinished one, which may be resumed
// there) to out. The same cell in several directories is taken once when
// their journals hold the same queries and status; two different
// journals for one cell are refused, and then nothing is changed. A
// directory of in may be out itself (shards that shared it). A cell
// directory with no journal (a cell that failed before its first query)
// is copied only when no directory has a journal for it. A symbolic link
// in a cell's path or tree (a linked cell directory or journal) is refused,
// and then nothing is changed: merging copies or links the files
// themselves, and a link would leave out a copy pointing at files it does
// not own.
func Merge(ctx context.Context, cells []Cell, out string, in []string) (MergeSummary, error) {
	sum := MergeSummary{Cells: len(cells)}
	outAbs, err := filepath.Abs(out)
	if err != nil {
		return sum, err
	}
	var srcs []string
	for _, d := range in {
		fi, err := os.Stat(d)
		if err != nil {
			return sum, err
		}
		if !fi.IsDir() {
			return sum, fmt.Errorf("%s: not a directory", d)
		}
		if a, _ := filepath.Abs(d); a != outAbs && !slices.Contains(srcs, d) {
			srcs = append(srcs, d)
		}
	}
	type plan struct {
		cell Cell
		from content
	}
	var todo []plan
	var conflicts, links []string
	for _, c := range cells {
		if err := ctx.Err(); err != nil {
			return sum, err
		}
		var have, bare []content // copies with something to compare; without
		present := false
		for i, d := range append([]string{out}, srcs...) {
			if l := symlinks(d, c.Dir()); len(l) > 0 {
				links = append(links, l...)
				continue
			}
			if empty(filepath.Join(d, c.Dir())) {
				continue
			}
			ct, err := cellContent(ctx, c, d)
			if err != nil {
				conflicts = append(conflicts, fmt.Sprintf("%s: unreadable in %s: %v", c.Dir(), d, err))
				continue
			}
			if i == 0 {
				present = true
			}
			if ct.hash == "" {
				bare = append(bare, ct)
				continue
			}
			if len(have) > 0 && have[0].hash != ct.hash {
				conflicts = append(conflicts, fmt.Sprintf("%s: different journals in %s (%s) and %s (%s)",
					c.Dir(), have[0].root, have[0].what, ct.root, ct.what))
				continue
			}
			have = append(have, ct)
		}
		switch {
		case len(have) > 0 && have[0].dir == filepath.Join(out, c.Dir()):
			sum.Present++
		case len(have) > 0:
			todo = append(todo, plan{c, have[0]})
		case present:
			sum.Present++
		case len(bare) > 0:
			todo = append(todo, plan{c, bare[0]})
		default:
			sum.Missing++
		}
	}
	if len(links) > 0 {
		return sum, fmt.Errorf("%d symbolic links in cell directories (nothing merged; merge copies or hard-links real files: replace each link by what it points to, or merge the directory it points into):\n  %s",
			len(links), strings.Join(links, "\n  "))
	}
	if len(conflicts) > 0 {
		return sum, fmt.Errorf("%d cells have different journals in different directories (nothing merged; keep one of each and merge again):\n  %s",
			len(conflicts), strings.Join(conflicts, "\n  "))
	}
	for _, p := range todo {
		linked, err := copyTree(p.from.dir, filepath.Join(out, p.cell.Dir()), p.from.finished)
		if err != nil {
			return sum, fmt.Errorf("%s: %w", p.cell.Dir(), err)
		}
		if linked {
			sum.Linked++
		} else {
			sum.Copied++
		}
	}
	return sum, nil
}

// symlinks lists the symbolic links on the way from root to root/cell
// (root itself may be one) and in the tree under it.
func symlinks(root, cell string) []string {
	var out []string
	p := root
	for _, part := range strings.Split(filepath.ToSlash(cell), "/") {
		p = filepath.Join(p, part)
		fi, err := os.Lstat(p)
		if err != nil {
			return out // missing: nothing under it
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return append(out, p)
		}
	}
	_ = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Type()&fs.ModeSymlink != 0 {
			out = append(out, path)
		}
		return nil
	})
	return out
}

// empty says whether dir is missing or holds nothing.
func empty(dir string) bool {
	es, err := os.ReadDir(dir)
	return err != nil || len(es) == 0
}

// copyTree puts the files under src at the same places under dst: hard
// links when link is true and the file system allows them, copies
// otherwise. It reports whether every file was linked.
func copyTree(src, dst string, link bool) (linked bool, err error) {
	linked = link
	err = filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(to, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		if err := os.Remove(to); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if link {
			if os.Link(path, to) == nil {
				return nil
			}
			linked = false
		}
		return copyFile(path, to)
	})
	return linked, err
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(to, os.O_CREATE|os.O_EXCL|os.O_WRONLY, fi.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func writeFile(path string, b []byte) error { return os.WriteFile(path, b, 0o644) }

// Owners maps each cell directory of the parts' grids to the shard that
// runs it ("" for cells of an unsharded part): for each assignment (the
// parts with the same tasks, ngspice and shard count) the cells of its
// grid, assigned as its shards assigned them. cells lists the cells of one
// part's grid (its ngspice and tasks). Cells of no part are not in the map.
func Owners(parts []Part, cells func(Part) ([]Cell, error)) (map[string]string, error) {
	own := map[string]string{}
	done := map[string]bool{}
	for _, p := range parts {
		if done[p.group()] {
			continue
		}
		done[p.group()] = true
		cs, err := cells(p)
		if err != nil {
			return nil, err
		}
		as := Assign(cs, p.Shards)
		for i, c := range cs {
			if p.Shards > 0 {
				own[c.Dir()] = Shard{Index: as[i], Count: p.Shards}.String()
			} else if _, ok := own[c.Dir()]; !ok {
				own[c.Dir()] = ""
			}
		}
	}
	return own, nil
}
