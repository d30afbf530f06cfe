package rig

import (
	"context"
	"errors"
	"math"
	"regexp"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/drivers/transport"
	"github.com/insitu-lab/insitu/instruments/powermeter"
	"github.com/insitu-lab/insitu/instruments/smu"
)

// The SCPI instruments join rigs as parts: a source-measure unit is an
// actuator (its level) and a sensor (voltage, current and the compliance
// flag read back), a power meter a sensor.
func init() {
	RegisterPart("smu", PartType{Open: openSMU, Describe: describeSMU, Keys: func() any {
		c := smu.Config{Transport: transport.Config{Type: "serial"}}
		c.Defaults()
		c.Min, c.Max = nil, nil // ±range, whatever range is
		return &c
	}})
	RegisterPart("powermeter", PartType{Open: openPowerMeter, Describe: describePowerMeter, Keys: func() any {
		c := powermeter.Config{Transport: transport.Config{Type: "serial"}}
		c.Defaults()
		return &c
	}})
}

func decodeSMU(p insitu.Params) (smu.Config, error) {
	var c smu.Config
	err := Decode(p, &c)
	return c, err
}

func openSMU(ctx context.Context, p insitu.Params, _ map[string]Part) (Part, error) {
	c, err := decodeSMU(p)
	if err != nil {
		return nil, err
	}
	s, err := smu.Open(ctx, c)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// describeSMU makes the checks smu.Open makes before and while dialing,
// and returns what an open *smu.SMU reports: one coordinate, the level in
// volts within [min, max] (default ±range), and smu.OutputNames.
func describeSMU(p insitu.Params) (PartSpec, error) {
	c, err := DecodeChecked[smu.Config](p)
	err = errors.Join(err, besides(p, err, checkSCPI(c.IDN, c.Transport)))
	lo, hi := *c.Min, *c.Max
	if !(c.Range > 0 && -c.Range <= lo && lo <= hi && hi <= c.Range) || math.IsInf(c.Range, 0) {
		return PartSpec{}, err // the level's range is not known
	}
	in := insitu.Space{Names: []string{"voltage"}, Units: []string{"V"}, Lower: []float64{lo}, Upper: []float64{hi}}
	return PartSpec{In: in, Out: smu.OutputNames(), OutUnits: smu.OutputUnits()}, err
}

func decodePowerMeter(p insitu.Params) (powermeter.Config, error) {
	var c powermeter.Config
	err := Decode(p, &c)
	return c, err
}

func openPowerMeter(ctx context.Context, p insitu.Params, _ map[string]Part) (Part, error) {
	c, err := decodePowerMeter(p)
	if err != nil {
		return nil, err
	}
	pm, err := powermeter.Open(ctx, c)
	if err != nil {
		return nil, err
	}
	return pm, nil
}

// describePowerMeter makes the checks powermeter.Open makes before and
// while dialing; a PM100 has one output, the power in watts.
func describePowerMeter(p insitu.Params) (PartSpec, error) {
	c, err := DecodeChecked[powermeter.Config](p)
	err = errors.Join(err, besides(p, err, checkSCPI(c.IDN, c.Transport)))
	return PartSpec{Out: []string{"power"}, OutUnits: []string{"W"}}, err
}

// checkSCPI checks an instrument's transport section as transport.Dial
// does before it opens anything, and its identity pattern, which the SCPI
// client compiles only once connected. Problems are *insitu.FieldError at
// transport.type, transport.<type> or idn.
func checkSCPI(idn string, t transport.Config) error {
	var errs []error
	var err error
	switch t.Type {
	case "serial":
		c := t.Serial
		c.Defaults()
		err = c.Validate()
	case "lxi":
		c := t.LXI
		c.Defaults()
		err = c.Validate()
	case "usbtmc":
		c := t.USBTMC
		c.Defaults()
		err = c.Validate()
	default:
		errs = append(errs, insitu.FieldErrorf("transport.type", "%q: want serial, lxi or usbtmc", t.Type))
	}
	if err != nil {
		errs = append(errs, &insitu.FieldError{Key: "transport." + t.Type, Err: err})
	}
	if _, err := regexp.Compile(idn); err != nil {
		errs = append(errs, insitu.FieldErrorf("idn", "%q: expected identity pattern: %w", idn, err))
	}
	return errors.Join(errs...)
}
