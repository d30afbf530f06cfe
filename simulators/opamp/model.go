package opamp

import (
	"math"
)

// Testbench: supply, reference current, load and common-mode voltage of
// the op-amp sizing task of the GradPIE paper (arXiv 2501.19161, appendix).
const (
	VDD  = 1.8   // V
	Iref = 20e-6 // A, into the diode-connected bias NMOS M8
	CL   = 2e-12 // F, load
	VCM  = 0.9   // V, input common mode; the DC servo also holds the output here
)

// Process holds the device parameters both backends share: a generic
// square-law (SPICE level 1) process of our own, not a foundry PDK (the
// SkyWater 130 nm PDK the paper used is not available). The ngspice model
// cards are written from these numbers, so the two backends describe the
// same transistors.
type Process struct {
	KPn, KPp float64 // µ·Cox, A/V²
	VTn, VTp float64 // threshold voltages, V (VTp < 0); no body effect (GAMMA = 0)
	// Channel-length modulation scales as 1/L: λ = LambdaN·1µm/L, V⁻¹.
	LambdaN, LambdaP float64
	Cox              float64 // gate capacitance per area, F/µm², for M6's Cgs
	Cj               float64 // drain junction capacitance per width, F/µm
}

// DefaultProcess is a long-channel-like 1.8 V process.
func DefaultProcess() Process {
	return Process{
		KPn: 200e-6, KPp: 80e-6,
		VTn: 0.45, VTp: -0.45,
		LambdaN: 0.2, LambdaP: 0.2,
		Cox: 8.5e-15,
		Cj:  1e-15,
	}
}

// Sizing is one design, with the ratio already rounded. Widths and lengths
// in µm, Cc in F.
type Sizing struct {
	Wb, Lb float64 // bias group: M8 (reference diode), M5 (tail), M7 = R×Wb (second-stage sink)
	Wd, Ld float64 // differential pair M1, M2
	Wl, Ll float64 // PMOS mirror load M3, M4
	Wg, Lg float64 // PMOS gain stage M6
	R      int     // 1, 2 or 3
	Cc     float64 // Miller capacitor, F
}

// SizingOf reads an input vector (µm, µm, …, r, pF) and rounds r to the
// nearest of {1, 2, 3} (halves away from zero: 1.5 → 2, 2.5 → 3).
func SizingOf(x []float64) Sizing {
	return Sizing{
		Wb: x[0], Lb: x[1], Wd: x[2], Ld: x[3], Wl: x[4], Ll: x[5], Wg: x[6], Lg: x[7],
		R:  RoundRatio(x[8]),
		Cc: x[9] * 1e-12,
	}
}

// RoundRatio maps the relaxed ratio to {1, 2, 3}.
func RoundRatio(r float64) int {
	return int(min(3, max(1, math.Round(r))))
}

// SmallSignal is the two-stage amplifier reduced to its two high-impedance
// nodes: node 1 (first-stage output, M6's gate) and the output; with the
// operating point it came from.
type SmallSignal struct {
	OP
	Gm1, Gm6 float64 // first-stage transconductance (pair, mirror, tail), M6's gm; S
	G1, G2   float64 // node conductances: ≈ gds2+gds4, gds6+gds7; S
	C1, C2   float64 // node capacitances to ground (C2 includes CL), F
	Cc       float64 // F
}

// OP is the square-law operating point with the DC servo holding the
// output at VCM (the testbench's bias).
type OP struct {
	VGS8, VTail, V1, VD1 float64 // M8's gate-source, the pair's source, node 1, M1's drain (= VDD − VSG3); V
	I1, I2, I5, I7       float64 // drain currents of M1, M2, M5, M7 (= M6); A
	K                    float64 // mirror ratio I4/I3 = (1+λl·VSG6)/(1+λl·VSG3): M4's and M3's V_SD differ
}

// opIterations of the fixed point below: it contracts by about λ·V_ov per
// pass, so 40 passes reach rounding error everywhere in the box.
const opIterations = 40

// Operating point of sizing s: SPICE level-1 square law in saturation,
// I = (KP/2)(W/L)·V_ov²·(1 + λ·V_DS), λ = Lambda·1µm/L. The mirrors copy
// Iref up to their (1 + λ·V_DS) factors, which is why V_DS matters: M7 sees
// VCM, M5 the pair's source. It is a fixed point iterated a fixed number of
// times (deterministic and cheap); V_ov is floored at 1 mV so that a device
// pushed out of saturation gives finite, if inaccurate, numbers.
func (p Process) Operating(s Sizing) OP {
	bb := p.KPn * s.Wb / s.Lb
	bd := p.KPn * s.Wd / s.Ld
	bl := p.KPp * s.Wl / s.Ll
	bg := p.KPp * s.Wg / s.Lg
	lb, ld := p.LambdaN/s.Lb, p.LambdaN/s.Ld
	ll, lg := p.LambdaP/s.Ll, p.LambdaP/s.Lg
	vtp := -p.VTp
	ov := func(i, beta, lam, vds float64) float64 {
		return math.Sqrt(2 * i / (beta * (1 + lam*max(vds, 0))))
	}

	var o OP
	o.VGS8 = p.VTn + ov(Iref, bb, 0, 0)
	for range opIterations {
		o.VGS8 = p.VTn + ov(Iref, bb, lb, o.VGS8)
	}
	o.I7 = float64(s.R) * Iref * (1 + lb*VCM) / (1 + lb*o.VGS8)
	vsg6 := vtp + max(ov(o.I7, bg, lg, VDD-VCM), 1e-3)
	o.V1 = VDD - vsg6

	o.I5, o.K = Iref, 1
	o.I1, o.I2 = Iref/2, Iref/2
	vsg3 := vtp + ov(o.I1, bl, 0, 0)
	o.VTail = VCM - p.VTn - ov(o.I2, bd, 0, 0)
	for range opIterations {
		vsg3 = vtp + max(ov(o.I1, bl, ll, vsg3), 1e-3)
		o.K = (1 + ll*vsg6) / (1 + ll*vsg3)
		o.I5 = Iref * (1 + lb*max(o.VTail, 0)) / (1 + lb*o.VGS8)
		o.I1 = o.I5 / (1 + o.K)
		o.I2 = o.I5 - o.I1
		o.VTail = VCM - p.VTn - max(ov(o.I2, bd, ld, o.V1-o.VTail), 1e-3)
	}
	o.VD1 = VDD - vsg3
	return o
}

// Model computes the small-signal model of sizing s at its operating
// point, with level-1 expressions: gm = √(2·KP·(W/L)·I·(1 + λ·V_DS)),
// gds = λ·I/(1 + λ·V_DS) (= 1/ro; for λ·V_DS ≪ 1 the textbook
// √(2µCox(W/L)I) and λ·I).
//
// The first stage's internal nodes (the pair's source and the mirror's
// diode) carry no capacitance, so they are eliminated exactly from the
// nodal equations: node 1 then sees the input through Gm1 and ground
// through G1. For a balanced pair with ideal devices these are the textbook
// gm1 and gds2 + gds4; the elimination keeps the tail's gds5, the mirror's
// gds and the pair's imbalance, which matter where λ is large (short L).
//
// Node 1 carries M6's gate capacitance (2/3)·Cox·W·L and the drain
// junctions of M2 and M4; the output carries CL and the drains of M6 and
// M7. Every other capacitance is zero, in ngspice's netlist too.
func (p Process) Model(s Sizing) SmallSignal {
	o := p.Operating(s)
	bd := p.KPn * s.Wd / s.Ld
	bl := p.KPp * s.Wl / s.Ll
	bg := p.KPp * s.Wg / s.Lg
	lb, ld := p.LambdaN/s.Lb, p.LambdaN/s.Ld
	ll, lg := p.LambdaP/s.Ll, p.LambdaP/s.Lg
	gm := func(beta, i, lam, vds float64) float64 { return math.Sqrt(2 * beta * i * (1 + lam*max(vds, 0))) }
	gds := func(i, lam, vds float64) float64 { return lam * i / (1 + lam*max(vds, 0)) }

	vsg3 := VDD - o.VD1
	vsg6 := VDD - o.V1
	vds1, vds2 := o.VD1-o.VTail, o.V1-o.VTail
	gm1, gds1 := gm(bd, o.I1, ld, vds1), gds(o.I1, ld, vds1)
	gm2, gds2 := gm(bd, o.I2, ld, vds2), gds(o.I2, ld, vds2)
	gm3, gds3 := gm(bl, o.I1, ll, vsg3), gds(o.I1, ll, vsg3)
	gm4, gds4 := gm(bl, o.I2, ll, vsg6), gds(o.I2, ll, vsg6)
	gds5 := gds(o.I5, lb, o.VTail)

	// KCL at the tail (vt) and the diode (v3), inn at AC ground:
	//   −(gm1+gds1+gm2+gds2+gds5)·vt + gds1·v3 = −gm2·vin − gds2·v1 =: r
	//   (gm1+gds1)·vt − (gm3+gds3+gds1)·v3 = 0
	// so vt = α·r, v3 = β·r; the current into node 1, −gm4·v3 − gds4·v1 −
	// gm2·(vin − vt) − gds2·(v1 − vt), is −Gm1·vin − G1·v1 with κ below.
	a11, a12 := -(gm1 + gds1 + gm2 + gds2 + gds5), gds1
	a21, a22 := gm1+gds1, -(gm3 + gds3 + gds1)
	det := a11*a22 - a12*a21
	alpha, beta := a22/det, -a21/det
	kappa := -gm4*beta + (gm2+gds2)*alpha
	return SmallSignal{
		OP:  o,
		Gm1: gm2 * (1 + kappa),
		Gm6: gm(bg, o.I7, lg, VDD-VCM),
		G1:  gds4 + gds2*(1+kappa),
		G2:  gds(o.I7, lg, VDD-VCM) + gds(o.I7, lb, VCM),
		C1:  2.0/3.0*p.Cox*s.Wg*s.Lg + p.Cj*(s.Wd+s.Wl),
		C2:  CL + p.Cj*(s.Wg+float64(s.R)*s.Wb),
		Cc:  s.Cc,
	}
}

// TF is H(s) = A0·(1 − s/Z)/(1 + B1·s + B2·s²), the exact transfer
// function of the two-node model with Miller capacitor Cc.
type TF struct{ A0, Z, B1, B2 float64 }

// TF returns the transfer function. With node equations
// (G1 + s(C1+Cc))v1 − sCc·v2 = gm1·vin and (gm6 − sCc)v1 + (G2 + s(C2+Cc))v2 = 0:
// A0 = gm1·gm6/(G1·G2), Z = gm6/Cc (right half plane),
// B1 = (G1(C2+Cc) + G2(C1+Cc) + gm6·Cc)/(G1·G2), B2 = (C1C2 + Cc(C1+C2))/(G1·G2).
// The poles are the roots of 1 + B1·s + B2·s²; for gm6·Cc ≫ the rest they
// are the Miller pole G1G2/(gm6·Cc) and gm6·Cc/(C1C2 + Cc(C1+C2)) ≈ gm6/C2.
func (m SmallSignal) TF() TF {
	g := m.G1 * m.G2
	return TF{
		A0: m.Gm1 * m.Gm6 / g,
		Z:  m.Gm6 / m.Cc,
		B1: (m.G1*(m.C2+m.Cc) + m.G2*(m.C1+m.Cc) + m.Gm6*m.Cc) / g,
		B2: (m.C1*m.C2 + m.Cc*(m.C1+m.C2)) / g,
	}
}

// H evaluates the transfer function at s = jω.
func (h TF) H(omega float64) complex128 {
	s := complex(0, omega)
	return complex(h.A0, 0) * (1 - s/complex(h.Z, 0)) / (1 + complex(h.B1, 0)*s + complex(h.B2, 0)*s*s)
}

// Phase is the continuous phase of H(jω) in degrees, 0 at DC:
// −atan(ω/Z) for the right-half-plane zero, minus the denominator's
// phase, which runs from 0 to 180° for B1, B2 > 0.
func (h TF) Phase(omega float64) float64 {
	return -(math.Atan(omega/h.Z) + math.Atan2(h.B1*omega, 1-h.B2*omega*omega)) * 180 / math.Pi
}

// Unity returns the angular frequency of the last unity-gain crossing,
// where |H| falls through 1 for good, and false when |H(jω)| < 1 at every
// ω (no crossing). |H|² = 1 is a quadratic in u = ω²:
//
//	B2²·u² + (B1² − 2·B2 − A0²/Z²)·u + 1 − A0² = 0,
//
// whose polynomial is positive exactly where |H| < 1, so the last crossing
// is its largest positive root. Solved in the cancellation-free form and
// polished with Newton steps on the polynomial.
func (h TF) Unity() (float64, bool) {
	a := h.B2 * h.B2
	b := h.B1*h.B1 - 2*h.B2 - (h.A0/h.Z)*(h.A0/h.Z)
	c := 1 - h.A0*h.A0
	disc := b*b - 4*a*c
	if !(a > 0) || disc < 0 {
		return 0, false
	}
	sq := math.Sqrt(disc)
	var u float64
	if b < 0 {
		u = (-b + sq) / (2 * a)
	} else {
		u = 2 * c / (-b - sq) // the larger root; positive only when c < 0
	}
	if !(u > 0) || math.IsInf(u, 0) {
		return 0, false
	}
	for range 3 {
		f := (a*u+b)*u + c
		d := 2*a*u + b
		if d == 0 {
			break
		}
		if un := u - f/d; un > 0 {
			u = un
		}
	}
	return math.Sqrt(u), true
}

// Penalty outputs for a design without a unity-gain crossing: UGBW = 0 and
// PM = PenaltyPM, which the figure of merit (PM enters with weight −1.6/90)
// scores −3.2, far below any working amplifier.
const PenaltyPM = 180.0

// Metrics returns G (V/V), PM (degrees) and UGBW (Hz) of h, or the penalty
// values (G, PenaltyPM, 0) when there is no unity-gain crossing.
func (h TF) Metrics() (g, pm, ugbw float64) {
	w, ok := h.Unity()
	if !ok {
		return h.A0, PenaltyPM, 0
	}
	return h.A0, 180 + h.Phase(w), w / (2 * math.Pi)
}

// SaturationMargin returns min over the transistors of V_DS − V_ov (V) at
// the operating point: positive when every device is saturated, as the
// small-signal model assumes. Where it is negative the analytic model is
// outside its validity and disagrees with ngspice, which solves the real
// operating point.
func (p Process) SaturationMargin(s Sizing) float64 {
	o := p.Operating(s)
	vtp := -p.VTp
	ovB := o.VGS8 - p.VTn        // M8, M5, M7: same gate voltage
	ovD := VCM - o.VTail - p.VTn // M2 (M1 within the offset)
	ovL := VDD - o.VD1 - vtp     // M3, M4
	ovG := VDD - o.V1 - vtp      // M6
	return min(
		o.VTail-ovB,       // M5
		o.VD1-o.VTail-ovD, // M1
		o.V1-o.VTail-ovD,  // M2
		VDD-o.V1-ovL,      // M4
		(VDD-VCM)-ovG,     // M6
		VCM-ovB,           // M7
	)
}
