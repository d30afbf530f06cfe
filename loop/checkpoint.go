package loop

import (
	"bytes"
	"context"
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/insitu-lab/insitu/loop/journal"
	"github.com/insitu-lab/insitu/surrogate"
)

// loopState is the part of a checkpoint that is the loop's own: with the
// surrogate's weights, the trainer's state (Adam, random source, epochs)
// and the local-sample random source it is everything iteration t+1
// depends on besides the measured queries, which the journal holds.
type loopState struct {
	Iteration int          `json:"iteration"`
	Samples   int          `json:"samples"` // measured queries at the checkpoint
	Projected int          `json:"projected"`
	Stale     int          `json:"stale"`
	LastBest  float64      `json:"last_best"`
	Floor     int          `json:"floor,omitempty"`    // the restart rule's state
	Restarts  int          `json:"restarts,omitempty"` // restarts so far
	Slots     []slotRecord `json:"slots"`
}

type slotRecord struct {
	Sample int       `json:"sample"`
	M      []float64 `json:"m"`
	V      []float64 `json:"v"`
	T      int       `json:"t"`
}

// checkpoint saves the state after iteration t every CheckpointEvery
// iterations, in one journal transaction with the results it refers to.
func (r *runner) checkpoint(ctx context.Context, t int, tr *surrogate.Trainer, states map[int]*adamX, local *rand.PCG) error {
	every := r.cfg.CheckpointEvery
	if r.ev.j == nil || tr == nil || every <= 0 || (t%every != 0 && t != r.cfg.Iterations) {
		return nil
	}
	var st loopState
	for i, a := range states {
		st.Slots = append(st.Slots, slotRecord{Sample: i, M: a.m, V: a.v, T: a.t})
	}
	// Map order is random: sort so that identical states give identical bytes.
	sortSlots(st.Slots)
	var model bytes.Buffer
	if err := tr.Model().Save(&model); err != nil {
		return err
	}
	trainer, err := tr.MarshalBinary()
	if err != nil {
		return err
	}
	rng, err := local.MarshalBinary()
	if err != nil {
		return err
	}
	return r.saveState(ctx, t, st, map[string][]byte{"model": model.Bytes(), "trainer": trainer, "rng-local": rng})
}

func sortSlots(s []slotRecord) {
	idx := make([]int, len(s))
	for i := range idx {
		idx[i] = i
	}
	sortStable(idx, func(a, b int) bool { return s[a].Sample < s[b].Sample })
	out := make([]slotRecord, len(s))
	for i, j := range idx {
		out[i] = s[j]
	}
	copy(s, out)
}

// resume reads the journal's latest checkpoint, if any: it loads the
// measured queries up to it and the iteration records, and restores the
// loop's own counters. It returns the checkpoint's iteration (0 when there
// is none) and its parts, for the method's own state.
func (r *runner) resume(ctx context.Context) (int, map[string][]byte, loopState, error) {
	var st loopState
	if r.ev.j == nil {
		return 0, nil, st, nil
	}
	it, parts, ok, err := r.ev.j.LatestCheckpoint(ctx)
	if err != nil || !ok {
		return 0, nil, st, err
	}
	if err := json.Unmarshal(parts["loop"], &st); err != nil {
		return 0, nil, st, fmt.Errorf("checkpoint of iteration %d: %w", it, err)
	}
	if st.Iteration != it || it < 1 || it > r.cfg.Iterations || st.Samples < r.ev.n() {
		return 0, nil, st, fmt.Errorf("checkpoint of iteration %d does not fit this run (%d iterations, %d initial queries)", it, r.cfg.Iterations, r.ev.n())
	}
	if err := r.ev.preload(ctx, st.Samples); err != nil {
		return 0, nil, st, fmt.Errorf("checkpoint of iteration %d: %w", it, err)
	}
	its, err := r.ev.j.Iterations(ctx)
	if err != nil {
		return 0, nil, st, err
	}
	for _, rec := range its {
		if rec.Iteration >= 1 && rec.Iteration <= it {
			r.iters = append(r.iters, rec)
		}
	}
	r.projected, r.stale, r.lastBest = st.Projected, st.Stale, st.LastBest
	r.floor, r.restarts = st.Floor, st.Restarts
	r.ev.iteration = it
	r.restored = it
	return it, parts, st, nil
}

// saveState saves the loop's counters and the method's parts as the
// checkpoint of iteration t, when one is due (every CheckpointEvery
// iterations and at the last).
func (r *runner) saveState(ctx context.Context, t int, st loopState, parts map[string][]byte) error {
	every := r.cfg.CheckpointEvery
	if r.ev.j == nil || every <= 0 || (t%every != 0 && t != r.cfg.Iterations) {
		return nil
	}
	st.Iteration, st.Samples, st.Projected, st.Stale, st.LastBest = t, r.ev.n(), r.projected, r.stale, r.lastBest
	st.Floor, st.Restarts = r.floor, r.restarts
	js, err := json.Marshal(st)
	if err != nil {
		return err
	}
	parts["loop"] = js
	return r.ev.j.SaveCheckpoint(ctx, t, parts)
}

// restore continues from the journal's latest checkpoint, if any: it
// reads the measured queries up to the checkpoint from the journal, and
// replaces the surrogate, the trainer, the slots' Adam states and the
// local-sample source with the saved ones. It returns the checkpoint's
// iteration, 0 when there is none.
func (r *runner) restore(ctx context.Context, tr **surrogate.Trainer, data **surrogate.Dataset, states map[int]*adamX, local *rand.PCG) (int, error) {
	it, parts, st, err := r.resume(ctx)
	if err != nil || it == 0 {
		return 0, err
	}
	model, err := surrogate.Load(bytes.NewReader(parts["model"]))
	if err != nil {
		return 0, fmt.Errorf("checkpoint of iteration %d: %w", it, err)
	}
	if got, want := model.MLP().Precision(), r.cfg.Surrogate.Precision.OrDefault(); got != want {
		return 0, fmt.Errorf("checkpoint of iteration %d holds a %s surrogate, the config says surrogate.precision: %s (set it to %s to resume this run)", it, got, want, got)
	}
	t, err := surrogate.NewTrainer(model, (*tr).Config(), r.cfg.Seed^saltSurrogate)
	if err != nil {
		return 0, err
	}
	if err := t.UnmarshalBinary(parts["trainer"]); err != nil {
		return 0, fmt.Errorf("checkpoint of iteration %d: %w", it, err)
	}
	if err := local.UnmarshalBinary(parts["rng-local"]); err != nil {
		return 0, fmt.Errorf("checkpoint of iteration %d: local random source: %w", it, err)
	}
	d := surrogate.NewDataset(model)
	for _, s := range r.ev.samples {
		d.Append(s.X, s.Y)
	}
	for _, sl := range st.Slots {
		states[sl.Sample] = &adamX{m: sl.M, v: sl.V, t: sl.T}
	}
	*tr, *data, r.model = t, d, model
	return it, nil
}

// preload serves queries up to n from the journal without running the
// method that made them: they are before a checkpoint, so every one is
// recorded.
func (e *evaluator) preload(ctx context.Context, n int) error {
	for i := len(e.samples); i < n; i++ {
		key := fmt.Sprintf("q%07d", i)
		q, _, ok, err := e.lookup(ctx, key)
		if err != nil {
			return err
		}
		if !ok || (q.Status != journal.StatusDone && q.Status != journal.StatusRemeasured) {
			return fmt.Errorf("query %s before the checkpoint is not recorded", key)
		}
		e.served()
		if _, err := e.record(q.X, q.Y); err != nil {
			return err
		}
	}
	return nil
}

// CheckpointPrecision is the floating-point type of the surrogate in j's
// latest checkpoint; ok is false when no checkpoint holds a surrogate. A
// resume whose config does not name surrogate.precision continues in it:
// the default can change between releases, a run's precision cannot.
func CheckpointPrecision(ctx context.Context, j *journal.Journal) (p surrogate.Precision, ok bool, err error) {
	_, parts, found, err := j.LatestCheckpoint(ctx)
	if err != nil || !found || parts["model"] == nil {
		return "", false, err
	}
	model, err := surrogate.Load(bytes.NewReader(parts["model"]))
	if err != nil {
		return "", false, err
	}
	return model.MLP().Precision(), true, nil
}

// CheckCheckpoint checks that the journal's latest checkpoint, if any, is
// one a resume can continue from: every part decodes, and the surrogate's
// weights, its trainer's state and the optimizer states are finite. It
// needs no device and no config: a resume calls it before it opens one,
// so that a bad checkpoint refuses the resume and leaves the run as it
// was. Run and Train check the fit to their config when they restore it.
func CheckCheckpoint(ctx context.Context, j *journal.Journal) error {
	it, parts, ok, err := j.LatestCheckpoint(ctx)
	if err != nil || !ok {
		return err
	}
	fail := func(err error) error { return fmt.Errorf("checkpoint of iteration %d: %w", it, err) }
	var model *surrogate.Model
	if b, ok := parts["model"]; ok {
		if model, err = surrogate.Load(bytes.NewReader(b)); err != nil {
			return fail(err)
		}
		if err := surrogate.CheckTrainerState(parts["trainer"], model); err != nil {
			return fail(err)
		}
	}
	finite := func(what string, vs ...[]float64) error {
		for _, v := range vs {
			for i, x := range v {
				if math.IsNaN(x) || math.IsInf(x, 0) {
					return fail(fmt.Errorf("%s[%d] is %v", what, i, x))
				}
			}
		}
		return nil
	}
	switch {
	case parts["loop"] != nil:
		var st loopState
		if err := json.Unmarshal(parts["loop"], &st); err != nil {
			return fail(err)
		}
		if model == nil {
			return fail(errors.New("no surrogate model"))
		}
		for _, sl := range st.Slots {
			if err := finite(fmt.Sprintf("the Adam state of the slot at query %d", sl.Sample), sl.M, sl.V); err != nil {
				return err
			}
		}
		var local rand.PCG
		if err := local.UnmarshalBinary(parts["rng-local"]); err != nil {
			return fail(fmt.Errorf("local random source: %w", err))
		}
	case parts["train"] != nil:
		var st trainState
		if err := gob.NewDecoder(bytes.NewReader(parts["train"])).Decode(&st); err != nil {
			return fail(err)
		}
		if err := finite("θ", st.U); err != nil {
			return err
		}
		if err := finite("θ's Adam state", st.AdamM, st.AdamV); err != nil {
			return err
		}
	default:
		return fail(errors.New("neither a run's nor a training's checkpoint"))
	}
	return nil
}
