package live

import (
	"math"
	"strconv"
	"time"

	"github.com/insitu-lab/insitu/safety"
)

// Float is a float64 that encodes NaN and ±Inf as JSON null, with 7
// significant digits (enough to draw, and a third of the bytes).
type Float float64

// MarshalJSON encodes f as a number, or null when it is not finite.
func (f Float) MarshalJSON() ([]byte, error) {
	v := float64(f)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, v, 'g', 7, 64), nil
}

// UnmarshalJSON reads a number, or null as NaN.
func (f *Float) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*f = Float(math.NaN())
		return nil
	}
	v, err := strconv.ParseFloat(string(b), 64)
	*f = Float(v)
	return err
}

func nan() Float { return Float(math.NaN()) }

// State is what /api/state returns and what every server-sent event
// carries. In an event, Queries holds only the points the client has not
// had yet, starting at index QueriesFrom (likewise Iterations), and Input
// and Output are left out when unchanged since the client's last event.
type State struct {
	Seq      uint64    `json:"seq"`  // increases with every change the server sees
	Time     time.Time `json:"time"` // of this state
	Run      RunInfo   `json:"run"`
	Status   string    `json:"status"`   // the journal's: running, finished, interrupted, failed
	Paused   bool      `json:"paused"`   // PAUSE is in force
	Holding  bool      `json:"holding"`  // ...and the run is waiting in it
	Stopping bool      `json:"stopping"` // STOP was requested
	Ended    bool      `json:"ended"`    // the run is over: this is the server's last state
	Progress Progress  `json:"progress"`
	Guard    *Counters `json:"guard"` // nil before the guard exists

	QueriesFrom    int            `json:"queries_from"`
	Queries        []Point        `json:"queries"`
	IterationsFrom int            `json:"iterations_from"`
	Iterations     []Iteration    `json:"iterations"`
	Events         []Event        `json:"events"`       // the last few safety events, oldest first
	EventCounts    map[string]int `json:"event_counts"` // every safety event of the run, by kind
	// The surrogate's prediction errors, one per query it predicted, from
	// PredictionsFrom on (like Queries).
	PredictionsFrom int          `json:"predictions_from"`
	Predictions     []Prediction `json:"predictions"`

	Input  *Vector `json:"input,omitempty"`  // the best input (the last one when queries have no objective)
	Output *Vector `json:"output,omitempty"` // the last measured output
	Error  string  `json:"error,omitempty"`  // why the journal could not be read, if it could not
}

// RunInfo describes the run; it does not change while the server runs,
// but for Direction, read from the journal.
type RunInfo struct {
	Command   string `json:"command"` // run, resume or train
	Name      string `json:"name"`    // the config's name
	Method    string `json:"method"`
	Kind      string `json:"kind"` // the black box
	Dir       string `json:"dir"`  // the run directory
	Direction string `json:"direction"`
	Objective bool   `json:"objective"` // queries have a scalar objective (false for a training)
	// ObjectiveKind and ObjectiveUnit label the objective's axis: the
	// config's objective.kind (distance, fraction, …) and its unit, "" when
	// unknown.
	ObjectiveKind string `json:"objective_kind,omitempty"`
	ObjectiveUnit string `json:"objective_unit,omitempty"`
	Budget        int    `json:"budget"` // queries; 0 if none
	Iterations    int    `json:"iterations"`
	Unit          string `json:"unit"` // what an iteration is: "iteration" or "epoch"
	Inputs        int    `json:"inputs"`
	Outputs       int    `json:"outputs"`
}

// Progress is where the run stands.
type Progress struct {
	Measured   int   `json:"measured"` // queries with a result (done, remeasured or failed)
	Begun      int   `json:"begun"`    // queries in the journal, in flight included
	Failed     int   `json:"failed"`
	Remeasured int   `json:"remeasured"`
	Budget     int   `json:"budget"`
	Iteration  int   `json:"iteration"` // the last recorded; -1 before the first
	Best       Float `json:"best"`
	BestQuery  int64 `json:"best_query"` // journal id of the best query; 0 before the first
	QPS        Float `json:"qps"`        // queries per second, recently
	ETA        Float `json:"eta_s"`      // seconds left; null when unknown
	Elapsed    Float `json:"elapsed_s"`  // since the server started
}

// Point is one measured query.
type Point struct {
	N         int    `json:"n"`  // how many queries had a result, this one included
	ID        int64  `json:"id"` // journal id
	Iteration int    `json:"it"`
	Role      string `json:"role"`
	F         Float  `json:"f"`    // objective; null if the query failed
	Best      Float  `json:"best"` // best objective so far
	Failed    bool   `json:"failed,omitempty"`
	// Marks are the instants the devices reported while answering
	// (written, shown, settled, exposure_start, exposure_end, measured, and
	// the loop's start and end), in seconds after the query's start; nil
	// when the journal keeps none.
	Marks map[string]Float `json:"marks,omitempty"`
}

// Prediction is how far the surrogate's prediction, made before a query,
// was from its measurement (in the surrogate's normalized output units).
type Prediction struct {
	N   int   `json:"n"`  // the query's Point.N
	ID  int64 `json:"id"` // its journal id
	Err Float `json:"err"`
}

// Iteration is one recorded iteration (an epoch for a training).
type Iteration struct {
	Iteration  int       `json:"it"`
	Queries    int       `json:"queries"`
	Best       Float     `json:"best"` // a training: test accuracy
	Step       Float     `json:"step"` // a training: train accuracy
	TrainLoss  Float     `json:"train_loss"`
	Controller Float     `json:"controller_s"`
	Box        Float     `json:"box_s"`
	Time       time.Time `json:"time"`
}

// Event is a safety event from the journal.
type Event struct {
	ID     int64     `json:"id"`
	Time   time.Time `json:"time"`
	Kind   string    `json:"kind"`
	Detail string    `json:"detail"`
	Name   string    `json:"name,omitempty"`
	Value  Float     `json:"value"`
}

// Counters are the guard's counters.
type Counters struct {
	Attempted        uint64            `json:"attempted"`
	Passed           uint64            `json:"passed"`
	Rejected         uint64            `json:"rejected"`
	RejectedBy       map[string]uint64 `json:"rejected_by"`
	Inner            uint64            `json:"device_queries"`
	Clamped          uint64            `json:"clamped"`
	Ramped           uint64            `json:"ramped"`
	RampSteps        uint64            `json:"ramp_steps"`
	RateWaits        uint64            `json:"rate_waits"`
	RateWaited       Float             `json:"rate_waited_s"`
	Trips            uint64            `json:"trips"`
	SafeStates       uint64            `json:"safe_states"`
	OutputViolations uint64            `json:"output_violations"`
	Saturated        uint64            `json:"saturated"`
}

func countersOf(c safety.Counters) *Counters {
	return &Counters{
		Attempted: c.Attempted, Passed: c.Passed, Rejected: c.RejectedTotal(), RejectedBy: c.Rejected,
		Inner: c.Inner, Clamped: c.Clamped, Ramped: c.Ramped, RampSteps: c.RampSteps,
		RateWaits: c.RateWaits, RateWaited: Float(c.RateWaited.Seconds()), Trips: c.Trips,
		SafeStates: c.SafeStates, OutputViolations: c.OutputViolations, Saturated: c.Saturated,
	}
}

// Vector is an input or an output as the page draws it: an image of
// Rows×Cols pixels and bars for the components that are not pixels.
type Vector struct {
	ID   int64  `json:"id"`   // journal id of the query
	N    int    `json:"n"`    // its position among the measured queries
	Kind string `json:"kind"` // "phase" (cyclic colours), "image" (intensity) or "bars"
	Rows int    `json:"rows,omitempty"`
	Cols int    `json:"cols,omitempty"`
	// Pixels is the image, row-major, one byte per pixel, base64: for a
	// phase map (x−Min)/(Max−Min) wrapped into [0, 1) times 256, for an
	// image its linear scale from Min (0) to Max (255).
	Pixels string `json:"pixels,omitempty"`
	Min    Float  `json:"min"`
	Max    Float  `json:"max"`
	// The bars: the components outside the image (at most maxBars), with
	// their names and, for inputs, their bounds.
	Names     []string `json:"names,omitempty"`
	Values    []Float  `json:"values,omitempty"`
	Lo        []Float  `json:"lo,omitempty"`
	Hi        []Float  `json:"hi,omitempty"`
	BarsTotal int      `json:"bars_total,omitempty"` // how many there are, when more than shown
	// Unit is the unit every bar shares, ImageUnit the pixels'; "" when
	// they differ or are unknown.
	Unit      string `json:"unit,omitempty"`
	ImageUnit string `json:"image_unit,omitempty"`
}
