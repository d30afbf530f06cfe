//go:build linux

package fbdev_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/insitu-lab/insitu/drivers/fbdev"
)

// A plain file stands in for /dev/fb1: with no framebuffer ioctls and no
// sysfs entry, the configured geometry is used.
func Example() {
	dir, _ := os.MkdirTemp("", "fbdev")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "fb1")
	_ = os.WriteFile(path, make([]byte, 4*8*2), 0o600) // stride 8 pixels × 4 bytes, 2 rows

	d, err := fbdev.Open(path, &fbdev.Opts{
		SysfsDir: filepath.Join(dir, "none"),
		Geometry: fbdev.Geometry{Width: 6, Height: 2, Format: fbdev.XRGB8888, Stride: 32},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer d.Close()
	defer d.Blank(context.Background()) // the SLM's safe state

	_ = d.ShowFunc(context.Background(), func(x, y int) uint8 { return uint8(40 * x) })
	fmt.Println(d.Geometry())
	// Output: 6x2 xrgb8888 stride 32
}
