package camera

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net"
	"slices"
	"strings"
	"sync"
	"time"
)

// The GenICam backend drives GigE Vision and USB3 Vision cameras through
// Aravis 0.8 (cgo, build tag aravis; genicam_aravis.go holds every C call).
// This file is the driver: the configuration, the order the GenICam
// features are set in, frame conversion and the rules that decide which
// frame a Grab may return. It compiles in the pure build too, where
// opening a camera fails with ErrNoAravis.
//
// One frame per Grab, exposed after the Grab began:
//
//   - trigger: software (default). The camera exposes only when told
//     (TriggerSelector FrameStart, TriggerMode On, TriggerSource Software).
//     Grab returns the buffers already in the stream to it unread, then
//     executes TriggerSoftware and waits for the frame.
//   - trigger: free_run. The camera streams; Grab drops what is queued and
//     waits for a frame whose exposure began after the call.
//
// Which frames are fresh is proved with the camera's own clock where it
// can be read (clock modes, chosen when the camera is opened):
//
//   - latch: the camera latches its timestamp counter on command
//     (GevTimestampControlLatch/GevTimestampValue on GigE Vision, SFNC
//     TimestampLatch/TimestampLatchValue). Each Grab latches it first; a
//     frame is fresh when its timestamp is not earlier than the latched
//     value — one clock, no offset to estimate.
//   - host: the camera stamps frames with the host's wall clock (Aravis'
//     fake camera; a producer that stamps on arrival). A frame is fresh
//     when its timestamp is not earlier than the Grab's start.
//   - none: no comparable clock. Software trigger: the frame after the
//     trigger, with a frame ID newer than every one seen before it; after
//     any failed Grab (a timeout, a cancelled wait, a broken frame) the
//     next one stops acquisition and opens a new stream (a new UDP port on
//     GigE), so no frame triggered earlier can arrive late. Free run: the
//     third frame after the queue was emptied (the first two may have
//     been exposing when the call began, with overlapped readout).
//
// UNTESTED WITHOUT HARDWARE: only Aravis' fake GigE Vision camera over
// loopback (clock mode host) is tested. The latch clock, USB3 Vision,
// real GigE packet sizes and resends, Mono10/Mono12 and binning's effect
// on the image have never met a camera.

// ErrNoAravis is the error of a GenICam camera in a build without Aravis.
var ErrNoAravis = errors.New("built without Aravis: rebuild with make build-aravis (cgo; Debian's libaravis-dev)")

// errSilent marks an error of a camera that stopped answering its control
// channel; Close then releases it without waiting for its answers.
var errSilent = errors.New("the camera does not answer: is it powered and connected?")

// AravisBuiltIn reports whether this build can drive GenICam cameras.
func AravisBuiltIn() bool { return aravisBuiltIn }

// Trigger modes of a GenICam camera.
const (
	TriggerSoftware = "software"
	TriggerFreeRun  = "free_run"
)

// GenICamOpts configures OpenGenICam; the keys of a camera part's
// `backend: {type: genicam, ...}` section.
type GenICamOpts struct {
	// Device is an Aravis device ID (Vendor-Model-Serial), an IP address
	// or a serial number; empty means the only camera there is.
	Device string
	// PixelFormat is Mono8 (default), Mono10, Mono12 or Mono16, the last
	// three unpacked in 16 bits.
	PixelFormat string
	// Exposure is set when the camera is opened if positive (the camera
	// part's exposure key); 0 leaves the camera's.
	Exposure time.Duration
	// Gain is set if not nil: the Gain feature (dB) or, on cameras with
	// only GainRaw, that integer.
	Gain *float64
	// The camera-side region (in binned pixels): Width or Height 0 means
	// the largest the sensor allows from the offset.
	OffsetX, OffsetY, Width, Height int
	// Binning is [horizontal, vertical], or one value for both; empty
	// leaves 1×1.
	Binning []int
	// Trigger is software (default) or free_run.
	Trigger string
	// FrameTimeout bounds the wait for a frame after the trigger; 0 means
	// one second plus the exposure.
	FrameTimeout time.Duration
	// PacketSize is the GigE Vision stream packet size in bytes (at most
	// the network's MTU); 0 leaves Aravis' negotiation.
	PacketSize int
	// PacketResend asks a GigE Vision camera to send lost packets again;
	// nil means yes.
	PacketResend *bool
	// Buffers is the number of stream buffers; 0 means 4.
	Buffers int
}

// monoFormat is a PFNC monochrome pixel format the backend converts.
type monoFormat struct {
	name  string
	code  uint32 // PFNC value
	bytes int    // per pixel
	bits  int    // significant bits
}

var monoFormats = []monoFormat{
	{"Mono8", 0x01080001, 1, 8},
	{"Mono10", 0x01100003, 2, 10},
	{"Mono12", 0x01100005, 2, 12},
	{"Mono16", 0x01100007, 2, 16},
}

func lookupFormat(name string) (monoFormat, bool) {
	if name == "" {
		name = "Mono8"
	}
	for _, f := range monoFormats {
		if f.name == name {
			return f, true
		}
	}
	return monoFormat{}, false
}

// full is the value of a saturated pixel.
func (f monoFormat) full() float64 { return float64(uint32(1)<<f.bits - 1) }

// Validate checks o as OpenGenICam does before it looks for the camera.
func (o GenICamOpts) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if _, ok := lookupFormat(o.PixelFormat); !ok {
		bad("pixel_format %q: want Mono8, Mono10, Mono12 or Mono16 (unpacked)", o.PixelFormat)
	}
	if o.Exposure < 0 {
		bad("exposure %v is negative", o.Exposure)
	}
	if o.Gain != nil && (math.IsNaN(*o.Gain) || math.IsInf(*o.Gain, 0)) {
		bad("gain %v is not finite", *o.Gain)
	}
	if o.OffsetX < 0 || o.OffsetY < 0 || o.Width < 0 || o.Height < 0 {
		bad("offset_x %d, offset_y %d, width %d and height %d must not be negative", o.OffsetX, o.OffsetY, o.Width, o.Height)
	}
	switch len(o.Binning) {
	case 0, 1, 2:
		for _, b := range o.Binning {
			if b < 1 {
				bad("binning %v: want [horizontal, vertical] of at least 1, or one value for both", o.Binning)
				break
			}
		}
	default:
		bad("binning %v: want [horizontal, vertical], or one value for both", o.Binning)
	}
	switch o.Trigger {
	case "", TriggerSoftware, TriggerFreeRun:
	default:
		bad("trigger %q: want software or free_run", o.Trigger)
	}
	if o.FrameTimeout < 0 {
		bad("frame_timeout %v is negative", o.FrameTimeout)
	}
	if o.PacketSize < 0 || o.Buffers < 0 {
		bad("packet_size %d and buffers %d must not be negative", o.PacketSize, o.Buffers)
	}
	return errors.Join(errs...)
}

// Size is the frame size o fixes without the camera: Width×Height when
// both are set, else 0×0 (the sensor decides).
func (o GenICamOpts) Size() (w, h int) {
	if o.Width > 0 && o.Height > 0 {
		return o.Width, o.Height
	}
	return 0, 0
}

// FullScale is the value of a saturated pixel in o's pixel format (0 if
// the format is not valid).
func (o GenICamOpts) FullScale() float64 {
	f, ok := lookupFormat(o.PixelFormat)
	if !ok {
		return 0
	}
	return f.full()
}

func (o GenICamOpts) binning() (h, v int) {
	switch len(o.Binning) {
	case 1:
		return o.Binning[0], o.Binning[0]
	case 2:
		return o.Binning[0], o.Binning[1]
	}
	return 1, 1
}

// GenICamDevice is a camera Aravis found.
type GenICamDevice struct {
	ID       string // Aravis device ID: Vendor-Model-Serial
	Vendor   string
	Model    string
	Serial   string
	Address  string // IP address (GigE Vision) or USB bus address
	Physical string // MAC address (GigE Vision) or USB GUID
	Protocol string // GigEVision or USB3Vision
}

// ListGenICam discovers the cameras Aravis can reach: GigE Vision
// cameras on every interface (a broadcast, about a second) and USB3
// Vision cameras. In a build without Aravis it returns ErrNoAravis.
func ListGenICam(ctx context.Context) ([]GenICamDevice, error) {
	if !aravisBuiltIn {
		return nil, ErrNoAravis
	}
	type result struct {
		devs []GenICamDevice
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		devs, err := arvList()
		ch <- result{devs, err}
	}()
	select {
	case r := <-ch:
		return r.devs, r.err
	case <-ctx.Done():
		return nil, fmt.Errorf("genicam: looking for cameras: %w", ctx.Err())
	}
}

// listDevices formats devs for an error message.
func listDevices(devs []GenICamDevice) string {
	if len(devs) == 0 {
		return "none"
	}
	s := make([]string, len(devs))
	for i, d := range devs {
		s[i] = fmt.Sprintf("%s (serial %s, %s)", d.ID, d.Serial, d.Address)
	}
	return strings.Join(s, "; ")
}

// resolveDevice picks the device want names among devs and returns the ID
// (or address) to open: an ID, serial, address or MAC address matching
// exactly one camera; empty for the only camera. An IP address no camera
// answered discovery with is returned as is: Aravis reaches a GigE Vision
// camera on another subnet by address.
func resolveDevice(want string, devs []GenICamDevice) (string, error) {
	if want == "" {
		switch len(devs) {
		case 0:
			return "", errors.New("no GenICam camera found (GigE Vision on every interface, USB3 Vision): is it powered, on this subnet, not held by another program?")
		case 1:
			return devs[0].ID, nil
		}
		return "", fmt.Errorf("device not set and %d cameras found: give device (ID, IP address or serial): %s", len(devs), listDevices(devs))
	}
	var hits []GenICamDevice
	for _, d := range devs {
		if want == d.ID || want == d.Serial || want == d.Address || strings.EqualFold(want, d.Physical) {
			hits = append(hits, d)
		}
	}
	switch {
	case len(hits) == 1:
		return hits[0].ID, nil
	case len(hits) > 1:
		return "", fmt.Errorf("device %q matches %d cameras: give the ID: %s", want, len(hits), listDevices(hits))
	case net.ParseIP(want) != nil:
		return want, nil
	}
	return "", fmt.Errorf("device %q not found (cameras found: %s)", want, listDevices(devs))
}

// intRange is a GenICam integer feature's bounds and increment.
type intRange struct{ Min, Max, Inc int64 }

// fit checks v against r for the feature named. With largest, 0 stands
// for the largest value r allows.
func (r intRange) fit(feature string, v int64, largest bool) (int64, error) {
	inc := max(r.Inc, 1)
	if v == 0 && largest {
		if r.Max < r.Min {
			return 0, fmt.Errorf("%s: the camera allows nothing ([%d, %d])", feature, r.Min, r.Max)
		}
		return r.Max - (r.Max-r.Min)%inc, nil
	}
	if v < r.Min || v > r.Max {
		return 0, fmt.Errorf("%s %d outside the camera's [%d, %d]", feature, v, r.Min, r.Max)
	}
	if k := (v - r.Min) % inc; k != 0 {
		lo := v - k
		hint := fmt.Sprintf("%d", lo)
		if lo+inc <= r.Max {
			hint += fmt.Sprintf(" or %d", lo+inc)
		}
		return 0, fmt.Errorf("%s %d is not a step of %d from %d: try %s", feature, v, inc, r.Min, hint)
	}
	return v, nil
}

// rawFrame is a buffer from the stream as Aravis describes it.
type rawFrame struct {
	Status    int    // ArvBufferStatus: 0 is success
	ID        uint64 // frame (block) ID
	Timestamp uint64 // ns, the camera's clock (see the clock modes)
	System    uint64 // ns since the Unix epoch: the host received the frame's leader
	Width     int
	Height    int
	Format    uint32 // PFNC
	PadX      int    // bytes after each line
	Data      []byte
}

const statusCleared = 1 // ArvBufferStatus CLEARED: never filled

var bufferStatus = []string{"success", "cleared", "timeout (packets missing when the frame was given up)",
	"missing packets", "wrong packet ID", "size mismatch (the frame is larger than the buffer)", "filling", "aborted"}

func statusName(s int) string {
	if s >= 0 && s < len(bufferStatus) {
		return bufferStatus[s]
	}
	return fmt.Sprintf("status %d", s)
}

// convertMono converts a w×h frame of f, lines stride bytes apart, into
// dst. A value above the format's full scale is an error: the camera sends
// another packing or alignment than f.
func convertMono(dst []float64, data []byte, w, h, stride int, f monoFormat) error {
	line := w * f.bytes
	if w <= 0 || h <= 0 || stride < line || len(dst) != w*h {
		return fmt.Errorf("frame %d×%d, stride %d: does not fit %d values", w, h, stride, len(dst))
	}
	if need := stride*(h-1) + line; len(data) < need {
		return fmt.Errorf("%s frame %d×%d: %d bytes, want %d", f.name, w, h, len(data), need)
	}
	if f.bytes == 1 {
		for y := range h {
			row, out := data[y*stride:y*stride+line], dst[y*w:(y+1)*w]
			for x, v := range row {
				out[x] = float64(v)
			}
		}
		return nil
	}
	var top uint16
	for y := range h {
		row, out := data[y*stride:y*stride+line], dst[y*w:(y+1)*w]
		for x := range out {
			v := binary.LittleEndian.Uint16(row[2*x:])
			top = max(top, v)
			out[x] = float64(v)
		}
	}
	if float64(top) > f.full() {
		return fmt.Errorf("%s frame holds the value %d, above %g: the camera sends another packing or bit alignment", f.name, top, f.full())
	}
	return nil
}

// newerID reports whether frame ID a comes after b. GigE Vision 1.x IDs
// are 16 bits and wrap (skipping 0): both below 2¹⁶, a is newer when it
// is less than half the range ahead.
func newerID(a, b uint64) bool {
	if a < 1<<16 && b < 1<<16 {
		d := (a - b) & 0xffff
		return d != 0 && d < 1<<15
	}
	return a > b
}

type clockMode int

const (
	clockNone clockMode = iota
	clockHost
	clockLatch
)

func (c clockMode) String() string { return [...]string{"none", "host", "latch"}[c] }

// FrameInfo describes the frame a GenICam camera's last Grab returned.
type FrameInfo struct {
	ID uint64
	// Timestamp is the frame's timestamp on the camera's clock (ns).
	Timestamp uint64
	// Start and End bound the exposure on the host's wall clock: from the
	// camera's timestamp (clock modes latch and host), else host-side
	// estimates (the trigger sent; the frame's arrival).
	Start, End time.Time
	// Stale counts the frames the Grab dropped as exposed before it began.
	Stale int
}

// GenICam is a GenICam camera through Aravis, a Source. Its methods are
// safe for concurrent use; they run one at a time.
type GenICam struct {
	name    string
	opts    GenICamOpts
	format  monoFormat
	free    bool
	w, h    int
	payload int
	nbuf    int
	resend  bool

	// Clock and feature names, fixed at open.
	clock      clockMode
	latchCmd   string
	latchValue string
	tickNS     float64 // ns per tick of the latched counter
	expFeature string

	mu     sync.Mutex
	cam    *arvCam
	exp    time.Duration
	lastID uint64
	haveID bool
	dirty  bool // a trigger may be outstanding: restart before the next Grab
	silent bool // the camera stopped answering
	last   FrameInfo
	stale  int
}

// OpenGenICam finds the camera o names, configures it (pixel format,
// binning, region, exposure, gain, trigger, packet size), starts
// acquisition and grabs one frame to check the stream and choose the
// clock mode. ctx bounds the discovery and the first frame; a GenICam
// register access that hangs is bounded by Aravis' own timeouts.
func OpenGenICam(ctx context.Context, o GenICamOpts) (_ *GenICam, err error) {
	name := "genicam(" + o.Device + ")"
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if !aravisBuiltIn {
		return nil, fmt.Errorf("%s: %w", name, ErrNoAravis)
	}
	id := o.Device
	if net.ParseIP(o.Device) == nil {
		devs, err := ListGenICam(ctx)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if id, err = resolveDevice(o.Device, devs); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if o.Device == "" {
			name = "genicam(" + id + ")"
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: open: %w", name, err)
	}
	cam, err := arvOpen(id)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	g := &GenICam{name: name, opts: o, cam: cam, free: o.Trigger == TriggerFreeRun,
		nbuf: o.Buffers, resend: o.PacketResend == nil || *o.PacketResend}
	g.format, _ = lookupFormat(o.PixelFormat)
	if g.nbuf == 0 {
		g.nbuf = 4
	}
	defer func() {
		if err != nil {
			g.Close()
		}
	}()
	if err := g.configure(); err != nil {
		return nil, err
	}
	if err := g.start(); err != nil {
		return nil, err
	}
	if err := g.firstFrame(ctx); err != nil {
		return nil, err
	}
	return g, nil
}

// errf wraps an error with the camera's name.
func (g *GenICam) errf(format string, args ...any) error {
	return fmt.Errorf("%s: "+format, append([]any{g.name}, args...)...)
}

// set writes a feature (string, int64 or float64) and names it on error.
func (g *GenICam) set(feature string, v any) error {
	var err error
	switch v := v.(type) {
	case string:
		err = g.cam.setString(feature, v)
	case int64:
		err = g.cam.setInt(feature, v)
	case float64:
		err = g.cam.setFloat(feature, v)
	}
	if err != nil {
		return g.errf("set %s = %v: %w", feature, v, err)
	}
	return nil
}

// setEnum writes an enumeration entry after checking the camera offers it.
func (g *GenICam) setEnum(feature, v string) error {
	have, err := g.cam.entries(feature)
	if err != nil {
		return g.errf("read %s: %w", feature, err)
	}
	if !slices.Contains(have, v) {
		return g.errf("%s %s not offered (the camera's: %s)", feature, v, strings.Join(have, ", "))
	}
	return g.set(feature, v)
}

// setInt writes an integer feature and reads it back.
func (g *GenICam) setInt(feature string, v int64) error {
	if err := g.set(feature, v); err != nil {
		return err
	}
	got, err := g.cam.getInt(feature)
	if err != nil {
		return g.errf("read %s: %w", feature, err)
	}
	if got != v {
		return g.errf("set %s = %d: the camera reads back %d", feature, v, got)
	}
	return nil
}

// fitInt sets an integer feature to v checked against its bounds and
// increment (0 with largest: the largest allowed).
func (g *GenICam) fitInt(feature string, v int64, largest bool) error {
	r, err := g.cam.intRange(feature)
	if err != nil {
		return g.errf("read the bounds of %s: %w", feature, err)
	}
	v, err = r.fit(feature, v, largest)
	if err != nil {
		return g.errf("%w", err)
	}
	return g.setInt(feature, v)
}

// configure sets every feature the options name, in the order GenICam
// cameras need: acquisition stopped, pixel format, binning (which changes
// the region's bounds), region, exposure, gain, trigger, packet size.
func (g *GenICam) configure() error {
	o := g.opts
	_ = g.cam.execute("AcquisitionStop") // left running by another program; refused if not running
	if err := g.setEnum("PixelFormat", g.format.name); err != nil {
		return err
	}
	bh, bv := o.binning()
	for _, b := range []struct {
		feature string
		v       int
	}{{"BinningHorizontal", bh}, {"BinningVertical", bv}} {
		if !g.cam.available(b.feature) {
			if b.v > 1 {
				return g.errf("binning %d: the camera has no %s", b.v, b.feature)
			}
			continue
		}
		if err := g.fitInt(b.feature, int64(b.v), false); err != nil {
			return err
		}
	}
	// The offsets go to 0 first so that the sizes may reach the sensor's
	// edge, then the sizes, then the offsets within what is left.
	for _, f := range []string{"OffsetX", "OffsetY"} {
		if g.cam.available(f) {
			if err := g.set(f, int64(0)); err != nil {
				return err
			}
		}
	}
	if err := g.fitInt("Width", int64(o.Width), true); err != nil {
		return err
	}
	if err := g.fitInt("Height", int64(o.Height), true); err != nil {
		return err
	}
	for _, off := range []struct {
		key, feature, size string
		v, sz              int
	}{{"offset_x", "OffsetX", "width", o.OffsetX, o.Width}, {"offset_y", "OffsetY", "height", o.OffsetY, o.Height}} {
		if off.v == 0 {
			continue
		}
		if !g.cam.available(off.feature) {
			return g.errf("%s %d: the camera has no %s", off.key, off.v, off.feature)
		}
		if off.sz == 0 {
			return g.errf("%s %d needs %s (0 means the largest from offset 0)", off.key, off.v, off.size)
		}
		if err := g.fitInt(off.feature, int64(off.v), false); err != nil {
			return err
		}
	}
	w, err := g.cam.getInt("Width")
	if err != nil {
		return g.errf("read Width: %w", err)
	}
	h, err := g.cam.getInt("Height")
	if err != nil {
		return g.errf("read Height: %w", err)
	}
	g.w, g.h = int(w), int(h)

	g.expFeature = "ExposureTime"
	if !g.cam.available(g.expFeature) {
		g.expFeature = "ExposureTimeAbs"
	}
	if g.cam.available("ExposureAuto") {
		if err := g.setEnum("ExposureAuto", "Off"); err != nil {
			return err
		}
	}
	if o.Exposure > 0 {
		if err := g.setExposure(o.Exposure); err != nil {
			return err
		}
	} else if err := g.readExposure(); err != nil {
		return err
	}
	if o.Gain != nil {
		if err := g.setGain(*o.Gain); err != nil {
			return err
		}
	}
	if g.cam.available("AcquisitionMode") {
		if err := g.setEnum("AcquisitionMode", "Continuous"); err != nil {
			return err
		}
	}
	if err := g.setTrigger(); err != nil {
		return err
	}
	if !g.cam.isGV() {
		if o.PacketSize > 0 || o.PacketResend != nil {
			return g.errf("packet_size and packet_resend are GigE Vision settings; this camera is not on GigE Vision")
		}
	} else if o.PacketSize > 0 {
		if err := g.cam.setPacketSize(o.PacketSize); err != nil {
			return g.errf("set GevSCPSPacketSize = %d: %w", o.PacketSize, err)
		}
		got, err := g.cam.packetSize()
		if err != nil {
			return g.errf("read GevSCPSPacketSize: %w", err)
		}
		if got != o.PacketSize {
			return g.errf("set GevSCPSPacketSize = %d: the camera reads back %d", o.PacketSize, got)
		}
	}
	n, err := g.cam.payload()
	if err != nil {
		return g.errf("read PayloadSize: %w", err)
	}
	if n < g.w*g.h*g.format.bytes {
		return g.errf("PayloadSize %d is less than a %d×%d %s frame", n, g.w, g.h, g.format.name)
	}
	g.payload = n
	return g.chooseClock()
}

// setTrigger turns every trigger off, then (software trigger) FrameStart
// on from software.
func (g *GenICam) setTrigger() error {
	if g.cam.available("TriggerSelector") {
		sels, err := g.cam.entries("TriggerSelector")
		if err != nil {
			return g.errf("read TriggerSelector: %w", err)
		}
		for _, s := range sels {
			if err := g.set("TriggerSelector", s); err != nil {
				return err
			}
			if err := g.set("TriggerMode", "Off"); err != nil {
				return err
			}
		}
		if g.free {
			return nil
		}
		if !slices.Contains(sels, "FrameStart") {
			return g.errf("TriggerSelector has no FrameStart (the camera's: %s): use trigger: free_run", strings.Join(sels, ", "))
		}
		if err := g.set("TriggerSelector", "FrameStart"); err != nil {
			return err
		}
	} else if g.cam.available("TriggerMode") {
		if err := g.set("TriggerMode", "Off"); err != nil {
			return err
		}
	}
	if g.free {
		return nil
	}
	if !g.cam.available("TriggerSoftware") {
		return g.errf("the camera has no TriggerSoftware command: use trigger: free_run")
	}
	if err := g.set("TriggerMode", "On"); err != nil {
		return err
	}
	return g.setEnum("TriggerSource", "Software")
}

// chooseClock finds a timestamp latch (clock mode latch); firstFrame
// decides between host and none for cameras without one.
func (g *GenICam) chooseClock() error {
	tick, err := g.cam.tickFrequency()
	if err != nil {
		return g.errf("read GevTimestampTickFrequency: %w", err)
	}
	g.tickNS = 1 // USB3 Vision and SFNC latches count ns
	if tick > 0 {
		g.tickNS = 1e9 / float64(tick) // Aravis scales GigE Vision timestamps the same way
	}
	for _, l := range [][2]string{{"GevTimestampControlLatch", "GevTimestampValue"}, {"TimestampLatch", "TimestampLatchValue"}} {
		if g.cam.available(l[0]) && g.cam.available(l[1]) {
			g.clock, g.latchCmd, g.latchValue = clockLatch, l[0], l[1]
			return nil
		}
	}
	return nil
}

// start creates the stream and starts acquisition.
func (g *GenICam) start() error {
	if err := g.cam.startStream(g.nbuf, g.payload, g.resend); err != nil {
		return g.errf("%w", err)
	}
	if err := g.cam.execute("AcquisitionStart"); err != nil {
		return g.errf("execute AcquisitionStart: %w", err)
	}
	return nil
}

// restart stops acquisition, lets a frame being sent finish into the old
// stream, and starts again on a new one: nothing triggered before can
// arrive after.
func (g *GenICam) restart() error {
	if err := g.cam.execute("AcquisitionStop"); err != nil {
		return g.errf("execute AcquisitionStop: %w", err)
	}
	for {
		b, ok := g.cam.pop(50 * time.Millisecond)
		if !ok {
			break
		}
		g.cam.push(b)
	}
	g.cam.stopStream()
	g.haveID = false // a camera may number frames from 1 again
	if err := g.start(); err != nil {
		return err
	}
	g.dirty = false
	return nil
}

// firstFrame grabs one frame to check the stream works and, without a
// latch, to learn whether the camera's timestamps are the host's clock.
func (g *GenICam) firstFrame(ctx context.Context) error {
	dst := make([]float64, g.w*g.h)
	if err := g.grab(ctx, dst, true); err != nil {
		return fmt.Errorf("%w (the first frame after opening: on GigE Vision check that the firewall lets the camera's UDP stream in, and packet_size against the network's MTU)", err)
	}
	return nil
}

// String names the camera.
func (g *GenICam) String() string { return g.name }

// Size implements Source: the camera-side region's size.
func (g *GenICam) Size() (w, h int) { return g.w, g.h }

// FullScale is the value of a saturated pixel.
func (g *GenICam) FullScale() float64 { return g.format.full() }

// Clock names the clock mode chosen at open: latch, host or none.
func (g *GenICam) Clock() string { return g.clock.String() }

// Exposure implements Source: the exposure the camera reads back.
func (g *GenICam) Exposure() time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.exp
}

// SetExposure implements Source.
func (g *GenICam) SetExposure(ctx context.Context, e time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cam == nil {
		return g.errf("set exposure: closed")
	}
	return g.setExposure(e)
}

// setExposure writes the exposure in µs within the feature's bounds and
// keeps what the camera reads back; g.mu is held or g is being opened.
func (g *GenICam) setExposure(e time.Duration) error {
	us := float64(e) / float64(time.Microsecond)
	lo, hi, err := g.cam.floatRange(g.expFeature)
	if err != nil {
		return g.errf("read the bounds of %s: %w", g.expFeature, err)
	}
	if us < lo || us > hi {
		return g.errf("exposure %v outside %s [%g, %g] µs", e, g.expFeature, lo, hi)
	}
	if err := g.set(g.expFeature, us); err != nil {
		return err
	}
	return g.readExposure()
}

func (g *GenICam) readExposure() error {
	us, err := g.cam.getFloat(g.expFeature)
	if err != nil {
		return g.errf("read %s: %w", g.expFeature, err)
	}
	g.exp = time.Duration(us * float64(time.Microsecond))
	return nil
}

// setGain sets Gain (float, dB) or, on a camera without it, GainRaw.
func (g *GenICam) setGain(v float64) error {
	if g.cam.available("GainAuto") {
		if err := g.setEnum("GainAuto", "Off"); err != nil {
			return err
		}
	}
	if g.cam.available("Gain") {
		lo, hi, err := g.cam.floatRange("Gain")
		if err != nil {
			return g.errf("read the bounds of Gain: %w", err)
		}
		if v < lo || v > hi {
			return g.errf("gain %g outside Gain [%g, %g]", v, lo, hi)
		}
		return g.set("Gain", v)
	}
	if !g.cam.available("GainRaw") {
		return g.errf("gain %g: the camera has neither Gain nor GainRaw", v)
	}
	if v != math.Trunc(v) {
		return g.errf("gain %g: the camera has only GainRaw, an integer", v)
	}
	return g.fitInt("GainRaw", int64(v), false)
}

// LastFrame describes the frame the last Grab returned.
func (g *GenICam) LastFrame() FrameInfo {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.last
}

// LastExposure implements Timed.
func (g *GenICam) LastExposure() (start, end time.Time, ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.last.Start, g.last.End, !g.last.Start.IsZero()
}

// Grab implements Source: one frame exposed after the call began (see the
// trigger and clock modes above), within ctx and the frame timeout.
func (g *GenICam) Grab(ctx context.Context, dst []float64) error {
	if len(dst) != g.w*g.h {
		return g.errf("frame buffer has %d pixels, want %d×%d", len(dst), g.w, g.h)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cam == nil {
		return g.errf("grab: closed")
	}
	return g.grab(ctx, dst, false)
}

func (g *GenICam) timeout() time.Duration {
	if g.opts.FrameTimeout > 0 {
		return g.opts.FrameTimeout
	}
	return time.Second + g.exp
}

// flush gives the buffers already filled back to the stream unread,
// noting their IDs.
func (g *GenICam) flush() (n int) {
	for {
		b, ok := g.cam.pop(0)
		if !ok {
			return n
		}
		g.note(b.frame().ID)
		g.cam.push(b)
		n++
	}
}

func (g *GenICam) note(id uint64) {
	if id != 0 && (!g.haveID || newerID(id, g.lastID)) {
		g.lastID, g.haveID = id, true
	}
}

// grab is Grab with g.mu held. first is the frame taken at open: it also
// decides the clock mode of a camera without a latch.
func (g *GenICam) grab(ctx context.Context, dst []float64, first bool) (err error) {
	began := time.Now()
	defer func() {
		if err != nil {
			g.dirty = true
			g.silent = g.silent || errors.Is(err, errSilent)
		}
	}()
	if g.dirty {
		if err := g.restart(); err != nil {
			return err
		}
	}
	g.flush()
	var since uint64        // camera-clock ns no fresh frame starts before (latch, host)
	var latchedAt time.Time // host time of the latch
	switch g.clock {
	case clockLatch:
		t0 := time.Now()
		if err := g.cam.execute(g.latchCmd); err != nil {
			return g.errf("execute %s: %w", g.latchCmd, err)
		}
		t1 := time.Now()
		v, err := g.cam.getInt(g.latchValue)
		if err != nil {
			return g.errf("read %s: %w", g.latchValue, err)
		}
		since, latchedAt = uint64(float64(v)*g.tickNS), t0.Add(t1.Sub(t0)/2)
	case clockHost:
		since = uint64(began.UnixNano())
	}
	seenBefore, before := g.haveID, g.lastID
	var sent time.Time
	if !g.free {
		sent = time.Now()
		if err := g.cam.execute("TriggerSoftware"); err != nil {
			return g.errf("execute TriggerSoftware: %w", err)
		}
	}
	timeout, what := g.timeout(), "frame_timeout "+g.timeout().String()
	if first {
		// A camera may take a while to stream after AcquisitionStart.
		timeout = max(timeout, 2*time.Second+g.exp)
		what = timeout.String() + " (the first frame)"
	}
	deadline := time.Now().Add(timeout)
	arrived, stale := 0, 0
	for {
		b, err := g.wait(ctx, deadline, what)
		if err != nil {
			return err
		}
		f := b.frame()
		if f.Status == statusCleared {
			// Aravis gives a buffer back unfilled when a packet arrives
			// that belongs to no frame it can size (a trailer without its
			// leader): no frame, nothing to count.
			g.cam.push(b)
			continue
		}
		g.note(f.ID)
		arrived++
		fresh := !seenBefore || newerID(f.ID, before)
		if fresh && f.Status != 0 {
			g.cam.push(b)
			if g.free {
				stale++
				continue
			}
			return g.errf("frame %d: %s", f.ID, statusName(f.Status))
		}
		switch {
		case first:
		case g.clock != clockNone:
			fresh = fresh && f.Timestamp >= since
		case g.free:
			fresh = fresh && arrived >= 3
		}
		if !fresh {
			stale++
			g.cam.push(b)
			continue
		}
		if f.Width != g.w || f.Height != g.h || f.Format != g.format.code {
			g.cam.push(b)
			return g.errf("frame %d is %d×%d, format %#x; the camera was set to %d×%d %s (%#x)", f.ID, f.Width, f.Height, f.Format, g.w, g.h, g.format.name, g.format.code)
		}
		err = convertMono(dst, f.Data, f.Width, f.Height, f.Width*g.format.bytes+f.PadX, g.format)
		g.cam.push(b)
		if err != nil {
			return g.errf("frame %d: %w", f.ID, err)
		}
		if first && g.clock == clockNone && absDiff(f.Timestamp, f.System) < uint64(time.Second) {
			g.clock = clockHost
		}
		info := FrameInfo{ID: f.ID, Timestamp: f.Timestamp, Stale: stale}
		switch {
		case g.clock == clockLatch:
			info.Start = latchedAt.Add(time.Duration(int64(f.Timestamp - since)))
		case g.clock == clockHost:
			info.Start = time.Unix(0, int64(f.Timestamp))
		case !g.free:
			info.Start = sent // the camera exposes after the trigger reached it
		default:
			info.Start = time.Unix(0, int64(f.System)).Add(-g.exp) // the leader left after the exposure
		}
		info.End = info.Start.Add(g.exp)
		g.last, g.stale = info, g.stale+stale
		return nil
	}
}

func absDiff(a, b uint64) uint64 {
	if a > b {
		return a - b
	}
	return b - a
}

// wait pops the next buffer, in slices short enough to notice a cancelled
// context or a camera that stopped answering.
func (g *GenICam) wait(ctx context.Context, deadline time.Time, timeout string) (arvBuf, error) {
	for {
		if err := ctx.Err(); err != nil {
			return arvBuf{}, g.errf("wait for a frame: %w", err)
		}
		if g.cam.controlLost() {
			return arvBuf{}, g.errf("wait for a frame: control of the camera lost (another program took it, or it restarted)")
		}
		left := time.Until(deadline)
		if left <= 0 {
			// Is it the stream, or the camera? A register read tells.
			if _, err := g.cam.getInt("Width"); errors.Is(err, errSilent) {
				return arvBuf{}, g.errf("no frame within %v, and read Width: %w", timeout, err)
			}
			return arvBuf{}, g.errf("no frame within %v", timeout)
		}
		if d, ok := ctx.Deadline(); ok {
			left = min(left, max(time.Until(d), time.Microsecond))
		}
		if b, ok := g.cam.pop(min(left, 20*time.Millisecond)); ok {
			return b, nil
		}
	}
}

// Stale is the number of frames dropped so far as exposed before their
// Grab began.
func (g *GenICam) Stale() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.stale
}

// Close stops acquisition and releases the camera. It is safe to call
// more than once. A camera that stopped answering is released in the
// background: Aravis' goodbye to it (stream and control registers) would
// wait seconds for each answer.
func (g *GenICam) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	cam := g.cam
	if cam == nil {
		return nil
	}
	g.cam = nil
	if g.silent || cam.controlLost() {
		go cam.close()
		return nil
	}
	var err error
	if e := cam.execute("AcquisitionStop"); e != nil {
		err = g.errf("execute AcquisitionStop: %w", e)
	}
	cam.close()
	return err
}
