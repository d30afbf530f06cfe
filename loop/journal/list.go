package journal

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Summary is one line of `insitu list`.
type Summary struct {
	Dir        string
	Created    time.Time
	Version    string
	Method     string
	Kind       string
	Status     RunStatus
	Stop       string // why the run ended (Meta.Stop)
	ConfigHash string // Meta.ConfigHash
	Direction  Direction
	Queries    int     // every journaled query
	Done       int     // done or remeasured
	Best       float64 // best objective of a done or remeasured query; NaN if none
	Err        error   // the journal could not be read; the other fields may be zero
}

// Summary summarizes the journal.
func (j *Journal) Summary(ctx context.Context) (Summary, error) {
	s := Summary{Dir: j.Dir(), Best: math.NaN()}
	err := j.read(ctx, "summary", func(ctx context.Context, c *sql.Conn) error {
		kv, err := j.readMeta(ctx, c)
		if err != nil {
			return err
		}
		m, err := parseMeta(kv)
		if err != nil {
			return err
		}
		s.Created, s.Version, s.Method, s.Kind, s.Status, s.Direction = m.Created, m.Version, m.Method, m.Kind, m.Status, m.Direction
		s.Stop, s.ConfigHash = m.Stop, m.ConfigHash
		agg := "MIN"
		if m.Direction == Maximize {
			agg = "MAX"
		}
		var best sql.NullFloat64
		err = c.QueryRowContext(ctx, `SELECT
			(SELECT COUNT(*) FROM queries),
			(SELECT COUNT(*) FROM queries WHERE status IN ('done', 'remeasured')),
			(SELECT `+agg+`(objective) FROM queries WHERE status IN ('done', 'remeasured'))`).Scan(&s.Queries, &s.Done, &best)
		if best.Valid {
			s.Best = best.Float64
		}
		return err
	})
	return s, err
}

// List summarizes the journals in the run directories directly under root,
// oldest first, or root's own when root is a run directory. A journal that
// cannot be read is listed with Err set rather than hiding the others.
func List(root string) ([]Summary, error) {
	if fi, err := os.Stat(filepath.Join(root, FileName)); err == nil && fi.Mode().IsRegular() {
		return []Summary{summarize(root)}, nil
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("journal: list %s: %w", root, err)
	}
	var out []Summary
	for _, e := range entries {
		dir := filepath.Join(root, e.Name())
		// Stat follows symlinks, so a linked run directory counts too.
		if fi, err := os.Stat(filepath.Join(dir, FileName)); err != nil || !fi.Mode().IsRegular() {
			continue
		}
		out = append(out, summarize(dir))
	}
	slices.SortStableFunc(out, func(a, b Summary) int {
		return cmp.Or(a.Created.Compare(b.Created), cmp.Compare(a.Dir, b.Dir))
	})
	return out, nil
}

func summarize(dir string) Summary {
	j, err := Peek(dir)
	if err != nil {
		return Summary{Dir: dir, Best: math.NaN(), Err: err}
	}
	defer j.Close()
	s, err := j.Summary(context.Background())
	if err != nil {
		return Summary{Dir: dir, Best: math.NaN(), Err: err}
	}
	s.Dir = dir
	return s
}
