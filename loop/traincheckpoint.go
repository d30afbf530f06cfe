package loop

import (
	"bytes"
	"context"
	"encoding/gob"
	"fmt"

	"github.com/insitu-lab/insitu/surrogate"
)

// trainState is the part of a training checkpoint that is the trainer's
// own: with the surrogate's weights and its trainer's state it is
// everything epoch e+1 depends on besides the measured queries, which the
// journal holds. gob, not JSON: the metrics hold NaN (epochs without an
// evaluation).
type trainState struct {
	Epoch, Samples, Projected int
	U, AdamM, AdamV           []float64
	AdamT                     int
	Epochs                    []EpochMetrics
	Confusion                 [][]int
}

// checkpoint saves the state after epoch e every CheckpointEvery epochs
// (and after the last), once the epoch's queries are synced.
func (t *trainer) checkpoint(ctx context.Context, e int) error {
	every := t.cfg.CheckpointEvery
	if t.ev.j == nil || every <= 0 || (e%every != 0 && e != t.cfg.Epochs) {
		return nil
	}
	if err := t.ev.j.Sync(ctx); err != nil {
		return err
	}
	st := trainState{Epoch: e, Samples: t.ev.n(), Projected: t.projected, U: t.u,
		AdamM: t.adam.m, AdamV: t.adam.v, AdamT: t.adam.t, Epochs: t.epochs, Confusion: t.confusion}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(st); err != nil {
		return err
	}
	parts := map[string][]byte{"train": buf.Bytes()}
	if t.tr != nil {
		var model bytes.Buffer
		if err := t.tr.Model().Save(&model); err != nil {
			return err
		}
		trainer, err := t.tr.MarshalBinary()
		if err != nil {
			return err
		}
		parts["model"], parts["trainer"] = model.Bytes(), trainer
	}
	return t.ev.j.SaveCheckpoint(ctx, e, parts)
}

// restore continues from the journal's latest checkpoint, if any: the
// queries up to it are served from the journal, θ, its Adam state, the
// metrics so far and the surrogate with its trainer are the saved ones. It
// returns the checkpoint's epoch, 0 when there is none.
func (t *trainer) restore(ctx context.Context) (int, error) {
	if t.ev.j == nil {
		return 0, nil
	}
	e, parts, ok, err := t.ev.j.LatestCheckpoint(ctx)
	if err != nil || !ok {
		return 0, err
	}
	fail := func(err error) (int, error) { return 0, fmt.Errorf("checkpoint of epoch %d: %w", e, err) }
	var st trainState
	if err := gob.NewDecoder(bytes.NewReader(parts["train"])).Decode(&st); err != nil {
		return fail(err)
	}
	if st.Epoch != e || e < 1 || e > t.cfg.Epochs || len(st.U) != len(t.u) || len(st.Epochs) != e+1 {
		return fail(fmt.Errorf("does not fit this training (%d epochs, %d parameters)", t.cfg.Epochs, len(t.u)))
	}
	if err := t.ev.preload(ctx, st.Samples); err != nil {
		return fail(err)
	}
	if t.cfg.UsesSurrogate() {
		m, err := surrogate.Load(bytes.NewReader(parts["model"]))
		if err != nil {
			return fail(err)
		}
		if got, want := m.MLP().Precision(), t.cfg.Surrogate.Precision.OrDefault(); got != want {
			return fail(fmt.Errorf("holds a %s surrogate, the config says surrogate.precision: %s (set it to %s to resume this training)", got, want, got))
		}
		tr, err := t.newSurrogateTrainer(m)
		if err != nil {
			return fail(err)
		}
		if err := tr.UnmarshalBinary(parts["trainer"]); err != nil {
			return fail(err)
		}
		t.tr, t.sdata = tr, surrogate.NewDataset(m)
		for _, s := range t.ev.samples {
			t.sdata.Append(s.X, s.Y)
		}
	}
	t.u, t.adam = st.U, adamX{m: st.AdamM, v: st.AdamV, t: st.AdamT}
	t.projected, t.epochs, t.confusion = st.Projected, st.Epochs, st.Confusion
	return e, nil
}
