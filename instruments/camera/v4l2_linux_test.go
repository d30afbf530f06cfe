//go:build linux

package camera

import (
	"strings"
	"testing"
	"unsafe"
)

// Sizes and request numbers printed by a C program including
// <linux/videodev2.h> from Debian 12's kernel headers (6.1), amd64.
func TestV4L2ABI(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		t.Skip("constants recorded for 64-bit")
	}
	sizes := []struct {
		name      string
		got, want uintptr
	}{
		{"v4l2_capability", unsafe.Sizeof(v4l2Capability{}), 104},
		{"v4l2_format", unsafe.Sizeof(v4l2Format{}), 208},
		{"v4l2_pix_format", unsafe.Sizeof(v4l2PixFormat{}), 48},
		{"v4l2_requestbuffers", unsafe.Sizeof(v4l2RequestBuffers{}), 20},
		{"v4l2_buffer", unsafe.Sizeof(v4l2Buffer{}), 88},
		{"v4l2_buffer.m", unsafe.Offsetof(v4l2Buffer{}.Offset), 64},
		{"v4l2_buffer.length", unsafe.Offsetof(v4l2Buffer{}.Length), 72},
		{"v4l2_control", unsafe.Sizeof(v4l2Control{}), 8},
		{"VIDIOC_QUERYCAP", vidiocQueryCap, 0x80685600},
		{"VIDIOC_S_FMT", vidiocSFmt, 0xc0d05605},
		{"VIDIOC_REQBUFS", vidiocReqBufs, 0xc0145608},
		{"VIDIOC_QUERYBUF", vidiocQueryBuf, 0xc0585609},
		{"VIDIOC_QBUF", vidiocQBuf, 0xc058560f},
		{"VIDIOC_DQBUF", vidiocDQBuf, 0xc0585611},
		{"VIDIOC_STREAMON", vidiocStreamOn, 0x40045612},
		{"VIDIOC_STREAMOFF", vidiocStreamOff, 0x40045613},
		{"VIDIOC_G_CTRL", vidiocGCtrl, 0xc008561b},
		{"VIDIOC_S_CTRL", vidiocSCtrl, 0xc008561c},
		{"V4L2_PIX_FMT_GREY", pixGrey, 0x59455247},
		{"V4L2_PIX_FMT_Y16", pixY16, 0x20363159},
		{"V4L2_CID_EXPOSURE_ABSOLUTE", cidExposureAbsolute, 0x9a0902},
	}
	for _, s := range sizes {
		if s.got != s.want {
			t.Errorf("%s = %#x, want %#x", s.name, s.got, s.want)
		}
	}
}

func TestV4L2NotADevice(t *testing.T) {
	_, err := OpenV4L2("/dev/null", V4L2Opts{Width: 8, Height: 8})
	if err == nil || !strings.Contains(err.Error(), "/dev/null") || !strings.Contains(err.Error(), "not a V4L2 device") {
		t.Errorf("OpenV4L2(/dev/null) = %v, want an error naming the path", err)
	}
	if _, err := OpenV4L2("/nonexistent/video9", V4L2Opts{}); err == nil || !strings.Contains(err.Error(), "/nonexistent/video9") {
		t.Errorf("missing path: %v", err)
	}
}
