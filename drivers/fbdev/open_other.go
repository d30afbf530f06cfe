//go:build !linux

package fbdev

import (
	"errors"
	"fmt"
)

// Open is only implemented on Linux; elsewhere use New with memory mapped
// by other means.
func Open(path string, opts *Opts) (*Dev, error) {
	return nil, fmt.Errorf("fbdev(%s): %w", path, errors.ErrUnsupported)
}
