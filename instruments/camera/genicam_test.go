package camera

import (
	"context"
	"encoding/binary"
	"errors"
	"image"
	"math"
	"strings"
	"testing"
	"time"
)

func TestGenICamOptsValidate(t *testing.T) {
	nan := math.NaN()
	for _, c := range []struct {
		o    GenICamOpts
		want string // "" for valid
	}{
		{GenICamOpts{}, ""},
		{GenICamOpts{Device: "10.0.0.5", PixelFormat: "Mono12", Width: 640, Height: 480, OffsetX: 8, Binning: []int{2}, Trigger: "free_run", FrameTimeout: time.Second, PacketSize: 9000}, ""},
		{GenICamOpts{PixelFormat: "mono8"}, `pixel_format "mono8"`},
		{GenICamOpts{PixelFormat: "Mono12p"}, "unpacked"},
		{GenICamOpts{Exposure: -time.Millisecond}, "exposure"},
		{GenICamOpts{Gain: &nan}, "gain NaN"},
		{GenICamOpts{OffsetX: -1}, "offset_x -1"},
		{GenICamOpts{Height: -4}, "height -4"},
		{GenICamOpts{Binning: []int{0}}, "binning [0]"},
		{GenICamOpts{Binning: []int{1, 2, 3}}, "binning [1 2 3]"},
		{GenICamOpts{Trigger: "hardware"}, `trigger "hardware"`},
		{GenICamOpts{FrameTimeout: -time.Second}, "frame_timeout"},
		{GenICamOpts{PacketSize: -1}, "packet_size -1"},
		{GenICamOpts{Buffers: -2}, "buffers -2"},
	} {
		err := c.o.Validate()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%+v: %v", c.o, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%+v: error %v, want one naming %q", c.o, err, c.want)
		}
	}
	if h, v := (GenICamOpts{Binning: []int{3}}).binning(); h != 3 || v != 3 {
		t.Errorf("binning [3] = %d×%d", h, v)
	}
	if h, v := (GenICamOpts{Binning: []int{2, 4}}).binning(); h != 2 || v != 4 {
		t.Errorf("binning [2, 4] = %d×%d", h, v)
	}
	for f, full := range map[string]float64{"": 255, "Mono8": 255, "Mono10": 1023, "Mono12": 4095, "Mono16": 65535, "Mono9": 0} {
		if got := (GenICamOpts{PixelFormat: f}).FullScale(); got != full {
			t.Errorf("full scale of %q = %v, want %v", f, got, full)
		}
	}
	if w, h := (GenICamOpts{Width: 640}).Size(); w != 0 || h != 0 {
		t.Errorf("size with only a width = %d×%d, want unknown", w, h)
	}
}

func TestResolveDevice(t *testing.T) {
	a := GenICamDevice{ID: "Basler-acA1920-40gm-22000001", Serial: "22000001", Address: "192.168.10.2", Physical: "00:30:53:aa:bb:cc"}
	b := GenICamDevice{ID: "Aravis-Fake-GV01", Serial: "GV01", Address: "127.0.0.1", Physical: "00:00:00:00:00:00"}
	c := GenICamDevice{ID: "FLIR-BFS-GV01", Serial: "GV01", Address: "10.0.0.7"}
	for _, tc := range []struct {
		want string
		devs []GenICamDevice
		id   string
		err  []string
	}{
		{"", []GenICamDevice{b}, b.ID, nil},
		{"", nil, "", []string{"no GenICam camera found"}},
		{"", []GenICamDevice{a, b}, "", []string{"2 cameras found", a.ID, b.ID, "192.168.10.2"}},
		{"22000001", []GenICamDevice{a, b}, a.ID, nil},
		{"127.0.0.1", []GenICamDevice{a, b}, b.ID, nil},
		{"00:30:53:AA:BB:CC", []GenICamDevice{a, b}, a.ID, nil},
		{b.ID, []GenICamDevice{a, b, c}, b.ID, nil},
		{"GV01", []GenICamDevice{a, b, c}, "", []string{`"GV01" matches 2 cameras`, b.ID, c.ID}},
		{"10.1.2.3", []GenICamDevice{a}, "10.1.2.3", nil}, // another subnet: Aravis opens it by address
		{"nosuch", []GenICamDevice{a, b}, "", []string{`"nosuch" not found`, a.ID, b.ID}},
	} {
		id, err := resolveDevice(tc.want, tc.devs)
		if tc.err == nil {
			if err != nil || id != tc.id {
				t.Errorf("resolve %q = %q, %v; want %q", tc.want, id, err, tc.id)
			}
			continue
		}
		if err == nil {
			t.Errorf("resolve %q = %q, want an error", tc.want, id)
			continue
		}
		for _, w := range tc.err {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("resolve %q: %v\nwant it to name %q", tc.want, err, w)
			}
		}
	}
}

func TestIntRangeFit(t *testing.T) {
	w := intRange{Min: 16, Max: 2048, Inc: 8}
	for _, c := range []struct {
		r       intRange
		v       int64
		largest bool
		got     int64
		err     string
	}{
		{w, 0, true, 2048, ""},
		{intRange{Min: 16, Max: 2045, Inc: 8}, 0, true, 2040, ""}, // the largest on the grid
		{w, 512, false, 512, ""},
		{w, 16, false, 16, ""},
		{w, 513, false, 0, "Width 513 is not a step of 8 from 16: try 512 or 520"},
		{w, 2047, false, 0, "try 2040"},
		{w, 4096, false, 0, "Width 4096 outside the camera's [16, 2048]"},
		{w, 8, false, 0, "outside"},
		{intRange{Min: 0, Max: 10, Inc: 0}, 7, false, 7, ""}, // no increment given: 1
		{intRange{Min: 1, Max: 0, Inc: 1}, 0, true, 0, "allows nothing"},
	} {
		got, err := c.r.fit("Width", c.v, c.largest)
		if c.err == "" {
			if err != nil || got != c.got {
				t.Errorf("%+v fit %d = %d, %v; want %d", c.r, c.v, got, err, c.got)
			}
		} else if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%+v fit %d: %v, want %q", c.r, c.v, err, c.err)
		}
	}
}

func TestConvertMono(t *testing.T) {
	mono8, _ := lookupFormat("Mono8")
	mono12, _ := lookupFormat("Mono12")
	mono16, _ := lookupFormat("Mono16")
	// 3×2 Mono8 with 2 bytes of padding per line.
	data := []byte{1, 2, 3, 0xEE, 0xEE, 250, 251, 255}
	dst := make([]float64, 6)
	if err := convertMono(dst, data, 3, 2, 5, mono8); err != nil {
		t.Fatal(err)
	}
	if want := []float64{1, 2, 3, 250, 251, 255}; !equal(dst, want) {
		t.Errorf("Mono8 %v, want %v", dst, want)
	}
	// 2×2 Mono16 little-endian, no padding.
	vals := []uint16{0, 1, 0x1234, 65535}
	data = make([]byte, 8)
	for i, v := range vals {
		binary.LittleEndian.PutUint16(data[2*i:], v)
	}
	dst = make([]float64, 4)
	if err := convertMono(dst, data, 2, 2, 4, mono16); err != nil {
		t.Fatal(err)
	}
	if want := []float64{0, 1, 0x1234, 65535}; !equal(dst, want) {
		t.Errorf("Mono16 %v, want %v", dst, want)
	}
	// The same bytes as Mono12: 0x1234 and 65535 are above 4095.
	if err := convertMono(dst, data, 2, 2, 4, mono12); err == nil || !strings.Contains(err.Error(), "65535, above 4095") {
		t.Errorf("Mono12 with 16-bit values: %v, want a packing error", err)
	}
	if err := convertMono(dst, data[:7], 2, 2, 4, mono16); err == nil || !strings.Contains(err.Error(), "7 bytes, want 8") {
		t.Errorf("short frame: %v", err)
	}
	if err := convertMono(dst, data, 2, 2, 3, mono16); err == nil {
		t.Error("stride shorter than a line accepted")
	}
}

// FuzzConvertMono: any bytes and geometry either convert to what a direct
// per-pixel decode gives, or fail; never a panic or a wrong value.
func FuzzConvertMono(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8}, uint8(2), uint8(2), uint8(0), uint8(3))
	f.Add([]byte{0xff, 0x0f, 0x00, 0x10}, uint8(2), uint8(1), uint8(0), uint8(2))
	f.Fuzz(func(t *testing.T, data []byte, w8, h8, pad8, fi uint8) {
		w, h, pad := int(w8%16)+1, int(h8%16)+1, int(pad8%4)
		fm := monoFormats[int(fi)%len(monoFormats)]
		stride := w*fm.bytes + pad
		dst := make([]float64, w*h)
		err := convertMono(dst, data, w, h, stride, fm)
		if len(data) < stride*(h-1)+w*fm.bytes {
			if err == nil {
				t.Fatal("short data accepted")
			}
			return
		}
		over := false
		for y := range h {
			for x := range w {
				off := y*stride + x*fm.bytes
				v := float64(data[off])
				if fm.bytes == 2 {
					v = float64(uint16(data[off]) | uint16(data[off+1])<<8)
				}
				over = over || v > fm.full()
				if err == nil && dst[y*w+x] != v {
					t.Fatalf("pixel (%d, %d) = %v, want %v", x, y, dst[y*w+x], v)
				}
			}
		}
		if over != (err != nil) {
			t.Fatalf("values above full scale: %v, error: %v", over, err)
		}
	})
}

func TestNewerID(t *testing.T) {
	for _, c := range []struct {
		a, b  uint64
		newer bool
	}{
		{2, 1, true}, {1, 2, false}, {5, 5, false},
		{1, 65535, true}, // 16-bit wrap (0 is skipped)
		{65535, 1, false},
		{40000, 1, false},                                   // more than half the range ahead: behind
		{1 << 20, 1 << 19, true}, {1 << 19, 1 << 20, false}, // 64-bit IDs
	} {
		if got := newerID(c.a, c.b); got != c.newer {
			t.Errorf("newerID(%d, %d) = %v", c.a, c.b, got)
		}
	}
}

// A source with a full scale: Device counts saturated ROI pixels per
// frame and reports the largest count of the frames averaged.
func TestSaturatedCount(t *testing.T) {
	ctx := context.Background()
	grab := 0
	// Frame k: pixel i is 100·(i+k); 4×2 frame, full scale 500.
	frame := func(_ context.Context, dst []float64) error {
		for i := range dst {
			dst[i] = float64(100 * (i + grab))
		}
		grab++
		return nil
	}
	src, err := NewMemory(4, 2, time.Millisecond, 500, frame)
	if err != nil {
		t.Fatal(err)
	}
	cam, err := New(ctx, src, Config{ROI: []int{1, 0, 3, 2}, Average: 2})
	if err != nil {
		t.Fatal(err)
	}
	// Independent count on the clipped frames k0, k0+1: the full frame
	// minus the column outside the ROI.
	want := func(k0 int) int {
		most := 0
		for k := k0; k < k0+2; k++ {
			n := 0
			for i := range 8 {
				if i%4 != 0 && math.Min(float64(100*(i+k)), 500) >= 500 {
					n++
				}
			}
			most = max(most, n)
		}
		return most
	}
	// A memory source's exposure is the instant its clock reads at each
	// grab: ticks 1 ms apart, so the two frames averaged span 1 ms.
	t0, tick := time.Unix(1000, 0), 0
	src.SetClock(func() time.Time { tick++; return t0.Add(time.Duration(tick) * time.Millisecond) })
	for k0 := 0; k0 < 6; k0 += 2 {
		img, err := cam.Capture(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if img.Saturated != want(k0) {
			t.Errorf("frames %d, %d: saturated = %d, want %d", k0, k0+1, img.Saturated, want(k0))
		}
		if first := t0.Add(time.Duration(k0+1) * time.Millisecond); !img.Start.Equal(first) || !img.End.Equal(first.Add(time.Millisecond)) {
			t.Errorf("frames %d, %d: exposure %v to %v, want %v to 1ms later", k0, k0+1, img.Start, img.End, first)
		}
	}
	if n := countAtLeast([]float64{1, 5, 5, 9}, 2, image.Rect(1, 0, 2, 2), 5); n != 2 {
		t.Errorf("countAtLeast = %d", n)
	}
}

// In any build, options are checked before Aravis is reached.
func TestOpenGenICamValidatesFirst(t *testing.T) {
	_, err := OpenGenICam(context.Background(), GenICamOpts{Device: "cam9", Trigger: "sometimes"})
	if err == nil || !strings.Contains(err.Error(), "genicam(cam9)") || !strings.Contains(err.Error(), `trigger "sometimes"`) {
		t.Errorf("bad trigger: %v", err)
	}
	if errors.Is(err, ErrNoAravis) {
		t.Error("validation should come before the build check")
	}
}
