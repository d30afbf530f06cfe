//go:build linux

package fbdev

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"unsafe"
)

// fbFile makes a plain file of size bytes filled with fill, standing in for
// /dev/fbN, and a sysfs directory path that does not exist.
func fbFile(t testing.TB, size int, fill byte) (path, nosysfs string) {
	t.Helper()
	dir := t.TempDir()
	path = filepath.Join(dir, "fb7")
	if err := os.WriteFile(path, bytes.Repeat([]byte{fill}, size), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, filepath.Join(dir, "no-sysfs")
}

func littleEndian(t *testing.T) {
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("expected bytes below are written for a little-endian host")
	}
}

// TestFormatsByteExact writes a 3×2 image into a file-backed framebuffer
// with padded stride and checks every byte, the padding (0xAA) included.
// The expected bytes are written out by hand from the layouts, not computed
// with the package's tables.
func TestFormatsByteExact(t *testing.T) {
	littleEndian(t)
	img := []uint8{
		0x00, 0xFF, 0x80,
		0x12, 0x34, 0x56,
	}
	const P = 0xAA // padding, must survive
	tests := []struct {
		f      Format
		stride int
		want   []byte
	}{
		{Gray8, 5, []byte{
			0x00, 0xFF, 0x80, P, P,
			0x12, 0x34, 0x56, P, P,
		}},
		// RGB565 word rrrrrggg gggbbbbb, little-endian: low byte first.
		// 0xFF → 0xFFFF; 0x80 → r=16 g=32 b=16 → 0x8410; 0x12 → r=2 g=4 b=2 → 0x1082;
		// 0x34 → r=6 g=13 b=6 → 0x31A6; 0x56 → r=10 g=21 b=10 → 0x52AA.
		{RGB565, 8, []byte{
			0x00, 0x00, 0xFF, 0xFF, 0x10, 0x84, P, P,
			0x82, 0x10, 0xA6, 0x31, 0xAA, 0x52, P, P,
		}},
		{RGB888, 10, []byte{
			0, 0, 0, 0xFF, 0xFF, 0xFF, 0x80, 0x80, 0x80, P,
			0x12, 0x12, 0x12, 0x34, 0x34, 0x34, 0x56, 0x56, 0x56, P,
		}},
		// XRGB8888 little-endian: B, G, R, X=0.
		{XRGB8888, 16, []byte{
			0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0, 0x80, 0x80, 0x80, 0, P, P, P, P,
			0x12, 0x12, 0x12, 0, 0x34, 0x34, 0x34, 0, 0x56, 0x56, 0x56, 0, P, P, P, P,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.f.String(), func(t *testing.T) {
			path, nosys := fbFile(t, len(tc.want), P)
			d, err := Open(path, &Opts{SysfsDir: nosys, Geometry: Geometry{Width: 3, Height: 2, Format: tc.f, Stride: tc.stride}})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if err := d.Show(context.Background(), img); err != nil {
				t.Fatal(err)
			}
			if err := d.Sync(); err != nil {
				t.Fatal(err)
			}
			got, _ := os.ReadFile(path)
			if !bytes.Equal(got, tc.want) {
				t.Errorf("Show:\n got % x\nwant % x", got, tc.want)
			}

			// ShowFunc draws the same image.
			if err := d.Blank(context.Background()); err != nil {
				t.Fatal(err)
			}
			if err := d.ShowFunc(context.Background(), func(x, y int) uint8 { return img[y*3+x] }); err != nil {
				t.Fatal(err)
			}
			if got, _ := os.ReadFile(path); !bytes.Equal(got, tc.want) {
				t.Errorf("ShowFunc:\n got % x\nwant % x", got, tc.want)
			}

			// Blank zeroes pixels, keeps padding.
			if err := d.Halt(); err != nil {
				t.Fatal(err)
			}
			got, _ = os.ReadFile(path)
			for i, b := range got {
				inPixels := i%tc.stride < 3*tc.f.BytesPerPixel()
				if inPixels && b != 0 || !inPixels && b != P {
					t.Fatalf("after Blank byte %d = %#x:\n% x", i, b, got)
				}
			}
		})
	}
}

func TestSysfsFallback(t *testing.T) {
	littleEndian(t)
	// Double-buffered 2×4 virtual, 2×2 visible, RGB565, stride 6 (2 bytes padding).
	path, _ := fbFile(t, 6*4, 0xAA)
	sys := t.TempDir()
	for name, text := range map[string]string{"virtual_size": "2,4\n", "bits_per_pixel": "16\n", "stride": "6\n"} {
		if err := os.WriteFile(filepath.Join(sys, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	d, err := Open(path, &Opts{SysfsDir: sys, Geometry: Geometry{Height: 2}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if g := d.Geometry(); g != (Geometry{Width: 2, Height: 2, Format: RGB565, Stride: 6}) {
		t.Fatalf("geometry %+v", g)
	}
	if err := d.Show(context.Background(), []uint8{0xFF, 0, 0, 0xFF}); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	want := []byte{
		0xFF, 0xFF, 0, 0, 0xAA, 0xAA,
		0, 0, 0xFF, 0xFF, 0xAA, 0xAA,
		0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, // back buffer untouched
		0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA,
	}
	if !bytes.Equal(got, want) {
		t.Errorf("got % x\nwant % x", got, want)
	}

	// Config that contradicts sysfs is refused.
	if _, err := Open(path, &Opts{SysfsDir: sys, Geometry: Geometry{Format: XRGB8888}}); err == nil || !strings.Contains(err.Error(), "bits per pixel") {
		t.Errorf("mismatched bpp: err = %v", err)
	}
	if _, err := Open(path, &Opts{SysfsDir: sys, Geometry: Geometry{Width: 3}}); err == nil {
		t.Error("width above virtual width accepted")
	}
}

func TestOpenErrors(t *testing.T) {
	path, nosys := fbFile(t, 100, 0)
	for name, g := range map[string]Geometry{
		"too small file": {Width: 10, Height: 10, Format: Gray8, Stride: 11},
		"no geometry":    {},
		"bad bpp":        {Width: 2, Height: 2, Format: 12},
		"short stride":   {Width: 4, Height: 2, Format: RGB565, Stride: 7},
	} {
		if _, err := Open(path, &Opts{SysfsDir: nosys, Geometry: g}); err == nil {
			t.Errorf("%s: no error", name)
		} else if !strings.Contains(err.Error(), path) {
			t.Errorf("%s: error %q does not name the path", name, err)
		}
	}
	if _, err := Open(filepath.Join(t.TempDir(), "missing"), nil); err == nil {
		t.Error("missing file opened")
	}
}

func TestShowErrors(t *testing.T) {
	d, err := New(make([]byte, 16), Geometry{Width: 4, Height: 4, Format: Gray8})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Show(context.Background(), make([]uint8, 15)); err == nil {
		t.Error("wrong image size accepted")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := d.Show(ctx, make([]uint8, 16)); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := d.Blank(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Blank after Close: %v", err)
	}
	if err := d.Sync(); !errors.Is(err, ErrClosed) {
		t.Errorf("Sync after Close: %v", err)
	}
	if _, err := New(make([]byte, 15), Geometry{Width: 4, Height: 4, Format: Gray8}); err == nil {
		t.Error("short memory accepted")
	}
}

func TestScreeninfo(t *testing.T) {
	if n := fmt.Sprint(unsafe.Sizeof(fbVarScreeninfo{}), unsafe.Sizeof(fbFixScreeninfo{})); n != "160 80" && n != "160 68" {
		t.Fatalf("kernel struct sizes %s, want 160 80 (64-bit) or 160 68 (32-bit)", n)
	}
	v := fbVarScreeninfo{Xres: 1920, Yres: 1080, YresVirtual: 2160, Yoffset: 1080, BitsPerPixel: 32,
		Red: fbBitfield{Offset: 16, Length: 8}, Green: fbBitfield{Offset: 8, Length: 8}, Blue: fbBitfield{Length: 8}}
	fx := fbFixScreeninfo{LineLength: 7680, SmemLen: 7680 * 2160}
	g, limit, err := fromScreeninfo(&v, &fx)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Geometry{Width: 1920, Height: 1080, Format: XRGB8888, Stride: 7680, Offset: 7680 * 1080}); g != want || limit != 7680*2160 {
		t.Errorf("got %+v limit %d, want %+v", g, limit, want)
	}
	v.BitsPerPixel, v.Green.Length = 16, 5 // RGB555
	if _, _, err := fromScreeninfo(&v, &fx); err == nil {
		t.Error("RGB555 accepted as RGB565")
	}
}

func FuzzParseSysfs(f *testing.F) {
	f.Add("1920,1080\n", "32\n", "7680\n")
	f.Add("800,600", "16", "")
	f.Add("1,1", "8", "1")
	f.Add("99999999,2", "24", "-1")
	f.Add(",", "", "0x10")
	f.Fuzz(func(t *testing.T, vs, bpp, stride string) {
		g, err := ParseSysfs(vs, bpp, stride)
		if err != nil {
			return
		}
		if err := g.Validate(); err != nil {
			t.Fatalf("accepted invalid %+v: %v", g, err)
		}
		// An accepted geometry must be drawable without panicking.
		if g.Size() <= 1<<22 {
			d, err := New(make([]byte, g.Size()), g)
			if err != nil {
				t.Fatal(err)
			}
			if err := d.Show(context.Background(), make([]uint8, g.Width*g.Height)); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func BenchmarkShow1080p(b *testing.B) {
	for _, f := range []Format{XRGB8888, RGB565, Gray8} {
		b.Run(f.String(), func(b *testing.B) {
			g := Geometry{Width: 1920, Height: 1080, Format: f}
			g, _ = g.normalize()
			path, nosys := fbFile(b, g.Size(), 0)
			d, err := Open(path, &Opts{SysfsDir: nosys, Geometry: g})
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			img := make([]uint8, 1920*1080)
			for i := range img {
				img[i] = uint8(i)
			}
			ctx := context.Background()
			b.SetBytes(int64(g.Size()))
			for b.Loop() {
				if err := d.Show(ctx, img); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestTruncatedFileIsAnError truncates the file under an open display and
// draws in this process: were the file mapped, the draw would die of SIGBUS
// and take the test binary with it. Every drawing method must return an
// error instead and leave the file as short as it was; once the file has its
// size back, drawing works again.
func TestTruncatedFileIsAnError(t *testing.T) {
	g := Geometry{Width: 256, Height: 64, Format: XRGB8888} // 64 KiB: 16 pages
	size := 256 * 64 * 4
	for _, keep := range []int64{0, 4096, int64(size) - 1} {
		t.Run(fmt.Sprint(keep), func(t *testing.T) {
			path, nosys := fbFile(t, size, 0)
			d, err := Open(path, &Opts{SysfsDir: nosys, Geometry: g})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if err := d.Show(context.Background(), make([]uint8, 256*64)); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, keep); err != nil {
				t.Fatal(err)
			}
			want := fmt.Sprintf("%s: show: file shrank to %d bytes, frame needs %d: refusing to draw", d, keep, size)
			if err := d.Show(context.Background(), bytes.Repeat([]uint8{0x80}, 256*64)); err == nil || err.Error() != want {
				t.Errorf("Show on a truncated file: %v\nwant %s", err, want)
			}
			if err := d.ShowFunc(context.Background(), func(x, y int) uint8 { return 1 }); err == nil || !strings.Contains(err.Error(), "shrank") {
				t.Errorf("ShowFunc on a truncated file: %v", err)
			}
			if err := d.Halt(); err == nil || !strings.Contains(err.Error(), "blank: file shrank") {
				t.Errorf("Halt on a truncated file: %v", err)
			}
			if st, err := os.Stat(path); err != nil || st.Size() != keep {
				t.Errorf("file size after refused draws: %v, %v; want %d", st.Size(), err, keep)
			}
			if err := os.Truncate(path, int64(size)); err != nil {
				t.Fatal(err)
			}
			if err := d.Show(context.Background(), make([]uint8, 256*64)); err != nil {
				t.Errorf("Show once the file is whole again: %v", err)
			}
		})
	}
}

// TestOpenRefusesNonFramebuffers opens paths that would take every frame
// and show none: character devices that are not framebuffers, a pipe.
func TestOpenRefusesNonFramebuffers(t *testing.T) {
	g := Geometry{Width: 4, Height: 4, Format: Gray8}
	nosys := filepath.Join(t.TempDir(), "no-sysfs")
	for _, dev := range []string{"/dev/zero", "/dev/null"} {
		if _, err := os.Stat(dev); err != nil {
			t.Logf("skipping %s: %v", dev, err)
			continue
		}
		d, err := Open(dev, &Opts{SysfsDir: nosys, Geometry: g})
		if err == nil {
			d.Close()
			t.Errorf("%s opened as a framebuffer", dev)
			continue
		}
		if want := dev + " is a character device but not a framebuffer"; !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %q, want it to say %q", dev, err, want)
		}
	}
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	if d, err := Open(fifo, &Opts{SysfsDir: nosys, Geometry: g}); err == nil {
		d.Close()
		t.Error("a named pipe opened as a framebuffer")
	} else if want := fifo + " is a named pipe"; !strings.Contains(err.Error(), want) {
		t.Errorf("fifo: error %q, want it to say %q", err, want)
	}
}

// TestOpenFileTooSmall gives a regular file fewer bytes than the geometry
// needs, the geometry coming from Opts or from sysfs.
func TestOpenFileTooSmall(t *testing.T) {
	path, nosys := fbFile(t, 4*4*4-1, 0)
	_, err := Open(path, &Opts{SysfsDir: nosys, Geometry: Geometry{Width: 4, Height: 4, Format: XRGB8888}})
	if want := fmt.Sprintf("fbdev(%s): 4x4 xrgb8888 stride 16 needs 64 bytes, the file has 63", path); err == nil || err.Error() != want {
		t.Errorf("Opts geometry: %v\nwant %s", err, want)
	}
	sys := t.TempDir()
	for name, text := range map[string]string{"virtual_size": "4,4\n", "bits_per_pixel": "32\n"} {
		if err := os.WriteFile(filepath.Join(sys, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Open(path, &Opts{SysfsDir: sys}); err == nil || !strings.Contains(err.Error(), "the file has 63") {
		t.Errorf("sysfs geometry: %v", err)
	}
}

// TestFileRowsChunked draws more rows than are written per pwrite, packed
// (one write per chunk) and padded (one write per row, padding kept), at a
// panning offset, and checks every byte of the file.
func TestFileRowsChunked(t *testing.T) {
	const w, h, off = 5, 2*ctxRows + 7, 3
	for _, stride := range []int{w, w + 2} {
		t.Run(fmt.Sprint("stride", stride), func(t *testing.T) {
			size := off + stride*h + 4
			path, nosys := fbFile(t, size, 0xAA)
			d, err := Open(path, &Opts{SysfsDir: nosys, Geometry: Geometry{Width: w, Height: h, Format: Gray8, Stride: stride, Offset: off}})
			if err != nil {
				t.Fatal(err)
			}
			img := make([]uint8, w*h)
			for i := range img {
				img[i] = uint8(i*7 + 1)
			}
			if err := d.Show(context.Background(), img); err != nil {
				t.Fatal(err)
			}
			if err := d.Sync(); err != nil {
				t.Fatal(err)
			}
			want := bytes.Repeat([]byte{0xAA}, size)
			for y := range h {
				copy(want[off+y*stride:], img[y*w:(y+1)*w])
			}
			if got, _ := os.ReadFile(path); !bytes.Equal(got, want) {
				t.Errorf("file after Show:\n got % x\nwant % x", got, want)
			}
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			if err := d.Show(context.Background(), img); !errors.Is(err, ErrClosed) {
				t.Errorf("Show after Close: %v", err)
			}
		})
	}
}
