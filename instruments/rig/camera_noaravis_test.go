//go:build !aravis || !cgo

package rig

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/instruments/camera"
)

// The pure build refuses a GenICam camera when the config is checked,
// naming the file and the key, and before any part is opened.
func TestGenICamWithoutAravisRefusedAtCheck(t *testing.T) {
	p := blackbox(t, genicamRig("127.0.0.1", ""))
	const want = "test.yaml: blackbox.parts[1].backend.type: genicam: built without Aravis: rebuild with make build-aravis"
	if _, err := insitu.Describe(context.Background(), p); err == nil || !strings.Contains(err.Error(), want) || !errors.Is(err, camera.ErrNoAravis) {
		t.Errorf("config check: %v\nwant %q", err, want)
	}
	if _, err := insitu.New(context.Background(), p); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("build: %v", err)
	}
}
