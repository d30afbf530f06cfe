package reproduce

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/insitu-lab/insitu/loop/journal"
)

// Exec runs one insitu command line (without the program name), writing its
// output to log. It must honour ctx the way the command does on Ctrl-C:
// finish the query in flight, journal it and return.
type Exec func(ctx context.Context, args []string, log io.Writer) error

// State is where a cell stands.
type State int

const (
	Todo     State = iota // nothing recorded
	Partial               // a journal that did not finish: resume it
	Finished              // done: not run again
)

func (s State) String() string {
	return [...]string{"todo", "partial", "finished"}[s]
}

// studyDone names the file a finished study cell leaves.
const studyDone = "gradient.csv"

// CellState reads a cell's directory: a finished journal (or a study's
// gradient.csv) is Finished, any other journal Partial.
func CellState(ctx context.Context, c Cell, dir string) State {
	if c.Kind == KindStudy {
		if _, err := os.Stat(filepath.Join(dir, studyDone)); err == nil {
			return Finished
		}
		return Todo
	}
	if _, err := os.Stat(filepath.Join(dir, journal.FileName)); err != nil {
		return Todo
	}
	j, err := journal.OpenReadOnly(dir)
	if err != nil {
		return Partial
	}
	defer j.Close()
	m, err := j.Meta(ctx)
	if err == nil && m.Status == journal.RunFinished {
		return Finished
	}
	return Partial
}

// Options of Run.
type Options struct {
	Out      string    // output directory; cell directories go below it
	Jobs     int       // cells at once (default 2)
	Exec     Exec      // runs a cell's command
	Progress io.Writer // progress bar; nil: none
	Shard    Shard     // run only this shard's cells (zero: all)
}

// Summary says what Run did.
type Summary struct {
	Total, Skipped, Started, Resumed int
	Failed                           map[string]error // cell directory → error
	Elapsed                          time.Duration
}

// Run runs every cell of g that is not finished, Jobs at a time. A cell
// with a partial journal is resumed. Each cell's output goes to
// OUT/CELL/cell.log (the study's: OUT/TASK/cell.log). When ctx is cancelled
// no new cell starts and the cells in flight are left to stop on their own
// (they finish their query and journal it), then Run returns ctx.Err().
// A failed cell does not stop the others; Run returns an error naming the
// failed cells.
func Run(ctx context.Context, g Grid, opt Options) (Summary, error) {
	label := g.Scale + " grid"
	if opt.Shard.Sharded() {
		label += " shard " + opt.Shard.String()
	}
	return RunCells(ctx, label, Select(g.Cells(), opt.Shard), Options{Out: opt.Out, Jobs: opt.Jobs, Exec: opt.Exec, Progress: opt.Progress})
}

// RunCells is Run over a list of cells (opt.Shard selects among them);
// label names them on the progress bar.
func RunCells(ctx context.Context, label string, cells []Cell, opt Options) (Summary, error) {
	start := time.Now()
	jobs := max(opt.Jobs, 1)
	if opt.Jobs == 0 {
		jobs = 2
	}
	sum := Summary{Failed: map[string]error{}}
	type work struct {
		cell  Cell
		dir   string
		state State
	}
	var todo []work
	for _, c := range Select(cells, opt.Shard) {
		sum.Total++
		dir := filepath.Join(opt.Out, c.Dir())
		st := CellState(ctx, c, dir)
		if st == Finished {
			sum.Skipped++
			continue
		}
		todo = append(todo, work{c, dir, st})
	}
	var bar *progressbar.ProgressBar
	if opt.Progress != nil && len(todo) > 0 {
		bar = progressbar.NewOptions(len(todo),
			progressbar.OptionSetWriter(opt.Progress),
			progressbar.OptionSetDescription(fmt.Sprintf("%s (%d of %d cells already done)", label, sum.Skipped, sum.Total)),
			progressbar.OptionShowCount(),
			progressbar.OptionSetElapsedTime(true),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(200*time.Millisecond),
			progressbar.OptionShowDescriptionAtLineEnd(),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(opt.Progress) }),
		)
	}
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		next = make(chan work)
	)
	for range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for w := range next {
				err := runCell(ctx, opt.Exec, w.cell, w.dir, w.state)
				mu.Lock()
				if w.state == Partial {
					sum.Resumed++
				} else {
					sum.Started++
				}
				if err != nil && ctx.Err() == nil {
					sum.Failed[w.cell.Dir()] = err
				}
				if bar != nil {
					bar.Describe(fmt.Sprintf("%s done", w.cell.Dir()))
					_ = bar.Add(1)
				}
				mu.Unlock()
			}
		}()
	}
feed:
	for _, w := range todo {
		select {
		case next <- w:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if bar != nil && ctx.Err() == nil {
		_ = bar.Finish()
	}
	sum.Elapsed = time.Since(start)
	if ctx.Err() != nil {
		return sum, ctx.Err()
	}
	if len(sum.Failed) > 0 {
		var errs []error
		for d, err := range sum.Failed {
			errs = append(errs, fmt.Errorf("%s: %w", d, err))
		}
		return sum, fmt.Errorf("%d of %d cells failed (see their cell.log): %w", len(sum.Failed), sum.Total, errors.Join(errs...))
	}
	return sum, nil
}

// CellLog is the file in a cell's directory that its output is appended
// to; it is there before the cell's run starts.
const CellLog = "cell.log"

// runCell starts or resumes one cell, its output appended to DIR/cell.log.
func runCell(ctx context.Context, exec Exec, c Cell, dir string, st State) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	log, err := os.OpenFile(filepath.Join(dir, CellLog), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer log.Close()
	args := c.Args(dir)
	if st == Partial {
		args = c.ResumeArgs(dir)
	}
	fmt.Fprintf(log, "== %s insitu %q\n", time.Now().Format(time.RFC3339), args)
	err = exec(ctx, args, log)
	if err != nil {
		fmt.Fprintf(log, "== error: %v\n", err)
	}
	return err
}

// Status describes a cell's directory for a listing: its journal's status
// (finished, running, interrupted, failed), "failed" when the cell left no
// journal (no gradient.csv: a study) and its cell.log ends in an error,
// "interrupted" for a study cell that started and did not finish, and
// "missing" when nothing is there.
func Status(ctx context.Context, c Cell, dir string) string {
	if _, err := os.Stat(dir); err != nil {
		return "missing"
	}
	switch CellState(ctx, c, dir) {
	case Finished:
		return string(journal.RunFinished)
	case Partial:
		j, err := journal.OpenReadOnly(dir)
		if err != nil {
			return "unreadable"
		}
		defer j.Close()
		m, err := j.Meta(ctx)
		if err != nil {
			return "unreadable"
		}
		return string(m.Status)
	}
	if logFailed(filepath.Join(dir, CellLog)) {
		return string(journal.RunFailed)
	}
	if c.Kind == KindStudy {
		return string(journal.RunInterrupted)
	}
	return "missing"
}

// logFailed says whether a cell.log's last "== " line is an error.
func logFailed(path string) bool {
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	last := ""
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "== ") {
			last = l
		}
	}
	return strings.HasPrefix(last, "== error")
}
