package live

import (
	"encoding/base64"
	"math"
	"regexp"
	"strconv"

	"github.com/insitu-lab/insitu"
)

// maxBars bounds the bars a vector carries: the page is for watching, and a
// thousand bars are unreadable anyway.
const maxBars = 256

var (
	// SLM phases: phi_<r>_<c>, optionally behind a rig part's name.
	phaseName = regexp.MustCompile(`^(?:([^/]+)/)?phi_(\d+)_(\d+)$`)
	// Camera pixels: px_<r>_<c> (rig cameras), and the OWMS twin's camera
	// (cam_<r>_<c>) and intensity (p_<r>_<c>) outputs.
	pixelName = regexp.MustCompile(`^(?:([^/]+)/)?(?:px|cam|p)_(\d+)_(\d+)$`)
	// The OWMS twin's field output: re_<r>_<c> and im_<r>_<c>, drawn as the
	// intensity re² + im².
	fieldName = regexp.MustCompile(`^(?:([^/]+)/)?(re|im)_(\d+)_(\d+)$`)
)

// layout says how to draw a vector: which components are the pixels of an
// image and which are bars.
type layout struct {
	kind       string // "phase", "image" or "bars"
	rows, cols int
	pix        []int // row-major pixel → component (the real part of a field)
	im         []int // field only: pixel → imaginary component
	lo, hi     float64
	bars       []int // components drawn as bars, at most maxBars
	barsTotal  int
	names      []string
	units      []string  // per component; nil or "" where unknown
	blo, bhi   []float64 // bounds of the bars (inputs only)
}

// cell is one component found on a grid.
type cell struct{ r, c, idx int }

// grid places cells on a full rows×cols grid; ok is false unless every
// position is filled exactly once and there are at least 4.
func grid(cells []cell) (rows, cols int, pix []int, ok bool) {
	if len(cells) < 4 {
		return 0, 0, nil, false
	}
	for _, c := range cells {
		rows, cols = max(rows, c.r+1), max(cols, c.c+1)
	}
	if rows*cols != len(cells) {
		return 0, 0, nil, false
	}
	pix = make([]int, rows*cols)
	for i := range pix {
		pix[i] = -1
	}
	for _, c := range cells {
		k := c.r*cols + c.c
		if pix[k] >= 0 {
			return 0, 0, nil, false
		}
		pix[k] = c.idx
	}
	return rows, cols, pix, true
}

// match collects the components whose names re matches, all behind the
// same part as the first match; the last two submatches of re are the row
// and the column. sel, when not 0, is a submatch that must equal want.
func match(names []string, re *regexp.Regexp, sel int, want string) []cell {
	var cells []cell
	part, first := "", true
	for i, n := range names {
		m := re.FindStringSubmatch(n)
		if m == nil || (sel > 0 && m[sel] != want) {
			continue
		}
		if first {
			part, first = m[1], false
		} else if m[1] != part {
			continue
		}
		r, err1 := strconv.Atoi(m[len(m)-2])
		c, err2 := strconv.Atoi(m[len(m)-1])
		if err1 != nil || err2 != nil || r > 1<<12 || c > 1<<12 {
			continue
		}
		cells = append(cells, cell{r, c, i})
	}
	return cells
}

// inputLayout draws the inputs: the SLM phases as a phase map with the
// bounds of its coordinates as one period, everything else as bars.
func inputLayout(sp insitu.Space) layout {
	names := make([]string, sp.Dim())
	for i := range names {
		names[i] = sp.Name(i)
	}
	l := layout{kind: "bars", names: names, units: sp.Units}
	if rows, cols, pix, ok := grid(match(names, phaseName, 0, "")); ok {
		l.kind, l.rows, l.cols, l.pix = "phase", rows, cols, pix
		l.lo, l.hi = math.Inf(1), math.Inf(-1)
		for _, i := range pix {
			l.lo, l.hi = min(l.lo, sp.Lower[i]), max(l.hi, sp.Upper[i])
		}
		if !(l.hi > l.lo) || math.IsInf(l.hi-l.lo, 0) {
			l.lo, l.hi = 0, 2*math.Pi
		}
	}
	l.setBars(len(names))
	l.blo, l.bhi = make([]float64, len(l.bars)), make([]float64, len(l.bars))
	for k, i := range l.bars {
		l.blo[k], l.bhi[k] = sp.Lower[i], sp.Upper[i]
	}
	return l
}

// outputLayout draws the outputs: camera pixels or the OWMS twin's image
// as an image, everything else as bars. units are the outputs' units (nil
// when unknown).
func outputLayout(names, units []string) layout {
	l := layout{kind: "bars", names: names, units: units}
	if rows, cols, pix, ok := grid(match(names, pixelName, 0, "")); ok {
		l.kind, l.rows, l.cols, l.pix = "image", rows, cols, pix
	} else if rows, cols, pix, ok := grid(match(names, fieldName, 2, "re")); ok {
		if r2, c2, im, ok := grid(match(names, fieldName, 2, "im")); ok && r2 == rows && c2 == cols {
			l.kind, l.rows, l.cols, l.pix, l.im = "image", rows, cols, pix, im
		}
	}
	l.setBars(len(names))
	return l
}

// setBars makes every component that is not a pixel a bar.
func (l *layout) setBars(n int) {
	used := make([]bool, n)
	for _, i := range l.pix {
		used[i] = true
	}
	for _, i := range l.im {
		used[i] = true
	}
	for i := range n {
		if used[i] {
			continue
		}
		l.barsTotal++
		if len(l.bars) < maxBars {
			l.bars = append(l.bars, i)
		}
	}
}

// vector draws v (of the layout's length) as the page wants it.
func (l *layout) vector(v []float64) *Vector {
	out := &Vector{Kind: l.kind, Rows: l.rows, Cols: l.cols, Min: nan(), Max: nan()}
	if len(v) != len(l.names) {
		out.Kind = "bars" // not what the spec said: draw what there is
		for i, x := range v[:min(len(v), maxBars)] {
			out.Names = append(out.Names, "#"+strconv.Itoa(i))
			out.Values = append(out.Values, Float(x))
		}
		if len(v) > maxBars {
			out.BarsTotal = len(v)
		}
		out.Rows, out.Cols = 0, 0
		return out
	}
	if l.pix != nil {
		px := make([]byte, len(l.pix))
		switch l.kind {
		case "phase":
			out.Min, out.Max = Float(l.lo), Float(l.hi)
			w := l.hi - l.lo
			for k, i := range l.pix {
				u := (v[i] - l.lo) / w
				u -= math.Floor(u)
				if math.IsNaN(u) || math.IsInf(u, 0) {
					u = 0
				}
				px[k] = byte(min(math.Floor(u*256), 255))
			}
		default:
			val := make([]float64, len(l.pix))
			lo, hi := math.Inf(1), math.Inf(-1)
			for k, i := range l.pix {
				x := v[i]
				if l.im != nil {
					x = x*x + v[l.im[k]]*v[l.im[k]]
				}
				val[k] = x
				if !math.IsNaN(x) && !math.IsInf(x, 0) {
					lo, hi = min(lo, x), max(hi, x)
				}
			}
			if lo > hi {
				lo, hi = 0, 0
			}
			out.Min, out.Max = Float(lo), Float(hi)
			for k, x := range val {
				if hi > lo && !math.IsNaN(x) {
					px[k] = byte(math.Round(255 * min(max((x-lo)/(hi-lo), 0), 1)))
				}
			}
		}
		out.Pixels = base64.StdEncoding.EncodeToString(px)
	}
	for k, i := range l.bars {
		out.Names = append(out.Names, l.names[i])
		out.Values = append(out.Values, Float(v[i]))
		if l.blo != nil {
			out.Lo = append(out.Lo, Float(l.blo[k]))
			out.Hi = append(out.Hi, Float(l.bhi[k]))
		}
	}
	if l.barsTotal > len(l.bars) {
		out.BarsTotal = l.barsTotal
	}
	out.Unit, out.ImageUnit = l.common(l.bars), l.common(l.pix)
	return out
}

// common is the unit the components idx share, "" when they do not (or
// it is unknown).
func (l *layout) common(idx []int) string {
	if len(idx) == 0 || len(l.units) != len(l.names) {
		return ""
	}
	u := l.units[idx[0]]
	for _, i := range idx[1:] {
		if l.units[i] != u {
			return ""
		}
	}
	return u
}
