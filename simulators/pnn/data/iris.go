package data

import (
	"bytes"
	_ "embed"
)

// irisCSV is Fisher's Iris data (R. A. Fisher, 1936) as distributed by the
// UCI Machine Learning Repository (CC BY 4.0): 150 flowers, 4 measurements
// in cm, 3 species. It is the UCI version, whose rows 35 and 38 differ from
// Fisher's paper as UCI documents.
//
//go:embed iris.csv
var irisCSV []byte

// Iris returns the Iris table with its features scaled to [−1, 1]: the one
// real measured data set shipped with insitu (three classes, four inputs).
func Iris() (Dataset, error) {
	d, err := ParseCSV(bytes.NewReader(irisCSV))
	if err != nil {
		return Dataset{}, err
	}
	d.Scale()
	return d, nil
}
