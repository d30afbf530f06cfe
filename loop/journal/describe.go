package journal

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
)

// Description is what a run measures, stored at its start (Meta or
// SetDescription) so that the journal explains itself: exports and reports
// read the names, units and bounds from here, never from the describers of
// whichever binary reads the journal, whose config keys and parts may have
// changed since.
//
// Every query's x is a little-endian float64 vector with one entry per
// Inputs variable, in order, and its y one per Outputs variable.
type Description struct {
	Box       string     `json:"box"`  // the black box's name (its Spec's)
	Kind      string     `json:"kind"` // the config's blackbox.kind
	Inputs    []Variable `json:"inputs"`
	Outputs   []Variable `json:"outputs"`
	Objective Objective  `json:"objective"`
	// Devices are the instruments behind the box (a rig's parts), with
	// the identity each reported at the start of the run; empty for a
	// software twin.
	Devices    []Device `json:"devices,omitempty"`
	ConfigHash string   `json:"config_sha256"` // ConfigHash of the journal's config
	Build      Build    `json:"build"`         // the insitu binary that started the run
}

// Variable is one input coordinate or output component.
type Variable struct {
	Name string `json:"name"`
	// Role is what the variable is to the run: for inputs "setpoint" (an
	// optimized setting), "data" or "parameter" (a trained network's input
	// u and parameters θ); for outputs "measurement".
	Role string `json:"role"`
	Unit string `json:"unit,omitempty"` // "" when dimensionless or unknown
	// Lower and Upper bound the variable: an input's bounds as the guard
	// enforces them, an output's plausible range (safety.output_ranges);
	// nil when unbounded.
	Lower    *float64 `json:"lower,omitempty"`
	Upper    *float64 `json:"upper,omitempty"`
	Periodic bool     `json:"periodic,omitempty"` // an angle whose bounds are one setting
	// Shape is the variable's array shape per query; empty: a scalar.
	Shape []int `json:"shape"`
	// DType is the stored type, "<f8" (little-endian float64).
	DType string `json:"dtype"`
	// Source is the device the variable belongs to (a rig part's name),
	// "" for a software twin.
	Source string `json:"source,omitempty"`
}

// Roles of Variable.
const (
	RoleSetpoint    = "setpoint"
	RoleData        = "data"
	RoleParameter   = "parameter"
	RoleMeasurement = "measurement"
)

// Objective is the scalar a run optimizes, computed from the outputs.
type Objective struct {
	Kind      string    `json:"kind,omitempty"` // the config's objective.kind; "" for a training
	Direction Direction `json:"direction"`
	Unit      string    `json:"unit,omitempty"`
}

// Device is one instrument: its name in the config, its type and what it
// said it is (an SCPI instrument's *IDN? reply, a camera's vendor, model
// and serial), or why it said nothing.
type Device struct {
	Name     string `json:"name"`
	Type     string `json:"type,omitempty"`
	Identity string `json:"identity,omitempty"`
	Error    string `json:"error,omitempty"`
}

// Build identifies the insitu binary: its version string, the main
// module's version, the VCS revision and time it was built from (and
// whether the tree had changes), and the Go version.
type Build struct {
	Version   string `json:"version"`
	Module    string `json:"module,omitempty"`
	Revision  string `json:"vcs_revision,omitempty"`
	Time      string `json:"vcs_time,omitempty"`
	Modified  bool   `json:"vcs_modified,omitempty"`
	GoVersion string `json:"go_version,omitempty"`
}

// ErrNoDescription: the journal holds no Description (it is older than
// schema version 3, or its run stored none); a reader falls back to
// describing the journal's config with its own binary, and says so.
var ErrNoDescription = errors.New("the journal holds no description of its variables")

// Describe returns the run's stored Description, checked against its
// checksum; an error matching ErrNoDescription when there is none.
func (j *Journal) Describe(ctx context.Context) (Description, error) {
	var d Description
	err := j.read(ctx, "describe", func(ctx context.Context, c *sql.Conn) error {
		v, ok, err := j.readMetaValue(ctx, c, keyDescription)
		if err != nil {
			return err
		}
		if !ok {
			return ErrNoDescription
		}
		if err := json.Unmarshal([]byte(v), &d); err != nil {
			return corruptf("meta %s: %v", keyDescription, err)
		}
		return nil
	})
	return d, err
}

// SetDescription stores d, committed at once, unless the journal already
// holds a description: a run is described by its start, and a resume does
// not rewrite it.
func (j *Journal) SetDescription(ctx context.Context, d Description) error {
	b, err := json.Marshal(d)
	if err != nil {
		return j.errorf("set description", err)
	}
	return j.write(ctx, "set description", commitNow, func(ctx context.Context, c *sql.Conn) error {
		var n int
		if err := c.QueryRowContext(ctx, "SELECT COUNT(*) FROM meta WHERE key = ?", keyDescription).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("the journal already holds a description")
		}
		return putMeta(ctx, c, keyDescription, string(b))
	})
}

// InputNames are the names of the inputs, one per coordinate of x.
func (d Description) InputNames() []string { return names(d.Inputs) }

// OutputNames are the names of the outputs, one per component of y.
func (d Description) OutputNames() []string { return names(d.Outputs) }

func names(vs []Variable) []string {
	if vs == nil {
		return nil
	}
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = v.Name
	}
	return s
}
