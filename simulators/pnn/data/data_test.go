package data

import (
	"bytes"
	"math"
	"reflect"
	"strings"
	"testing"
)

func sets(t *testing.T, seed uint64) map[string]Dataset {
	t.Helper()
	out := map[string]Dataset{}
	for _, name := range []string{"moons", "blobs", "circles"} {
		d, err := Generate(name, seed, 301, 3, 0.1)
		if err != nil {
			t.Fatal(err)
		}
		out[name] = d
	}
	return out
}

func TestGeneratedSets(t *testing.T) {
	a, b, c := sets(t, 1), sets(t, 1), sets(t, 2)
	for name, d := range a {
		if !reflect.DeepEqual(d, b[name]) {
			t.Fatalf("%s: not deterministic for a seed", name)
		}
		if reflect.DeepEqual(d, c[name]) {
			t.Fatalf("%s: seeds 1 and 2 give the same set", name)
		}
		want := 2
		if name == "blobs" {
			want = 3
		}
		if d.Classes != want || d.Len() != 301 || d.Dim() != 2 || len(d.X) != 301 {
			t.Fatalf("%s: shape %d×%d, %d classes", name, d.Len(), d.Dim(), d.Classes)
		}
		counts := d.Counts()
		for _, k := range counts {
			if k < 301/want || k > 301/want+1 {
				t.Fatalf("%s: unbalanced %v", name, counts)
			}
		}
		lo, hi := [2]float64{1, 1}, [2]float64{-1, -1}
		for _, x := range d.X {
			for j, v := range x {
				if !(v >= -1 && v <= 1) {
					t.Fatalf("%s: feature %v outside [−1, 1]", name, v)
				}
				lo[j], hi[j] = min(lo[j], v), max(hi[j], v)
			}
		}
		if lo != [2]float64{-1, -1} || hi != [2]float64{1, 1} {
			t.Fatalf("%s: range %v…%v, want the full [−1, 1]", name, lo, hi)
		}
	}
	if _, err := Generate("spirals", 1, 10, 2, 0); err == nil {
		t.Fatal("unknown set accepted")
	}
	if _, err := Moons(1, 1, 0.1); err == nil {
		t.Fatal("1 sample for 2 classes accepted")
	}
	if _, err := Blobs(1, 10, 2, math.NaN()); err == nil {
		t.Fatal("NaN noise accepted")
	}
}

// Low noise: the circle radii separate the classes.
func TestCirclesGeometry(t *testing.T) {
	d, _ := Circles(3, 200, 0)
	for i, x := range d.X {
		r := math.Hypot(x[0], x[1])
		if (d.Y[i] == 0) != (r > 0.75) {
			t.Fatalf("sample %d of class %d at radius %v", i, d.Y[i], r)
		}
	}
}

func TestSplit(t *testing.T) {
	d, _ := Blobs(1, 300, 3, 0.2)
	tr, te, err := d.Split(7, 0.2)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Len() != 240 || te.Len() != 60 || !reflect.DeepEqual(te.Counts(), []int{20, 20, 20}) {
		t.Fatalf("split %d/%d, test counts %v", tr.Len(), te.Len(), te.Counts())
	}
	tr2, te2, _ := d.Split(7, 0.2)
	if !reflect.DeepEqual(tr, tr2) || !reflect.DeepEqual(te, te2) {
		t.Fatal("split not deterministic")
	}
	_, te3, _ := d.Split(8, 0.2)
	if reflect.DeepEqual(te, te3) {
		t.Fatal("seeds 7 and 8 split alike")
	}
	// Disjoint and complete.
	seen := map[*float64]int{}
	for _, s := range []Dataset{tr, te} {
		for _, x := range s.X {
			seen[&x[0]]++
		}
	}
	if len(seen) != 300 {
		t.Fatalf("%d distinct samples, want 300", len(seen))
	}
	if _, _, err := d.Split(1, 1.5); err == nil {
		t.Fatal("fraction 1.5 accepted")
	}
}

func TestParseCSV(t *testing.T) {
	d, err := ParseCSV(strings.NewReader("# comment\nsepal,petal,species\n5.1, 3.5,setosa\n\n7.0,3.2,versicolor\n4.9,3.0,setosa\n"))
	if err != nil {
		t.Fatal(err)
	}
	if d.Len() != 3 || d.Dim() != 2 || d.Classes != 2 || !reflect.DeepEqual(d.Y, []int{0, 1, 0}) || !reflect.DeepEqual(d.Labels, []string{"setosa", "versicolor"}) {
		t.Fatalf("parsed %+v", d)
	}
	d, err = ParseCSV(strings.NewReader("1,2,0\n3,4,2\n"))
	if err != nil || d.Classes != 3 || d.Labels != nil || !reflect.DeepEqual(d.Y, []int{0, 2}) {
		t.Fatalf("numeric labels: %+v %v", d, err)
	}
	lo, hi := d.Scale()
	if !reflect.DeepEqual(d.X, [][]float64{{-1, -1}, {1, 1}}) || lo[0] != 1 || hi[1] != 4 {
		t.Fatalf("scaled %v", d.X)
	}
	for in, want := range map[string]string{
		"":                   "no rows",
		"1,2,0\n1,0\n":       "line 2",
		"a,b,c\n1,x,0\n":     "line 2: feature 2",
		"1,2,0\n1,NaN,0\n":   "line 2: feature 2",
		"5\n":                "line 1",
		"1,2,0\n\n1,2,3,0\n": "line 3",
	} {
		if _, err := ParseCSV(strings.NewReader(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", in, err, want)
		}
	}
}

// Features near ±MaxFloat64 scale without overflowing.
func TestScaleHugeValues(t *testing.T) {
	d, err := ParseCSV(strings.NewReader("1e308,-1e308,1\n-1e308,1e308,0\n0,0,1\n"))
	if err != nil {
		t.Fatal(err)
	}
	d.Scale()
	if !reflect.DeepEqual(d.X, [][]float64{{1, -1}, {-1, 1}, {0, 0}}) {
		t.Fatalf("scaled %v", d.X)
	}
}

func FuzzParseCSV(f *testing.F) {
	for _, s := range []string{"1,2,0\n3,4,1\n", "h1,h2,y\n1,2,a\n", "# c\n\n1e3,-2,7\n", "1,,0", "x,y\n"} {
		f.Add(s)
	}
	f.Add("1,2,0\n1e308,-1e308,1\n-1e308,1e308,0\n")
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseCSV(strings.NewReader(s))
		if err != nil {
			return
		}
		if d.Len() == 0 || len(d.X) != len(d.Y) || d.Classes < 1 {
			t.Fatalf("bad dataset %+v", d)
		}
		for i, x := range d.X {
			if len(x) != d.Dim() || len(x) == 0 {
				t.Fatalf("row %d has %d features", i, len(x))
			}
			for _, v := range x {
				if math.IsNaN(v) || math.IsInf(v, 0) {
					t.Fatalf("row %d: %v", i, v)
				}
			}
			if d.Y[i] < 0 || d.Y[i] >= d.Classes {
				t.Fatalf("label %d of %d classes", d.Y[i], d.Classes)
			}
		}
		if d.Labels != nil && len(d.Labels) != d.Classes {
			t.Fatalf("%d labels, %d classes", len(d.Labels), d.Classes)
		}
		d.Scale()
		for _, x := range d.X {
			for _, v := range x {
				if !(v >= -1 && v <= 1) {
					t.Fatalf("scaled %v", v)
				}
			}
		}
	})
}

func TestIrisIsTheUCITable(t *testing.T) {
	d, err := ParseCSV(bytes.NewReader(irisCSV))
	if err != nil {
		t.Fatal(err)
	}
	if d.Len() != 150 || d.Dim() != 4 || d.Classes != 3 {
		t.Fatalf("%d rows, %d features, %d classes", d.Len(), d.Dim(), d.Classes)
	}
	for c, n := range d.Counts() {
		if n != 50 {
			t.Errorf("class %d has %d rows", c, n)
		}
	}
	// The ranges and means UCI's iris.names states for each attribute.
	want := [][3]float64{{4.3, 7.9, 5.84}, {2.0, 4.4, 3.05}, {1.0, 6.9, 3.76}, {0.1, 2.5, 1.20}}
	for j, w := range want {
		lo, hi, sum := math.Inf(1), math.Inf(-1), 0.0
		for _, x := range d.X {
			lo, hi, sum = math.Min(lo, x[j]), math.Max(hi, x[j]), sum+x[j]
		}
		if lo != w[0] || hi != w[1] || math.Abs(sum/150-w[2]) > 0.005 {
			t.Errorf("feature %d: range [%v, %v], mean %.4f; UCI says [%v, %v], %v", j, lo, hi, sum/150, w[0], w[1], w[2])
		}
	}
	s, err := Iris()
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range s.X {
		for _, v := range x {
			if v < -1 || v > 1 {
				t.Fatalf("scaled feature %v outside [−1, 1]", v)
			}
		}
	}
}
