// Package export turns a run's journal into the files other tools read:
// NetCDF for xarray, Bluesky event-model documents, CSV for pandas and
// spreadsheets, and .npy arrays for NumPy. Every format carries the names,
// units and roles of the inputs and outputs, the objective, each query's
// iteration, role, status and timestamps, and the run's metadata (method,
// seed, config, status, the insitu version and the devices), so that a
// file explains itself without the journal or this program.
package export

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/loop"
	"github.com/insitu-lab/insitu/loop/journal"
)

// Variable is one input coordinate or output component of a run.
type Variable struct {
	Name string
	// Role: for inputs "setpoint" (an optimized setting), "data" or
	// "parameter" (a trained network's input u and parameters θ); for
	// outputs "measurement".
	Role     string
	Unit     string   // "" when dimensionless or unknown
	Lower    *float64 // an input's bounds; nil when unbounded or unknown
	Upper    *float64
	Periodic bool
	Source   string // the device (a rig part's name); "" for a twin
}

// Roles of a Variable.
const (
	RoleSetpoint    = "setpoint"
	RoleData        = "data"
	RoleParameter   = "parameter"
	RoleMeasurement = "measurement"
)

// Device is an instrument behind the black box and the identity it gave.
type Device struct {
	Name, Type, Identity string
}

// Description is what a run measured: its variables, objective and
// devices.
type Description struct {
	Box            string // the black box's name
	Kind           string // the config's blackbox.kind
	Inputs         []Variable
	Outputs        []Variable
	ObjectiveKind  string // the config's objective.kind; "" for a training
	ObjectiveUnit  string
	Devices        []Device
	ConfigHash     string // SHA-256 of the config, hex
	Version        string // insitu that wrote the journal
	DescribedLater bool   // the journal holds no description: this binary described its config
}

// Run is a journal read whole.
type Run struct {
	Dir        string
	Meta       journal.Meta
	Config     []byte // the resolved config, YAML
	Name       string // the config's name (or the directory's)
	Training   bool   // an `insitu train` run: its iterations are epochs, Best is the test accuracy
	Problem    Problem
	Desc       Description
	Queries    []journal.Query
	Iterations []journal.Iteration
	Events     []journal.EventRecord
}

// Problem is what a run optimizes: runs of one problem can be compared and
// averaged, runs of different problems never.
type Problem struct {
	Name      string // the config's name
	Objective string // the objective's kind; "accuracy" for a training
	Direction journal.Direction
	Training  bool
}

func (p Problem) String() string {
	dir := "minimized"
	if p.Direction == journal.Maximize {
		dir = "maximized"
	}
	if p.Training {
		return fmt.Sprintf("%s (training: test accuracy, %s)", p.Name, dir)
	}
	return fmt.Sprintf("%s (%s, %s)", p.Name, p.Objective, dir)
}

// ProblemOf is the problem of a run from its metadata and config; dir
// names the run when the config has no name.
func ProblemOf(dir string, m journal.Meta, config []byte) Problem {
	var top struct {
		Name      string         `yaml:"name"`
		Objective map[string]any `yaml:"objective"`
	}
	_ = yaml.Unmarshal(config, &top)
	training, _ := loop.IsTrainingDoc(config)
	p := Problem{Name: top.Name, Direction: m.Direction, Training: training}
	if p.Direction == "" {
		p.Direction = journal.Minimize
	}
	if p.Name == "" {
		p.Name = m.Kind
	}
	if p.Name == "" {
		p.Name = filepath.Base(dir)
	}
	if training {
		p.Objective = "accuracy"
	} else if k, _ := top.Objective["kind"].(string); k != "" {
		p.Objective = k
	} else {
		p.Objective = "distance" // the default kind
	}
	return p
}

// Load reads the journal in dir whole, read-only.
func Load(ctx context.Context, dir string) (*Run, error) {
	j, err := journal.OpenReadOnly(dir)
	if err != nil {
		return nil, err
	}
	defer j.Close()
	r := &Run{Dir: dir}
	if r.Meta, err = j.Meta(ctx); err != nil {
		return nil, err
	}
	if r.Config, err = j.Config(ctx); err != nil {
		return nil, err
	}
	if r.Queries, err = j.Queries(ctx); err != nil {
		return nil, err
	}
	if r.Iterations, err = j.Iterations(ctx); err != nil {
		return nil, err
	}
	if r.Events, err = j.Events(ctx); err != nil {
		return nil, err
	}
	r.Problem = ProblemOf(dir, r.Meta, r.Config)
	r.Name, r.Training = r.Problem.Name, r.Problem.Training
	r.Desc, err = describeConfig(ctx, r, j.Path())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	return r, nil
}

// describeConfig describes a journal that holds no description of its
// variables: from its config, with this binary's describers, which open
// no device. Output units and device identities are then unknown.
func describeConfig(ctx context.Context, r *Run, where string) (Description, error) {
	sum := sha256.Sum256(r.Config)
	d := Description{Kind: r.Meta.Kind, ConfigHash: hex.EncodeToString(sum[:]), Version: r.Meta.Version, DescribedLater: true}
	var top struct {
		BlackBox  map[string]any `yaml:"blackbox"`
		Objective map[string]any `yaml:"objective"`
	}
	if err := yaml.Unmarshal(r.Config, &top); err != nil {
		return d, fmt.Errorf("the journal's config: %w", err)
	}
	if !r.Training {
		d.ObjectiveKind = r.Problem.Objective
	}
	kind, _ := top.BlackBox["kind"].(string)
	d.Kind = kind
	values := map[string]any{}
	for k, v := range top.BlackBox {
		if k != "kind" {
			values[k] = v
		}
	}
	p := insitu.Params{Kind: kind, Values: values, File: where, Prefix: "blackbox"}
	spec, err := insitu.Describe(ctx, p)
	if err != nil {
		return d, fmt.Errorf("the journal holds no description of its variables, and this build cannot describe its config: %w", err)
	}
	d.Box = spec.Name
	du := -1
	if r.Training {
		du = trainingInputs(ctx, r.Config, p)
	}
	for i := range spec.In.Dim() {
		v := Variable{Name: spec.In.Name(i), Role: RoleSetpoint, Periodic: spec.In.IsPeriodic(i), Source: source(kind, spec.In.Name(i))}
		if i < len(spec.In.Units) {
			v.Unit = spec.In.Units[i]
		}
		lo, hi := spec.In.Lower[i], spec.In.Upper[i]
		if !math.IsInf(lo, 0) {
			v.Lower = &lo
		}
		if !math.IsInf(hi, 0) {
			v.Upper = &hi
		}
		switch {
		case r.Training && du < 0:
			v.Role = "" // unknown
		case r.Training && i < du:
			v.Role = RoleData
		case r.Training:
			v.Role = RoleParameter
		}
		d.Inputs = append(d.Inputs, v)
	}
	for _, name := range spec.Out {
		d.Outputs = append(d.Outputs, Variable{Name: name, Role: RoleMeasurement, Source: source(kind, name)})
	}
	return d, nil
}

// source is the rig part a variable belongs to (the prefix of its name).
func source(kind, name string) string {
	if kind != "rig" {
		return ""
	}
	part, _, ok := strings.Cut(name, "/")
	if !ok {
		return ""
	}
	return part
}

// trainingInputs is the number of data inputs u at the front of a
// training's [u; θ]: the config's du, else what a twin says (loop.Splitter);
// -1 when unknown (hardware is not opened to ask).
func trainingInputs(ctx context.Context, config []byte, p insitu.Params) int {
	var top struct {
		Du int `yaml:"du"`
	}
	if yaml.Unmarshal(config, &top) == nil && top.Du > 0 {
		return top.Du
	}
	if insitu.Describes(p.Kind) {
		return -1
	}
	b, err := insitu.New(ctx, p)
	if err != nil {
		return -1
	}
	if c, ok := b.(io.Closer); ok {
		defer c.Close()
	}
	if s, ok := b.(loop.Splitter); ok {
		du, _ := s.Split()
		return du
	}
	return -1
}
