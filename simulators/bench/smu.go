package bench

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/insitu-lab/insitu/drivers/scpi/emulator"
)

// SMUIDN is the SMU twin's identity: a Keithley 2400 command set, but a
// manufacturer and model that no identity check for real hardware accepts.
const SMUIDN = "insitu,MODEL 2400 twin,TWIN-SMU-0001,0.1"

// SMUConfig is the load the SMU twin drives: a resistor in parallel with a
// diode, I(V) = V/R + Is·(exp(V/(n·Vt)) − 1), plus Gaussian current noise.
type SMUConfig struct {
	Resistance  float64 `mapstructure:"resistance" doc:"Ω; default 1 kΩ"`
	DiodeIs     float64 `mapstructure:"diode_is" doc:"saturation current, A; default 1e-12"`
	NoDiode     bool    `mapstructure:"no_diode" doc:"a plain resistor"`
	DiodeN      float64 `mapstructure:"diode_n" doc:"ideality; default 1.5"`
	Temperature float64 `mapstructure:"temperature" doc:"K; default 300"`
	Noise       float64 `mapstructure:"noise" doc:"current noise std, A; default 1e-9"`
	Seed        uint64  `mapstructure:"seed" doc:"noise stream"`
	NoNoise     bool    `mapstructure:"no_noise" doc:"exact readings, for tests"`
}

func (c *SMUConfig) defaults() {
	if c.Resistance == 0 {
		c.Resistance = 1e3
	}
	if c.DiodeIs == 0 {
		c.DiodeIs = 1e-12
	}
	if c.NoDiode {
		c.DiodeIs = 0
	}
	if c.DiodeN == 0 {
		c.DiodeN = 1.5
	}
	if c.Temperature == 0 {
		c.Temperature = 300
	}
	if c.Noise == 0 && !c.NoNoise {
		c.Noise = 1e-9
	}
	if c.NoNoise {
		c.Noise = 0
	}
}

// SMUState is what the twin's front panel would show.
type SMUState struct {
	Output     bool
	Level      float64 // V
	Range      float64 // V
	Compliance float64 // A
	OffMode    string  // OUTP:SMOD
	Function   string  // SOUR:FUNC
	// Sense is the measured functions (SENS:FUNC), VOLT and/or CURR. A
	// function not measured reads as its programmed source value (VOLT) or
	// as not-a-number, as on a 2400.
	Sense      []string
	Concurrent bool // SENS:FUNC:CONC: more than one function measured
	Elements   []string
	Tripped    bool // the last reading was in compliance
}

// SMU is a Keithley 2400 twin driving the load model. Its emulator answers
// the command subset instruments/smu uses, with the 2400's *RST defaults.
type SMU struct {
	cfg SMUConfig
	in  *emulator.Instrument

	mu    sync.Mutex
	st    SMUState
	rng   *rand.Rand
	start time.Time
	sets  int // level sets received
	reads int // readings taken
}

const boltzmannOverQ = 8.617333262e-5 // V/K

// NewSMU builds the twin; opts (faults, terminator) go to the emulator.
func NewSMU(cfg SMUConfig, opts ...emulator.Option) (*SMU, error) {
	cfg.defaults()
	if !(cfg.Resistance > 0) || cfg.DiodeIs < 0 || !(cfg.DiodeN > 0) || !(cfg.Temperature > 0) || cfg.Noise < 0 {
		return nil, fmt.Errorf("smu twin: load model %+v: resistance, diode_n and temperature must be positive", cfg)
	}
	s := &SMU{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, 0x5a0)), start: time.Now()}
	s.reset()
	in, err := emulator.New(SMUIDN, s.table(), append(opts, emulator.WithReset(func() {
		s.mu.Lock()
		s.reset()
		s.mu.Unlock()
	}))...)
	if err != nil {
		return nil, err
	}
	s.in = in
	return s, nil
}

// reset sets the 2400's *RST state: output off, 0 V on the 21 V range,
// 105 µA compliance, current measured (concurrent measurement on), normal
// output-off mode. Callers hold mu.
func (s *SMU) reset() {
	s.st = SMUState{Range: 21, Compliance: 105e-6, OffMode: "NORM", Function: "VOLT",
		Sense: []string{"CURR"}, Concurrent: true,
		Elements: []string{"VOLT", "CURR", "RES", "TIME", "STAT"}}
}

// The 2400's status word bits (FORM:ELEM STAT) the twin reports.
const (
	statusFront      = 1 << 2  // front terminals selected (the *RST default)
	statusCompliance = 1 << 3  // the source is in compliance
	statusVMeas      = 1 << 11 // voltage measured
	statusIMeas      = 1 << 12 // current measured
	statusVSour      = 1 << 14 // sourcing voltage
)

// senseFunctions parses a SENS:FUNC argument list ("VOLT","CURR:DC") into
// the functions the twin measures.
func senseFunctions(a string) ([]string, error) {
	var fs []string
	for e := range strings.SplitSeq(a, ",") {
		e = strings.ToUpper(strings.Trim(strings.TrimSpace(e), `"'`))
		e, _, _ = strings.Cut(e, ":") // VOLT:DC, CURR:DC
		switch e {
		case "VOLT", "VOLTAGE":
			fs = append(fs, "VOLT")
		case "CURR", "CURRENT":
			fs = append(fs, "CURR")
		default:
			return nil, emulator.Err(-224, "Illegal parameter value; twin measures VOLT and CURR only")
		}
	}
	return fs, nil
}

// sensing reports whether function f is measured. Callers hold mu.
func (s *SMU) sensing(f string) bool { return slices.Contains(s.st.Sense, f) }

// Instrument is the emulated instrument to serve.
func (s *SMU) Instrument() *emulator.Instrument { return s.in }

// State returns a copy of the twin's state.
func (s *SMU) State() SMUState {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	st.Elements = append([]string(nil), s.st.Elements...)
	st.Sense = append([]string(nil), s.st.Sense...)
	return st
}

// LevelSets is how many source level sets (SOUR:VOLT:LEV) the twin has
// received, and Readings how many readings it has taken.
func (s *SMU) LevelSets() int { s.mu.Lock(); defer s.mu.Unlock(); return s.sets }

// Readings is how many readings (READ?, MEAS?) the twin has taken.
func (s *SMU) Readings() int { s.mu.Lock(); defer s.mu.Unlock(); return s.reads }

// Current is the load's noiseless current at v.
func (s *SMU) Current(v float64) float64 {
	i := v / s.cfg.Resistance
	if s.cfg.DiodeIs > 0 {
		i += s.cfg.DiodeIs * math.Expm1(v/(s.cfg.DiodeN*boltzmannOverQ*s.cfg.Temperature))
	}
	return i
}

// operate returns the voltage across the load and the current through it
// when the source is set to level with compliance limit: in compliance, the
// current is clamped and the voltage falls to where the (monotone) load
// draws exactly the limit, found by bisection.
func (s *SMU) operate(level, limit float64) (v, i float64, tripped bool) {
	i = s.Current(level)
	if math.Abs(i) <= limit {
		return level, i, false
	}
	target := math.Copysign(limit, i)
	lo, hi := 0.0, level
	for range 100 {
		mid := (lo + hi) / 2
		if math.Abs(s.Current(mid)) < limit {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo, target, true
}

func parseNumber(args string, lo, hi float64) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSpace(args), 64)
	if err != nil {
		return 0, emulator.Err(-104, "Data type error")
	}
	if math.IsNaN(v) || v < lo || v > hi {
		return 0, emulator.Err(-222, "Parameter data out of range")
	}
	return v, nil
}

func parseBool(args string) (bool, error) {
	switch strings.ToUpper(strings.TrimSpace(args)) {
	case "ON", "1":
		return true, nil
	case "OFF", "0":
		return false, nil
	}
	return false, emulator.Err(-224, "Illegal parameter value")
}

func f(v float64) string { return strconv.FormatFloat(v, 'E', 6, 64) }

// table is the 2400 command subset. Handlers run one at a time (the
// emulator serializes), but take mu so State can be read concurrently.
func (s *SMU) table() emulator.Table {
	lock := func(h func(args string) (string, error)) emulator.Handler {
		return func(args string) (string, error) {
			s.mu.Lock()
			defer s.mu.Unlock()
			return h(args)
		}
	}
	ignore := func(string) (string, error) { return "", nil }
	return emulator.Table{
		"SOURce:FUNCtion[:MODE]": lock(func(a string) (string, error) {
			if m := strings.ToUpper(a); m != "VOLT" && m != "VOLTAGE" {
				return "", emulator.Err(-224, "Illegal parameter value; twin sources voltage only")
			}
			s.st.Function = "VOLT"
			return "", nil
		}),
		"SOURce:FUNCtion[:MODE]?": lock(func(string) (string, error) { return s.st.Function, nil }),
		"SOURce:VOLTage:MODE": lock(func(a string) (string, error) {
			if m := strings.ToUpper(a); m != "FIX" && m != "FIXED" {
				return "", emulator.Err(-224, "Illegal parameter value; twin supports FIX only")
			}
			return "", nil
		}),
		"SOURce:VOLTage:RANGe": lock(func(a string) (string, error) {
			v, err := parseNumber(a, -210, 210)
			if err != nil {
				return "", err
			}
			// The 2400's ranges: 0.2, 2, 20 and 200 V (shown as 21, 210).
			r := 210.0
			for _, x := range []float64{0.21, 2.1, 21} {
				if math.Abs(v) <= x {
					r = x
					break
				}
			}
			if math.Abs(s.st.Level) > r {
				return "", emulator.Err(-221, "Settings conflict; level exceeds range")
			}
			s.st.Range = r
			return "", nil
		}),
		"SOURce:VOLTage:RANGe?": lock(func(string) (string, error) { return f(s.st.Range), nil }),
		"SOURce:VOLTage[:LEVel][:IMMediate][:AMPLitude]": lock(func(a string) (string, error) {
			v, err := parseNumber(a, -1.05*s.st.Range, 1.05*s.st.Range)
			if err != nil {
				return "", err
			}
			s.st.Level = v
			s.sets++
			return "", nil
		}),
		"SOURce:VOLTage[:LEVel][:IMMediate][:AMPLitude]?": lock(func(string) (string, error) { return f(s.st.Level), nil }),
		"SOURce:VOLTage:PROTection[:LEVel]":               ignore,
		"SENSe:FUNCtion[:ON]": lock(func(a string) (string, error) {
			fs, err := senseFunctions(a)
			if err != nil {
				return "", err
			}
			if !s.st.Concurrent {
				if len(fs) > 1 {
					return "", emulator.Err(-221, "Settings conflict; concurrent measurement off")
				}
				s.st.Sense = nil
			}
			for _, f := range fs {
				if !s.sensing(f) {
					s.st.Sense = append(s.st.Sense, f)
				}
			}
			return "", nil
		}),
		"SENSe:FUNCtion:OFF": lock(func(a string) (string, error) {
			fs, err := senseFunctions(a)
			if err != nil {
				return "", err
			}
			s.st.Sense = slices.DeleteFunc(s.st.Sense, func(f string) bool { return slices.Contains(fs, f) })
			return "", nil
		}),
		"SENSe:FUNCtion[:ON]?": lock(func(string) (string, error) {
			q := make([]string, len(s.st.Sense))
			for k, f := range s.st.Sense {
				q[k] = `"` + f + `:DC"`
			}
			return strings.Join(q, ","), nil
		}),
		"SENSe:FUNCtion:CONCurrent": lock(func(a string) (string, error) {
			on, err := parseBool(a)
			if err != nil {
				return "", err
			}
			s.st.Concurrent = on
			if !on && len(s.st.Sense) > 1 {
				s.st.Sense = s.st.Sense[:1]
			}
			return "", nil
		}),
		"SENSe:CURRent[:DC]:RANGe:AUTO": ignore,
		"SENSe:CURRent[:DC]:PROTection[:LEVel]": lock(func(a string) (string, error) {
			v, err := parseNumber(a, 1e-9, 1.05)
			if err != nil {
				return "", err
			}
			s.st.Compliance = v
			return "", nil
		}),
		"SENSe:CURRent[:DC]:PROTection[:LEVel]?": lock(func(string) (string, error) { return f(s.st.Compliance), nil }),
		"SENSe:CURRent[:DC]:PROTection:TRIPped?": lock(func(string) (string, error) {
			if s.st.Tripped {
				return "1", nil
			}
			return "0", nil
		}),
		"FORMat:ELEMents[:SENSe]": lock(func(a string) (string, error) {
			var els []string
			for e := range strings.SplitSeq(a, ",") {
				e = strings.ToUpper(strings.TrimSpace(e))
				switch e {
				case "VOLT", "VOLTAGE":
					els = append(els, "VOLT")
				case "CURR", "CURRENT":
					els = append(els, "CURR")
				case "RES", "RESISTANCE":
					els = append(els, "RES")
				case "TIME":
					els = append(els, "TIME")
				case "STAT", "STATUS":
					els = append(els, "STAT")
				default:
					return "", emulator.Err(-224, "Illegal parameter value")
				}
			}
			s.st.Elements = els
			return "", nil
		}),
		"FORMat:ELEMents[:SENSe]?": lock(func(string) (string, error) { return strings.Join(s.st.Elements, ","), nil }),
		"OUTPut[:STATe]": lock(func(a string) (string, error) {
			on, err := parseBool(a)
			if err != nil {
				return "", err
			}
			s.st.Output = on
			if !on {
				s.st.Tripped = false
			}
			return "", nil
		}),
		"OUTPut[:STATe]?": lock(func(string) (string, error) {
			if s.st.Output {
				return "1", nil
			}
			return "0", nil
		}),
		"OUTPut:SMODe": lock(func(a string) (string, error) {
			m := strings.ToUpper(a)
			switch m {
			case "HIMP", "HIMPEDANCE":
				m = "HIMP"
			case "NORM", "NORMAL", "ZERO", "GUAR", "GUARD":
				m = m[:4]
			default:
				return "", emulator.Err(-224, "Illegal parameter value")
			}
			s.st.OffMode = m
			return "", nil
		}),
		"OUTPut:SMODe?":           lock(func(string) (string, error) { return s.st.OffMode, nil }),
		"READ?":                   lock(func(string) (string, error) { return s.read() }),
		"MEASure[:CURRent[:DC]]?": lock(func(string) (string, error) { return s.read() }),
	}
}

// read is one READ?: the 2400 refuses it with the output off (+803). In
// compliance the source is limited by the current limit: the voltage
// across the load is where it draws exactly the limit (I_comp·R for a
// resistor), and the status word's compliance bit is set. The VOLT element
// is that voltage only when voltage is measured; otherwise it is the
// programmed level, which the source did not reach. Callers hold mu.
func (s *SMU) read() (string, error) {
	if !s.st.Output {
		return "", emulator.Err(803, "Output disabled")
	}
	s.reads++
	v, i, tripped := s.operate(s.st.Level, s.st.Compliance)
	if !tripped && s.cfg.Noise > 0 {
		i += s.cfg.Noise * s.rng.NormFloat64()
	}
	s.st.Tripped = tripped
	status := uint32(statusFront | statusVSour)
	if tripped {
		status |= statusCompliance
	}
	if s.sensing("VOLT") {
		status |= statusVMeas
	} else {
		v = s.st.Level
	}
	if s.sensing("CURR") {
		status |= statusIMeas
	}
	out := make([]string, len(s.st.Elements))
	for k, e := range s.st.Elements {
		switch e {
		case "VOLT":
			out[k] = f(v)
		case "CURR":
			if s.sensing("CURR") {
				out[k] = f(i)
			} else {
				out[k] = "+9.910000E+37"
			}
		case "RES":
			out[k] = "+9.910000E+37" // not measured: SCPI not-a-number
		case "TIME":
			out[k] = f(time.Since(s.start).Seconds())
		case "STAT":
			out[k] = f(float64(status))
		}
	}
	return strings.Join(out, ","), nil
}
