package fbdev

import "encoding/binary"

// Gray→pixel tables, built once: a table lookup and one store per pixel is
// what keeps a 1920×1080 frame in the low milliseconds.
var (
	lut565  [256]uint16
	lut8888 [256]uint32
)

func init() {
	for i := range 256 {
		g := uint32(i)
		lut565[i] = uint16((g>>3)<<11 | (g>>2)<<5 | g>>3)
		lut8888[i] = g<<16 | g<<8 | g // X byte stays 0
	}
}

// packRow writes gray levels into one framebuffer row of format f. dst must
// hold len(src) pixels; padding after them is not touched.
func packRow(f Format, dst []byte, src []uint8) {
	switch f {
	case Gray8:
		copy(dst, src)
	case RGB565:
		dst = dst[:2*len(src)]
		for i, g := range src {
			binary.NativeEndian.PutUint16(dst[2*i:], lut565[g])
		}
	case RGB888:
		dst = dst[:3*len(src)]
		for i, g := range src {
			dst[3*i], dst[3*i+1], dst[3*i+2] = g, g, g
		}
	case XRGB8888:
		dst = dst[:4*len(src)]
		for i, g := range src {
			binary.NativeEndian.PutUint32(dst[4*i:], lut8888[g])
		}
	}
}
