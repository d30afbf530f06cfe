//go:build !linux

package camera

import (
	"context"
	"errors"
	"time"
)

// V4L2Opts configures OpenV4L2.
type V4L2Opts struct {
	Width, Height int
	Format        string
	Buffers       int
	Skip          int
}

// V4L2 is a Linux video capture device; elsewhere it cannot be opened.
type V4L2 struct{}

// OpenV4L2 fails: V4L2 is Linux only.
func OpenV4L2(path string, o V4L2Opts) (*V4L2, error) {
	return nil, errors.New("v4l2(" + path + "): V4L2 is only available on Linux")
}

func (*V4L2) Size() (w, h int)                                 { return 0, 0 }
func (*V4L2) Exposure() time.Duration                          { return 0 }
func (*V4L2) SetExposure(context.Context, time.Duration) error { return errors.ErrUnsupported }
func (*V4L2) Grab(context.Context, []float64) error            { return errors.ErrUnsupported }
func (*V4L2) Close() error                                     { return nil }
