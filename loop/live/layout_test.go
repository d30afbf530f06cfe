package live

import (
	"database/sql"
	"encoding/base64"
	"fmt"
	"math"
	"testing"

	"github.com/insitu-lab/insitu"
)

func phaseSpace(part string, n int) insitu.Space {
	sp := insitu.Box(n*n, 0, 2*math.Pi)
	sp.Names = make([]string, n*n)
	for i := range sp.Names {
		sp.Names[i] = fmt.Sprintf("%sphi_%02d_%02d", part, i/n, i%n)
	}
	return sp
}

func TestLayouts(t *testing.T) {
	// An SLM behind a rig part, plus one other input: a phase map and a bar.
	sp := phaseSpace("slm/", 4)
	sp.Names = append(sp.Names, "laser/power")
	sp.Lower, sp.Upper = append(sp.Lower, 0), append(sp.Upper, 5)
	l := inputLayout(sp)
	if l.kind != "phase" || l.rows != 4 || l.cols != 4 || len(l.bars) != 1 || l.hi != 2*math.Pi {
		t.Fatalf("phase layout: %+v", l)
	}
	x := make([]float64, 17)
	x[1] = math.Pi       // half a period
	x[2] = 2 * math.Pi   // a whole period: the colour of 0
	x[3] = 2.5 * math.Pi // wraps to a quarter
	x[16] = 3
	v := l.vector(x)
	px, _ := base64.StdEncoding.DecodeString(v.Pixels)
	if len(px) != 16 || px[0] != 0 || px[1] != 128 || px[2] != 0 || px[3] != 64 {
		t.Errorf("phase pixels %v", px[:4])
	}
	if len(v.Values) != 1 || v.Values[0] != 3 || v.Names[0] != "laser/power" || v.Hi[0] != 5 {
		t.Errorf("bars %+v", v)
	}

	// Rig camera pixels, rectangular.
	var out []string
	for r := range 2 {
		for c := range 3 {
			out = append(out, fmt.Sprintf("cam/px_%d_%d", r, c))
		}
	}
	o := outputLayout(out, nil)
	if o.kind != "image" || o.rows != 2 || o.cols != 3 || len(o.bars) != 0 {
		t.Fatalf("camera layout: %+v", o)
	}
	v = o.vector([]float64{0, 1, 2, 3, 4, 10})
	px, _ = base64.StdEncoding.DecodeString(v.Pixels)
	if v.Min != 0 || v.Max != 10 || px[5] != 255 || px[0] != 0 || px[1] != 26 {
		t.Errorf("image %+v %v", v, px)
	}

	// The OWMS twin's field output: intensity re² + im².
	out = nil
	for r := range 2 {
		for c := range 2 {
			out = append(out, fmt.Sprintf("re_%d_%d", r, c), fmt.Sprintf("im_%d_%d", r, c))
		}
	}
	o = outputLayout(out, nil)
	if o.kind != "image" || o.rows != 2 || len(o.im) != 4 {
		t.Fatalf("field layout: %+v", o)
	}
	v = o.vector([]float64{3, 4, 0, 0, 0, 1, 0, 0}) // |3+4i|² = 25, then 0, 1, 0
	if v.Max != 25 || v.Min != 0 {
		t.Errorf("field intensity range [%v, %v], want [0, 25]", v.Min, v.Max)
	}

	// A grid with a hole is not an image; plain names are bars.
	if o := outputLayout([]string{"px_0_0", "px_0_1", "px_1_0", "y"}, nil); o.kind != "bars" || len(o.bars) != 4 {
		t.Errorf("incomplete grid: %+v", o)
	}
	if l := inputLayout(insitu.Box(3, -1, 1)); l.kind != "bars" || len(l.bars) != 3 || l.blo[0] != -1 {
		t.Errorf("plain inputs: %+v", l)
	}
}

// Bars and images carry the unit their components share, for the page's
// axis labels; mixed or unknown units give none.
func TestLayoutUnits(t *testing.T) {
	sp := insitu.Box(2, 0, 1)
	sp.Units = []string{"V", "V"}
	l := inputLayout(sp)
	if v := l.vector([]float64{0.5, 0.25}); v.Unit != "V" {
		t.Errorf("input unit %q, want V", v.Unit)
	}
	sp.Units = []string{"V", "A"}
	l = inputLayout(sp)
	if v := l.vector([]float64{0.5, 0.25}); v.Unit != "" {
		t.Errorf("mixed input unit %q, want none", v.Unit)
	}
	o := outputLayout([]string{"px_0_0", "px_0_1", "px_1_0", "px_1_1", "power"}, []string{"count", "count", "count", "count", "W"})
	if v := o.vector([]float64{1, 2, 3, 4, 5e-3}); v.Unit != "W" || v.ImageUnit != "count" {
		t.Errorf("output units %q, %q; want W, count", v.Unit, v.ImageUnit)
	}
	o = outputLayout([]string{"a", "b"}, nil)
	if v := o.vector([]float64{1, 2}); v.Unit != "" {
		t.Errorf("unknown units gave %q", v.Unit)
	}
}

// A query's marks become seconds after its start mark, the last mark of an
// event kept when several parts made it.
func TestMarkTimes(t *testing.T) {
	const s = int64(1_000_000_000)
	text := fmt.Sprintf(`[{"event":"start","t":%d},{"part":"slm","event":"written","t":%d},{"part":"slm2","event":"written","t":%d},{"event":"measured","t":%d},{"event":"end","t":%d}]`,
		10*s, 10*s+2_000_000, 10*s+3_000_000, 10*s+50_000_000, 10*s+51_000_000)
	m := markTimes(sql.NullString{String: text, Valid: true})
	if m["start"] != 0 || m["written"] != 0.003 || m["measured"] != 0.05 || m["end"] != 0.051 || len(m) != 4 {
		t.Errorf("marks %v", m)
	}
	if markTimes(sql.NullString{}) != nil || markTimes(sql.NullString{String: "[]", Valid: true}) != nil || markTimes(sql.NullString{String: "{", Valid: true}) != nil {
		t.Error("no marks (absent, empty, unreadable) must give nil")
	}
}
