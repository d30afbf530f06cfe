package reproduce

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
)

// ManifestFile is the description of the grid a directory holds, written
// by an unsharded run and by a merge; each shard writes its own,
// ShardsDir/I-of-N.json, so that shards can share one directory.
const (
	ManifestFile = "manifest.json"
	ShardsDir    = "shards"
)

// Manifest says which grid a directory's cells belong to and which parts
// of it were run there. Everything but Parts and Configs must agree
// between the manifests of cells that are merged or run into one place.
type Manifest struct {
	Scale      string `json:"scale,omitempty"`      // reproduce: the grid's scale
	Iterations int    `json:"iterations,omitempty"` // run tasks' iterations when overridden (0: the scale's)
	Sweep      *Sweep `json:"sweep,omitempty"`      // a sweep's definition instead of a scale
	Configs    string `json:"configs,omitempty"`    // the configs directory the cells were started with
	Parts      []Part `json:"parts"`
}

// Part is one run into the directory: a shard (Shards > 0) or all cells,
// of some tasks (nil: all) of the grid with or without the ngspice task.
type Part struct {
	Tasks   []string `json:"tasks,omitempty"`
	Ngspice bool     `json:"ngspice,omitempty"`
	Check   []uint64 `json:"check,omitempty"` // the second block of seeds it ran (Grid.Check)
	Shard   int      `json:"shard"`
	Shards  int      `json:"shards,omitempty"`
}

// group is the part's shard group: the parts with the same tasks, ngspice,
// second block and count are the shards of one assignment.
func (p Part) group() string {
	return fmt.Sprintf("%s|%v|%s|%d", strings.Join(p.Tasks, ","), p.Ngspice, FormatSeeds(p.Check), p.Shards)
}

func (m Manifest) identity() string {
	b, _ := json.Marshal(Manifest{Scale: m.Scale, Iterations: m.Iterations, Sweep: m.Sweep})
	return string(b)
}

// What describes the grid in words, for errors.
func (m Manifest) What() string {
	if m.Sweep != nil {
		return fmt.Sprintf("a sweep of %s (%s, seeds %s)", m.Sweep.Config, m.Sweep.Describe(), FormatSeeds(m.Sweep.Seeds))
	}
	s := "a --scale " + m.Scale + " grid"
	if m.Iterations > 0 {
		s += fmt.Sprintf(" with --iterations %d", m.Iterations)
	}
	return s
}

// Check is the union of the parts' second blocks of seeds, sorted.
func (m Manifest) Check() []uint64 {
	var out []uint64
	for _, p := range m.Parts {
		for _, s := range p.Check {
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	slices.Sort(out)
	return out
}

// Ngspice says whether any part ran the grid with the ngspice task.
func (m Manifest) Ngspice() bool {
	return slices.ContainsFunc(m.Parts, func(p Part) bool { return p.Ngspice })
}

// ReadManifests reads dir's manifest and its shards' (none: nil, no error).
func ReadManifests(dir string) ([]Manifest, error) {
	paths, _ := filepath.Glob(filepath.Join(dir, ShardsDir, "*.json"))
	paths = append([]string{filepath.Join(dir, ManifestFile)}, paths...)
	var ms []Manifest
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var m Manifest
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		ms = append(ms, m)
	}
	return ms, nil
}

// Combine joins manifests of one grid: their parts together (each once),
// the first configs directory named. Manifests of different grids are an
// error, and so are two shards of one assignment that disagree on the
// ngspice task (their cells were assigned from different lists).
func Combine(ms ...Manifest) (Manifest, error) {
	if len(ms) == 0 {
		return Manifest{}, errors.New("no manifest")
	}
	out := ms[0]
	out.Parts = nil
	for _, m := range ms {
		if m.identity() != out.identity() {
			return Manifest{}, fmt.Errorf("%s and %s cannot be mixed", out.What(), m.What())
		}
		out.Configs = cmp.Or(out.Configs, m.Configs)
		for _, p := range m.Parts {
			if !slices.ContainsFunc(out.Parts, func(q Part) bool { return reflect.DeepEqual(p, q) }) {
				out.Parts = append(out.Parts, p)
			}
		}
	}
	for _, p := range out.Parts {
		for _, q := range out.Parts {
			if p.Shards > 0 && p.Shards == q.Shards && slices.Equal(p.Tasks, q.Tasks) && slices.Equal(p.Check, q.Check) && p.Ngspice != q.Ngspice {
				return Manifest{}, fmt.Errorf("shards %d/%d and %d/%d of one assignment disagree on the ngspice task (on PATH for one, not the other): "+
					"their cells were assigned from different lists; run every shard with the same --ngspice", p.Shard, p.Shards, q.Shard, q.Shards)
			}
		}
	}
	slices.SortFunc(out.Parts, func(a, b Part) int {
		return cmp.Or(strings.Compare(a.group(), b.group()), cmp.Compare(a.Shard, b.Shard))
	})
	return out, nil
}

// Record adds part to dir's manifests: a shard's to its own file, any
// other part to ManifestFile. It refuses when dir already holds another
// grid's cells.
func Record(dir string, m Manifest, part Part) error {
	old, err := ReadManifests(dir)
	if err != nil {
		return err
	}
	m.Parts = []Part{part}
	all, err := Combine(append(old, m)...)
	if err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	if part.Shards > 0 {
		return writeJSON(filepath.Join(dir, ShardsDir, fmt.Sprintf("%d-of-%d.json", part.Shard, part.Shards)), m)
	}
	return writeJSON(filepath.Join(dir, ManifestFile), all)
}

// writeJSON writes v to path through a temporary file and a rename.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// WriteManifest writes m, joined with what dir's own manifest already
// holds, as dir's manifest (a merge's).
func WriteManifest(dir string, m Manifest) error {
	old, err := ReadManifests(dir)
	if err != nil {
		return err
	}
	all, err := Combine(append(old, m)...)
	if err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	return writeJSON(filepath.Join(dir, ManifestFile), all)
}
