package surrogate

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"

	"github.com/insitu-lab/insitu"
)

// File format, all integers little-endian:
//
//	magic "INSITUSG" | version uint32 | header length uint32 | param count uint64
//	| JSON header | params (float64 or float32 bits) | CRC-32 (IEEE) of all preceding bytes
//
// The fixed prefix gives the file's length before anything is parsed, so a
// short file is reported as truncated and any flipped byte as a checksum
// mismatch.
//
// Version 2 adds the input and output scalings to the header; a version 1
// file has none and loads with the maps it was written under, InputUnit and
// OutputZScore. Version 3 is a float32 model: its header says precision
// float32 and its params are float32 bits. Save writes version 2 for a
// float64 model, which builds from before float32 existed can read, and
// version 3 for a float32 one.
const (
	fileMagic     = "INSITUSG"
	fileVersion   = 2
	fileVersionV1 = 1
	fileVersionV3 = 3
	filePrefix    = len(fileMagic) + 4 + 4 + 8
)

// Errors of Load; test with errors.Is.
var (
	ErrNotSurrogate = errors.New("not an insitu surrogate file")
	ErrFileVersion  = errors.New("unsupported surrogate file version")
	ErrTruncated    = errors.New("truncated surrogate file")
	ErrChecksum     = errors.New("surrogate file checksum mismatch")
	ErrParamCount   = errors.New("surrogate file parameter count mismatch")
	// ErrNonFinite: the file is whole but holds a NaN or infinite weight
	// (the model diverged before it was saved): it predicts nothing.
	ErrNonFinite = errors.New("surrogate file holds a non-finite weight")
)

// fileError carries a specific message and one of the sentinel errors.
type fileError struct {
	kind error
	msg  string
}

func (e *fileError) Error() string { return "surrogate: " + e.msg }
func (e *fileError) Unwrap() error { return e.kind }

type fileHeader struct {
	In            int           `json:"in"`
	Out           int           `json:"out"`
	Hidden        []int         `json:"hidden"`
	LayerNorm     bool          `json:"layer_norm"`
	InputScaling  InputScaling  `json:"input_scaling,omitempty"`  // version 2
	OutputScaling OutputScaling `json:"output_scaling,omitempty"` // version 2
	Precision     Precision     `json:"precision,omitempty"`      // version 3
	Names         []string      `json:"names,omitempty"`
	Units         []string      `json:"units,omitempty"`
	Lower         []float64     `json:"lower"`
	Upper         []float64     `json:"upper"`
	Periodic      []bool        `json:"periodic,omitempty"` // the circle map's coordinates
	OutMean       []float64     `json:"out_mean"`
	OutStd        []float64     `json:"out_std"`
	ScaleSet      bool          `json:"scale_set"`
	Params        int           `json:"params"`
}

// Save writes the model (architecture, precision, scalings, input space,
// output scale and parameters) in the versioned binary format Load reads.
func (m *Model) Save(w io.Writer) error {
	h := fileHeader{
		In: m.In(), Out: m.mlp.out, Hidden: m.mlp.arch.Hidden, LayerNorm: m.mlp.arch.LayerNorm,
		InputScaling: m.inScale, OutputScaling: m.outScale,
		Names: m.space.Names, Units: m.space.Units, Lower: m.space.Lower, Upper: m.space.Upper,
		Periodic: m.enc.circ,
		OutMean:  m.mean, OutStd: m.std, ScaleSet: m.scaleSet, Params: m.mlp.NumParams(),
	}
	version := uint32(fileVersion)
	if m.mlp.Precision() == Float32 {
		version, h.Precision = fileVersionV3, Float32
	}
	if err := writeModel(w, version, h, m.mlp.net); err != nil {
		return fmt.Errorf("surrogate: saving model: %w", err)
	}
	return nil
}

func writeModel(w io.Writer, version uint32, h fileHeader, params network) error {
	js, err := json.Marshal(h)
	if err != nil {
		return err
	}
	crc := crc32.NewIEEE()
	bw := bufio.NewWriterSize(io.MultiWriter(w, crc), 1<<16)
	b := make([]byte, 0, filePrefix)
	b = append(b, fileMagic...)
	b = binary.LittleEndian.AppendUint32(b, version)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(js)))
	b = binary.LittleEndian.AppendUint64(b, uint64(params.numParams()))
	bw.Write(b)
	bw.Write(js)
	bw.Write(params.encodeParams(nil))
	if err := bw.Flush(); err != nil { // bufio keeps the first write error
		return err
	}
	_, err = w.Write(binary.LittleEndian.AppendUint32(nil, crc.Sum32()))
	return err
}

// Load reads a model written by Save, in the current or an older version of
// the format. The errors wrap ErrNotSurrogate,
// ErrFileVersion, ErrTruncated, ErrChecksum or ErrParamCount.
func Load(r io.Reader) (*Model, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("surrogate: reading model: %w", err)
	}
	n := len(data)
	if n < len(fileMagic) {
		if bytes.HasPrefix([]byte(fileMagic), data) {
			return nil, &fileError{ErrTruncated, fmt.Sprintf("truncated file: %d bytes", n)}
		}
		return nil, &fileError{ErrNotSurrogate, ErrNotSurrogate.Error()}
	}
	if string(data[:len(fileMagic)]) != fileMagic {
		return nil, &fileError{ErrNotSurrogate, ErrNotSurrogate.Error()}
	}
	if n < len(fileMagic)+4 {
		return nil, &fileError{ErrTruncated, fmt.Sprintf("truncated file: %d bytes", n)}
	}
	version := binary.LittleEndian.Uint32(data[len(fileMagic):])
	if version != fileVersion && version != fileVersionV1 && version != fileVersionV3 {
		return nil, &fileError{ErrFileVersion, fmt.Sprintf("surrogate file version %d, this build reads versions %d to %d", version, fileVersionV1, fileVersionV3)}
	}
	if n < filePrefix {
		return nil, &fileError{ErrTruncated, fmt.Sprintf("truncated file: %d bytes", n)}
	}
	hlen := uint64(binary.LittleEndian.Uint32(data[12:]))
	np := binary.LittleEndian.Uint64(data[16:])
	const maxParams = 1 << 40
	if np > maxParams {
		return nil, &fileError{ErrChecksum, fmt.Sprintf("corrupt file: it claims %d parameters", np)}
	}
	width := uint64(8)
	if version == fileVersionV3 {
		width = 4
	}
	want := uint64(filePrefix) + hlen + width*np + 4
	switch {
	case uint64(n) < want:
		return nil, &fileError{ErrTruncated, fmt.Sprintf("truncated file: %d bytes, the header says %d", n, want)}
	case uint64(n) > want:
		return nil, &fileError{ErrChecksum, fmt.Sprintf("corrupt file: %d bytes, the header says %d", n, want)}
	}
	if got, stored := crc32.ChecksumIEEE(data[:n-4]), binary.LittleEndian.Uint32(data[n-4:]); got != stored {
		return nil, &fileError{ErrChecksum, fmt.Sprintf("checksum mismatch (stored %08x, computed %08x): the file is corrupt", stored, got)}
	}
	var h fileHeader
	if err := json.Unmarshal(data[filePrefix:filePrefix+int(hlen)], &h); err != nil {
		return nil, fmt.Errorf("surrogate: model header: %w", err)
	}
	if version == fileVersionV1 {
		if h.InputScaling != "" || h.OutputScaling != "" {
			return nil, fmt.Errorf("surrogate: model header: a version %d file has no scalings", version)
		}
		h.InputScaling, h.OutputScaling = InputUnit, OutputZScore
	}
	switch {
	case version != fileVersionV3 && h.Precision != "":
		return nil, fmt.Errorf("surrogate: model header: a version %d file has no precision", version)
	case version == fileVersionV3 && h.Precision != Float32:
		return nil, fmt.Errorf("surrogate: model header: a version %d file holds a %s model, want %s", version, h.Precision, Float32)
	}
	arch := Arch{Hidden: h.Hidden, LayerNorm: h.LayerNorm, InputScaling: h.InputScaling, OutputScaling: h.OutputScaling, Precision: h.Precision}
	s := insitu.Space{Names: h.Names, Units: h.Units, Lower: h.Lower, Upper: h.Upper, Periodic: h.Periodic}
	if err := h.validate(arch, s); err != nil {
		return nil, fmt.Errorf("surrogate: model header: %w", err)
	}
	nin := newEncoder(h.InputScaling, s).nin
	if need := arch.NumParams(nin, h.Out); uint64(need) != np || h.Params != need {
		return nil, &fileError{ErrParamCount, fmt.Sprintf("parameter count mismatch: the file has %d parameters, its architecture needs %d", np, need)}
	}
	mlp := newMLPShape(nin, h.Out, arch)
	mlp.net.decodeParams(data[filePrefix+int(hlen):])
	if i, v, ok := nonFiniteWeight(mlp.net); ok {
		return nil, &fileError{ErrNonFinite, fmt.Sprintf("non-finite weight: weight %d of %d is %v: the model diverged before it was saved", i, mlp.net.numParams(), v)}
	}
	m := newModel(s, mlp, h.InputScaling, h.OutputScaling)
	copy(m.mean, h.OutMean)
	copy(m.std, h.OutStd)
	m.scaleSet = h.ScaleSet
	return m, nil
}

// nonFiniteWeight finds the first NaN or infinite weight of n.
func nonFiniteWeight(n network) (i int, v float64, ok bool) {
	switch n := n.(type) {
	case *net[float64]:
		for i, v := range n.params {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return i, v, true
			}
		}
	case *net[float32]:
		for i, v := range n.params {
			if w := float64(v); math.IsNaN(w) || math.IsInf(w, 0) {
				return i, w, true
			}
		}
	}
	return 0, 0, false
}

func (h *fileHeader) validate(arch Arch, s insitu.Space) error {
	if err := s.Validate(); err != nil {
		return fmt.Errorf("input space: %w", err)
	}
	if err := arch.Validate(); err != nil {
		return err
	}
	if h.InputScaling == "" || h.OutputScaling == "" {
		return errors.New("the input and output scalings must be named")
	}
	if h.Periodic != nil && h.InputScaling != InputCircle {
		return fmt.Errorf("periodic coordinates are stored only for input scaling %q, not %q", InputCircle, h.InputScaling)
	}
	if h.In != s.Dim() || h.Out < 1 {
		return fmt.Errorf("shape %d→%d does not match a %d-dimensional space", h.In, h.Out, s.Dim())
	}
	if len(h.OutMean) != h.Out || len(h.OutStd) != h.Out {
		return fmt.Errorf("output scale has %d means and %d stds for %d outputs", len(h.OutMean), len(h.OutStd), h.Out)
	}
	for o, sd := range h.OutStd {
		if !(sd > 0) || math.IsInf(sd, 0) || math.IsNaN(h.OutMean[o]) || math.IsInf(h.OutMean[o], 0) {
			return fmt.Errorf("output %d: mean %v, std %v", o, h.OutMean[o], sd)
		}
		switch {
		case h.OutputScaling == OutputNone && (h.OutMean[o] != 0 || sd != 1):
			return fmt.Errorf("output %d: mean %v, std %v under output scaling %q, want 0 and 1", o, h.OutMean[o], sd, h.OutputScaling)
		case h.OutputScaling == OutputScale && sd != h.OutStd[0]:
			return fmt.Errorf("output %d: std %v under output scaling %q, want the same std %v for all outputs", o, sd, h.OutputScaling, h.OutStd[0])
		}
	}
	return nil
}
