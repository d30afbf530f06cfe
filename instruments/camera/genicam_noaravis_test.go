//go:build !aravis || !cgo

package camera

import (
	"context"
	"errors"
	"testing"
)

// The pure build refuses GenICam cameras with ErrNoAravis, whose text says
// how to get them.
func TestGenICamWithoutAravis(t *testing.T) {
	if AravisBuiltIn() {
		t.Fatal("AravisBuiltIn in the pure build")
	}
	_, err := OpenGenICam(context.Background(), GenICamOpts{Device: "127.0.0.1"})
	if !errors.Is(err, ErrNoAravis) || err.Error() != "genicam(127.0.0.1): "+ErrNoAravis.Error() {
		t.Errorf("open: %v", err)
	}
	if _, err := ListGenICam(context.Background()); !errors.Is(err, ErrNoAravis) {
		t.Errorf("list: %v", err)
	}
}
