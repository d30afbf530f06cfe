//go:build !aravis || !cgo

package camera

import "time"

// The pure build: the GenICam driver compiles against these stubs and
// OpenGenICam and ListGenICam return ErrNoAravis before reaching them.

const aravisBuiltIn = false

type arvCam struct{}

type arvBuf struct{}

func arvList() ([]GenICamDevice, error)                     { return nil, ErrNoAravis }
func arvOpen(string) (*arvCam, error)                       { return nil, ErrNoAravis }
func (*arvCam) controlLost() bool                           { return true }
func (*arvCam) isGV() bool                                  { return false }
func (*arvCam) available(string) bool                       { return false }
func (*arvCam) setInt(string, int64) error                  { return ErrNoAravis }
func (*arvCam) getInt(string) (int64, error)                { return 0, ErrNoAravis }
func (*arvCam) intRange(string) (intRange, error)           { return intRange{}, ErrNoAravis }
func (*arvCam) setFloat(string, float64) error              { return ErrNoAravis }
func (*arvCam) getFloat(string) (float64, error)            { return 0, ErrNoAravis }
func (*arvCam) floatRange(string) (float64, float64, error) { return 0, 0, ErrNoAravis }
func (*arvCam) setString(string, string) error              { return ErrNoAravis }
func (*arvCam) getString(string) (string, error)            { return "", ErrNoAravis }
func (*arvCam) entries(string) ([]string, error)            { return nil, ErrNoAravis }
func (*arvCam) execute(string) error                        { return ErrNoAravis }
func (*arvCam) payload() (int, error)                       { return 0, ErrNoAravis }
func (*arvCam) setPacketSize(int) error                     { return ErrNoAravis }
func (*arvCam) packetSize() (int, error)                    { return 0, ErrNoAravis }
func (*arvCam) tickFrequency() (uint64, error)              { return 0, ErrNoAravis }
func (*arvCam) startStream(int, int, bool) error            { return ErrNoAravis }
func (*arvCam) stopStream()                                 {}
func (*arvCam) pop(time.Duration) (arvBuf, bool)            { return arvBuf{}, false }
func (*arvCam) push(arvBuf)                                 {}
func (arvBuf) frame() rawFrame                              { return rawFrame{} }
func (*arvCam) close()                                      {}
