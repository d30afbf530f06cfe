package optics

import (
	"math"
	"testing"
)

// centroidX is the intensity-weighted mean x of a field, x = 0 at the
// window's centre.
func centroidX(u []complex128, n int, pitch float64) float64 {
	var s, sx float64
	for r := range n {
		for c := range n {
			x := (float64(c) - float64(n-1)/2) * pitch
			i := sq(u[r*n+c])
			s += i
			sx += i * x
		}
	}
	return sx / s
}

// A linear phase ramp of κ rad/m along x steers the beam: after a distance
// z its centre moves by z·κ/k, to +x for a ramp rising along +x (the e^{ikr}
// convention). Both propagation methods agree on the direction and amount,
// which a kernel of the wrong sign (e^{−ikr}) would reverse.
func TestPhaseRampSteersTheBeam(t *testing.T) {
	for _, tc := range []struct {
		method string
		z      float64
	}{{MethodRS, 0.02}, {MethodAngular, 0.01}} {
		c := DefaultConfig()
		c.N, c.Method, c.Distance = 64, tc.method, tc.z
		tw, err := New(c)
		if err != nil {
			t.Fatal(err)
		}
		kappa := 2 * math.Pi / (32 * c.Pitch)
		phase := make([]float64, c.N*c.N)
		for r := range c.N {
			for col := range c.N {
				phase[r*c.N+col] = kappa * (float64(col) - float64(c.N-1)/2) * c.Pitch
			}
		}
		x := centroidX(tw.Field(phase), c.N, c.Pitch)
		want := tc.z * kappa / (2 * math.Pi / c.Wavelength)
		if math.Abs(x/want-1) > 0.1 {
			t.Errorf("%s z=%g: beam centre at %.2f µm, want %.2f µm", tc.method, tc.z, x*1e6, want*1e6)
		}
	}
}

// The two propagation methods give the same complex field, phase included,
// for a Gaussian beam at a distance both resolve.
func TestRSAndAngularFieldsAgree(t *testing.T) {
	fields := map[string][]complex128{}
	for _, method := range []string{MethodRS, MethodAngular} {
		c := DefaultConfig()
		c.N, c.Method, c.Distance = 64, method, 0.02
		tw, err := New(c)
		if err != nil {
			t.Fatal(err)
		}
		fields[method] = tw.Field(make([]float64, c.N*c.N))
	}
	if e := relErrC(fields[MethodRS], fields[MethodAngular]); e > 1e-6 {
		t.Errorf("RS and angular-spectrum fields differ by %.3g (relative)", e)
	}
}
