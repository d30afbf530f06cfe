//go:build !linux

package bench

import (
	"context"
	"errors"

	"github.com/insitu-lab/insitu/drivers/scpi/emulator"
)

// ServePTY needs Linux pseudo-terminals.
func ServePTY(ctx context.Context, in *emulator.Instrument, ready func(path string)) error {
	return errors.New("bench: serving on a pty needs Linux")
}
