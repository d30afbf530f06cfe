package data

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
)

// Limits of ParseCSV: small tables only.
const (
	MaxRows     = 1_000_000
	MaxFeatures = 4096
	MaxClasses  = 1000
)

// ParseCSV reads a table of rows "f1,…,fk,label": k ≥ 1 numeric features
// and a label last. Blank lines and lines starting with '#' are skipped; a
// first row whose features are not all numbers is a header and skipped.
// Labels that are all non-negative integers are used as they are (Classes
// = max+1); otherwise every label is a name, numbered in order of first
// appearance and kept in Labels. Features are not scaled: call Scale.
// Errors name the line.
func ParseCSV(r io.Reader) (Dataset, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	var (
		d      Dataset
		labels []string
		line   int
		header = true
	)
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		f := strings.Split(s, ",")
		if len(f) < 2 {
			return Dataset{}, fmt.Errorf("data: line %d: %d field(s), want features then a label", line, len(f))
		}
		if len(f)-1 > MaxFeatures {
			return Dataset{}, fmt.Errorf("data: line %d: %d features, more than %d", line, len(f)-1, MaxFeatures)
		}
		x := make([]float64, len(f)-1)
		var bad error
		for j := range x {
			v, err := strconv.ParseFloat(strings.TrimSpace(f[j]), 64)
			if err == nil && (math.IsNaN(v) || math.IsInf(v, 0)) {
				err = fmt.Errorf("not finite")
			}
			if err != nil {
				bad = fmt.Errorf("data: line %d: feature %d (%q): %v", line, j+1, f[j], err)
				break
			}
			x[j] = v
		}
		if bad != nil {
			if header {
				header = false
				continue
			}
			return Dataset{}, bad
		}
		header = false
		if len(d.X) > 0 && len(x) != len(d.X[0]) {
			return Dataset{}, fmt.Errorf("data: line %d: %d features, earlier rows have %d", line, len(x), len(d.X[0]))
		}
		if len(d.X) >= MaxRows {
			return Dataset{}, fmt.Errorf("data: more than %d rows", MaxRows)
		}
		d.X = append(d.X, x)
		labels = append(labels, strings.TrimSpace(f[len(f)-1]))
	}
	if err := sc.Err(); err != nil {
		return Dataset{}, fmt.Errorf("data: line %d: %w", line+1, err)
	}
	if len(d.X) == 0 {
		return Dataset{}, fmt.Errorf("data: no rows")
	}
	d.Y = make([]int, len(labels))
	numeric := true
	for i, l := range labels {
		v, err := strconv.Atoi(l)
		if err != nil || v < 0 || v >= MaxClasses {
			numeric = false
			break
		}
		d.Y[i] = v
		d.Classes = max(d.Classes, v+1)
	}
	if !numeric {
		d.Classes = 0
		index := map[string]int{}
		for i, l := range labels {
			k, ok := index[l]
			if !ok {
				if len(index) >= MaxClasses {
					return Dataset{}, fmt.Errorf("data: more than %d distinct labels", MaxClasses)
				}
				k = len(index)
				index[l] = k
				d.Labels = append(d.Labels, l)
			}
			d.Y[i] = k
		}
		d.Classes = len(d.Labels)
	}
	return d, nil
}

// LoadCSV parses the file at path with ParseCSV.
func LoadCSV(path string) (Dataset, error) {
	f, err := os.Open(path)
	if err != nil {
		return Dataset{}, err
	}
	defer f.Close()
	d, err := ParseCSV(f)
	if err != nil {
		return Dataset{}, fmt.Errorf("%s: %w", path, err)
	}
	return d, nil
}
