package reproduce

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/insitu-lab/insitu/loop/journal"
)

// runShards runs g's cells as n shards, each into its own directory.
func runShards(t *testing.T, g Grid, n int) []string {
	t.Helper()
	var dirs []string
	var f fakeExec
	for k := range n {
		dir := filepath.Join(t.TempDir(), "shard")
		sh := Shard{k, n}
		if err := Record(dir, Manifest{Scale: g.Scale}, Part{Shard: k, Shards: n}); err != nil {
			t.Fatal(err)
		}
		if _, err := Run(context.Background(), g, Options{Out: dir, Exec: f.exec, Shard: sh}); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, dir)
	}
	if int(f.calls.Load()) != len(g.Cells()) {
		t.Fatalf("%d cells run by %d shards, the grid has %d", f.calls.Load(), n, len(g.Cells()))
	}
	return dirs
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

func TestMerge(t *testing.T) {
	ctx := context.Background()
	g := tinyGrid(3) // 6 cells
	dirs := runShards(t, g, 3)
	cells := g.Cells()
	// One cell left unfinished in its shard: it is copied, not linked,
	// since it will be resumed in the merged tree.
	var partial Cell
	for _, c := range cells {
		if _, err := os.Stat(filepath.Join(dirs[1], c.Dir())); err == nil {
			partial = c
			break
		}
	}
	j, err := journal.Open(filepath.Join(dirs[1], partial.Dir()))
	if err != nil {
		t.Fatal(err)
	}
	if err := j.SetStatus(ctx, journal.RunInterrupted); err != nil {
		t.Fatal(err)
	}
	j.Close()

	out := filepath.Join(t.TempDir(), "merged")
	sum, err := Merge(ctx, cells, out, dirs)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Cells != 6 || sum.Linked != 5 || sum.Copied != 1 || sum.Missing != 0 || sum.Present != 0 {
		t.Fatalf("merge: %+v", sum)
	}
	for _, c := range cells {
		want := Finished
		if c.Dir() == partial.Dir() {
			want = Partial
		}
		if st := CellState(ctx, c, filepath.Join(out, c.Dir())); st != want {
			t.Errorf("%s: %v after the merge, want %v", c.Dir(), st, want)
		}
	}
	src := func(c Cell) string {
		for _, d := range dirs {
			if _, err := os.Stat(filepath.Join(d, c.Dir())); err == nil {
				return filepath.Join(d, c.Dir(), journal.FileName)
			}
		}
		t.Fatalf("%s in no shard", c.Dir())
		return ""
	}
	for _, c := range cells {
		same := inode(t, src(c)) == inode(t, filepath.Join(out, c.Dir(), journal.FileName))
		if same != (c.Dir() != partial.Dir()) {
			t.Errorf("%s: hard link %v", c.Dir(), same)
		}
	}

	// Again, and with a shard given twice: everything is already there.
	sum, err = Merge(ctx, cells, out, append(dirs, dirs[0]))
	if err != nil || sum.Present != 6 || sum.Linked+sum.Copied != 0 {
		t.Fatalf("second merge: %+v, %v", sum, err)
	}
	// The merged tree's own cells (shards that shared it).
	if sum, err = Merge(ctx, cells, out, []string{out}); err != nil || sum.Present != 6 {
		t.Fatalf("in place: %+v, %v", sum, err)
	}

	// The same cell run twice, identically (a retried task that wrote
	// elsewhere): taken once.
	c0 := cells[0]
	dup := filepath.Join(t.TempDir(), "dup")
	if _, err := copyTree(filepath.Dir(src(c0)), filepath.Join(dup, c0.Dir()), false); err != nil {
		t.Fatal(err)
	}
	out2 := filepath.Join(t.TempDir(), "merged2")
	if sum, err := Merge(ctx, cells, out2, append([]string{dup}, dirs...)); err != nil || sum.Linked+sum.Copied != 6 {
		t.Fatalf("identical copies: %+v, %v", sum, err)
	}

	// A different journal for that cell: refused, naming both, and
	// nothing merged.
	other := cells[1]
	if err := os.RemoveAll(filepath.Join(dup, c0.Dir())); err != nil {
		t.Fatal(err)
	}
	if _, err := copyTree(filepath.Dir(src(other)), filepath.Join(dup, c0.Dir()), false); err != nil {
		t.Fatal(err)
	}
	out3 := filepath.Join(t.TempDir(), "merged3")
	_, err = Merge(ctx, cells, out3, append([]string{dup}, dirs...))
	if err == nil || !strings.Contains(err.Error(), c0.Dir()+": different journals in") || !strings.Contains(err.Error(), dup) {
		t.Fatalf("conflict: %v", err)
	}
	if _, err := os.Stat(out3); err == nil && !empty(out3) {
		t.Error("a refused merge wrote cells")
	}
	// A cell in no directory is counted missing.
	if sum, err := Merge(ctx, cells, filepath.Join(t.TempDir(), "m4"), dirs[:1]); err != nil || sum.Missing == 0 {
		t.Errorf("missing: %+v, %v", sum, err)
	}
}

func TestManifests(t *testing.T) {
	dir := t.TempDir()
	quick := Manifest{Scale: "quick", Configs: "configs"}
	if err := Record(dir, quick, Part{Shard: 0, Shards: 2}); err != nil {
		t.Fatal(err)
	}
	if err := Record(dir, quick, Part{Shard: 1, Shards: 2}); err != nil {
		t.Fatal(err)
	}
	// Another grid in the same directory is refused.
	if err := Record(dir, Manifest{Scale: "full"}, Part{}); err == nil || !strings.Contains(err.Error(), "--scale full") {
		t.Errorf("full into quick: %v", err)
	}
	if err := Record(dir, Manifest{Scale: "quick", Iterations: 5}, Part{}); err == nil || !strings.Contains(err.Error(), "--iterations 5") {
		t.Errorf("other iterations: %v", err)
	}
	// A shard of the same assignment that saw ngspice when the others did not.
	if err := Record(dir, quick, Part{Shard: 1, Shards: 2, Ngspice: true}); err == nil || !strings.Contains(err.Error(), "ngspice") {
		t.Errorf("ngspice disagreement: %v", err)
	}
	if err := Record(dir, quick, Part{Tasks: []string{"owms"}}); err != nil {
		t.Fatal(err)
	}
	ms, err := ReadManifests(dir)
	if err != nil || len(ms) != 3 {
		t.Fatalf("%d manifests, %v", len(ms), err)
	}
	m, err := Combine(ms...)
	if err != nil || m.Scale != "quick" || len(m.Parts) != 3 || m.Configs != "configs" {
		t.Fatalf("combined %+v, %v", m, err)
	}
	if _, err := Combine(m, Manifest{Sweep: &Sweep{Config: "c.yaml", Seeds: []uint64{1}}}); err == nil {
		t.Error("a sweep and a grid combined")
	}
	// Owners: the cells of the sharded assignment by shard, the others unsharded.
	g := tinyGrid(3)
	own, err := Owners(m.Parts, func(p Part) ([]Cell, error) { return g.Cells(), nil })
	if err != nil {
		t.Fatal(err)
	}
	as := Assign(g.Cells(), 2)
	for i, c := range g.Cells() {
		if want := (Shard{as[i], 2}).String(); own[c.Dir()] != want {
			t.Errorf("%s owned by %q, want %q", c.Dir(), own[c.Dir()], want)
		}
	}
}

func TestStatus(t *testing.T) {
	ctx := context.Background()
	out := t.TempDir()
	g := tinyGrid(1)
	var f fakeExec
	if _, err := Run(ctx, g, Options{Out: out, Exec: f.exec}); err != nil {
		t.Fatal(err)
	}
	cs := g.Cells()
	if st := Status(ctx, cs[0], filepath.Join(out, cs[0].Dir())); st != "finished" {
		t.Errorf("finished cell: %s", st)
	}
	j, err := journal.Open(filepath.Join(out, cs[1].Dir()))
	if err != nil {
		t.Fatal(err)
	}
	if err := j.SetStatus(ctx, journal.RunFailed); err != nil {
		t.Fatal(err)
	}
	j.Close()
	if st := Status(ctx, cs[1], filepath.Join(out, cs[1].Dir())); st != "failed" {
		t.Errorf("failed cell: %s", st)
	}
	// A cell that failed before its journal: its cell.log says so.
	c := Cell{Task: "x", Kind: KindRun, Method: "mae", Seed: 1}
	dir := filepath.Join(out, c.Dir())
	if st := Status(ctx, c, dir); st != "missing" {
		t.Errorf("nothing: %s", st)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cell.log"), []byte("== 2026 insitu [run]\nconfig: bad key\n== error: bad key\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if st := Status(ctx, c, dir); st != "failed" {
		t.Errorf("failed before the journal: %s", st)
	}
}

// TestMergeRefusesSymlinks: a cell directory that is a symbolic link, or a
// journal that is one, is refused with its path, and nothing is merged: a
// walk of the link would copy nothing and count the cell as linked.
func TestMergeRefusesSymlinks(t *testing.T) {
	ctx := context.Background()
	g := tinyGrid(3)
	cells := g.Cells()
	for _, what := range []string{"cell directory", "journal"} {
		t.Run(what, func(t *testing.T) {
			dirs := runShards(t, g, 1)
			c := cells[0]
			cell := filepath.Join(dirs[0], c.Dir())
			elsewhere := filepath.Join(t.TempDir(), "elsewhere")
			if err := os.Rename(cell, elsewhere); err != nil {
				t.Fatal(err)
			}
			link := cell
			if what == "journal" {
				if err := os.Mkdir(cell, 0o755); err != nil {
					t.Fatal(err)
				}
				link = filepath.Join(cell, journal.FileName)
				if _, err := copyTree(elsewhere, cell, false); err != nil {
					t.Fatal(err)
				}
				if err := os.Remove(link); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(filepath.Join(elsewhere, journal.FileName), link); err != nil {
					t.Fatal(err)
				}
			} else if err := os.Symlink(elsewhere, link); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(t.TempDir(), "merged")
			sum, err := Merge(ctx, cells, out, dirs)
			if err == nil || !strings.Contains(err.Error(), link) || !strings.Contains(err.Error(), "symbolic link") {
				t.Fatalf("merge with a symlinked %s: %+v, %v; want it refused, naming %s", what, sum, err, link)
			}
			if !empty(out) {
				t.Error("a refused merge wrote cells")
			}
		})
	}
}
