//go:build aravis && cgo

package camera

// The only cgo of the GenICam backend: thin calls into Aravis 0.8
// (Debian libaravis-dev). Every decision (which feature, in which order,
// which frame is fresh) is in genicam.go, which the pure build compiles
// against the stubs of genicam_noaravis.go.

/*
#cgo pkg-config: aravis-0.8
#include <arv.h>
#include <stdlib.h>

// The heartbeat thread of a GigE Vision device emits control-lost when the
// camera stops answering; the flag lets a frame wait stop at once.
static void arvgo_on_control_lost(ArvDevice *device, gpointer flag) {
	g_atomic_int_set((gint *) flag, 1);
}

static gint *arvgo_watch_control_lost(ArvCamera *cam) {
	gint *flag = g_new0(gint, 1);
	g_signal_connect(arv_camera_get_device(cam), "control-lost", G_CALLBACK(arvgo_on_control_lost), flag);
	return flag;
}

static int arvgo_flag(gint *flag) { return g_atomic_int_get(flag); }

// arvgo_close drops the camera; the flag is freed after the device is
// finalized, which joins its heartbeat thread.
static void arvgo_close(ArvCamera *cam, gint *flag) {
	g_signal_handlers_disconnect_by_data(arv_camera_get_device(cam), flag);
	g_object_unref(cam);
	g_free(flag);
}

static void arvgo_set_packet_resend(ArvStream *stream, int resend) {
	if (ARV_IS_GV_STREAM(stream))
		g_object_set(stream, "packet-resend",
			resend ? ARV_GV_STREAM_PACKET_RESEND_ALWAYS : ARV_GV_STREAM_PACKET_RESEND_NEVER, NULL);
}

static guint64 arvgo_gv_tick_frequency(ArvCamera *cam, GError **error) {
	ArvDevice *dev = arv_camera_get_device(cam);
	if (!ARV_IS_GV_DEVICE(dev))
		return 0;
	return arv_gv_device_get_timestamp_tick_frequency(ARV_GV_DEVICE(dev), error);
}

static const char *arvgo_str(const char **list, guint i) { return list[i]; }
*/
import "C"

import (
	"errors"
	"sync"
	"time"
	"unsafe"
)

// aravisBuiltIn is true in a build with Aravis (-tags aravis, cgo).
const aravisBuiltIn = true

// listMu serializes Aravis' process-wide device list.
var listMu sync.Mutex

// arvList discovers the cameras Aravis can reach (GigE Vision broadcast on
// every interface, USB3 Vision). It blocks for the discovery timeout
// (about a second).
func arvList() ([]GenICamDevice, error) {
	listMu.Lock()
	defer listMu.Unlock()
	C.arv_update_device_list()
	n := int(C.arv_get_n_devices())
	devs := make([]GenICamDevice, 0, n)
	for i := range n {
		u := C.uint(i)
		devs = append(devs, GenICamDevice{
			ID:       C.GoString(C.arv_get_device_id(u)),
			Vendor:   C.GoString(C.arv_get_device_vendor(u)),
			Model:    C.GoString(C.arv_get_device_model(u)),
			Serial:   C.GoString(C.arv_get_device_serial_nbr(u)),
			Address:  C.GoString(C.arv_get_device_address(u)),
			Physical: C.GoString(C.arv_get_device_physical_id(u)),
			Protocol: C.GoString(C.arv_get_device_protocol(u)),
		})
	}
	return devs, nil
}

// gerror turns a GError into a Go error and frees it. A timeout of the
// control channel is errSilent too.
func gerror(e *C.GError) error {
	if e == nil {
		return nil
	}
	defer C.g_error_free(e)
	err := &arvError{msg: C.GoString(e.message)}
	err.timeout = e.domain == C.arv_device_error_quark() && e.code == C.ARV_DEVICE_ERROR_TIMEOUT
	return err
}

type arvError struct {
	msg     string
	timeout bool
}

func (e *arvError) Error() string {
	if e.timeout {
		return e.msg + " (" + errSilent.Error() + ")"
	}
	return e.msg
}

func (e *arvError) Is(target error) bool { return e.timeout && target == errSilent }

// arvCam is an open camera with at most one stream.
type arvCam struct {
	cam    *C.ArvCamera
	stream *C.ArvStream
	lost   *C.gint // control-lost flag, C memory
}

// arvOpen opens a camera by Aravis device ID or address.
func arvOpen(id string) (*arvCam, error) {
	cid := C.CString(id)
	defer C.free(unsafe.Pointer(cid))
	var e *C.GError
	cam := C.arv_camera_new(cid, &e)
	if err := gerror(e); err != nil || cam == nil {
		if cam != nil {
			C.g_object_unref(C.gpointer(cam))
		}
		return nil, errors.Join(errors.New("open failed"), err)
	}
	return &arvCam{cam: cam, lost: C.arvgo_watch_control_lost(cam)}, nil
}

func (a *arvCam) controlLost() bool { return C.arvgo_flag(a.lost) != 0 }

func (a *arvCam) isGV() bool { return C.arv_camera_is_gv_device(a.cam) != 0 }

func withName(feature string, f func(*C.char)) {
	c := C.CString(feature)
	defer C.free(unsafe.Pointer(c))
	f(c)
}

func (a *arvCam) available(feature string) bool {
	var ok C.gboolean
	withName(feature, func(c *C.char) { ok = C.arv_camera_is_feature_available(a.cam, c, nil) })
	return ok != 0
}

func (a *arvCam) setInt(feature string, v int64) (err error) {
	withName(feature, func(c *C.char) {
		var e *C.GError
		C.arv_camera_set_integer(a.cam, c, C.gint64(v), &e)
		err = gerror(e)
	})
	return err
}

func (a *arvCam) getInt(feature string) (v int64, err error) {
	withName(feature, func(c *C.char) {
		var e *C.GError
		v = int64(C.arv_camera_get_integer(a.cam, c, &e))
		err = gerror(e)
	})
	return v, err
}

func (a *arvCam) intRange(feature string) (r intRange, err error) {
	withName(feature, func(c *C.char) {
		var lo, hi C.gint64
		var e *C.GError
		C.arv_camera_get_integer_bounds(a.cam, c, &lo, &hi, &e)
		if err = gerror(e); err != nil {
			return
		}
		inc := C.arv_camera_get_integer_increment(a.cam, c, &e)
		if err = gerror(e); err != nil {
			return
		}
		r = intRange{Min: int64(lo), Max: int64(hi), Inc: int64(inc)}
	})
	return r, err
}

func (a *arvCam) setFloat(feature string, v float64) (err error) {
	withName(feature, func(c *C.char) {
		var e *C.GError
		C.arv_camera_set_float(a.cam, c, C.double(v), &e)
		err = gerror(e)
	})
	return err
}

func (a *arvCam) getFloat(feature string) (v float64, err error) {
	withName(feature, func(c *C.char) {
		var e *C.GError
		v = float64(C.arv_camera_get_float(a.cam, c, &e))
		err = gerror(e)
	})
	return v, err
}

func (a *arvCam) floatRange(feature string) (lo, hi float64, err error) {
	withName(feature, func(c *C.char) {
		var l, h C.double
		var e *C.GError
		C.arv_camera_get_float_bounds(a.cam, c, &l, &h, &e)
		lo, hi, err = float64(l), float64(h), gerror(e)
	})
	return lo, hi, err
}

func (a *arvCam) setString(feature, v string) (err error) {
	withName(feature, func(c *C.char) {
		cv := C.CString(v)
		defer C.free(unsafe.Pointer(cv))
		var e *C.GError
		C.arv_camera_set_string(a.cam, c, cv, &e)
		err = gerror(e)
	})
	return err
}

func (a *arvCam) getString(feature string) (v string, err error) {
	withName(feature, func(c *C.char) {
		var e *C.GError
		s := C.arv_camera_get_string(a.cam, c, &e)
		if err = gerror(e); err == nil && s != nil {
			v = C.GoString(s)
		}
	})
	return v, err
}

// entries lists the available entries of an enumeration feature.
func (a *arvCam) entries(feature string) (names []string, err error) {
	withName(feature, func(c *C.char) {
		var n C.guint
		var e *C.GError
		list := C.arv_camera_dup_available_enumerations_as_strings(a.cam, c, &n, &e)
		if err = gerror(e); err != nil {
			return
		}
		defer C.g_free(C.gpointer(unsafe.Pointer(list)))
		for i := range C.guint(n) {
			names = append(names, C.GoString(C.arvgo_str(list, i)))
		}
	})
	return names, err
}

func (a *arvCam) execute(feature string) (err error) {
	withName(feature, func(c *C.char) {
		var e *C.GError
		C.arv_camera_execute_command(a.cam, c, &e)
		err = gerror(e)
	})
	return err
}

func (a *arvCam) payload() (int, error) {
	var e *C.GError
	n := C.arv_camera_get_payload(a.cam, &e)
	return int(n), gerror(e)
}

func (a *arvCam) setPacketSize(n int) error {
	var e *C.GError
	C.arv_camera_gv_set_packet_size(a.cam, C.gint(n), &e)
	return gerror(e)
}

func (a *arvCam) packetSize() (int, error) {
	var e *C.GError
	n := C.arv_camera_gv_get_packet_size(a.cam, &e)
	return int(n), gerror(e)
}

// tickFrequency is a GigE Vision device's timestamp tick frequency (Hz),
// 0 for other devices.
func (a *arvCam) tickFrequency() (uint64, error) {
	var e *C.GError
	f := C.arvgo_gv_tick_frequency(a.cam, &e)
	return uint64(f), gerror(e)
}

// startStream creates the stream with n buffers of size bytes.
func (a *arvCam) startStream(n, size int, resend bool) error {
	var e *C.GError
	s := C.arv_camera_create_stream(a.cam, nil, nil, &e)
	if err := gerror(e); err != nil || s == nil {
		if s != nil {
			C.g_object_unref(C.gpointer(s))
		}
		return errors.Join(errors.New("create stream failed"), err)
	}
	r := 0
	if resend {
		r = 1
	}
	C.arvgo_set_packet_resend(s, C.int(r))
	for range n {
		C.arv_stream_push_buffer(s, C.arv_buffer_new_allocate(C.size_t(size)))
	}
	a.stream = s
	return nil
}

// stopStream drops the stream and its buffers.
func (a *arvCam) stopStream() {
	if a.stream != nil {
		C.g_object_unref(C.gpointer(a.stream))
		a.stream = nil
	}
}

// arvBuf is a filled buffer on loan from the stream until push.
type arvBuf struct{ b *C.ArvBuffer }

// pop waits up to d for a buffer; ok is false on timeout.
func (a *arvCam) pop(d time.Duration) (arvBuf, bool) {
	var b *C.ArvBuffer
	if d <= 0 {
		b = C.arv_stream_try_pop_buffer(a.stream)
	} else {
		b = C.arv_stream_timeout_pop_buffer(a.stream, C.guint64(d/time.Microsecond))
	}
	return arvBuf{b}, b != nil
}

func (a *arvCam) push(b arvBuf) { C.arv_stream_push_buffer(a.stream, b.b) }

// frame describes b; data aliases the buffer's C memory, valid until push.
func (b arvBuf) frame() rawFrame {
	f := rawFrame{
		Status:    int(C.arv_buffer_get_status(b.b)),
		ID:        uint64(C.arv_buffer_get_frame_id(b.b)),
		Timestamp: uint64(C.arv_buffer_get_timestamp(b.b)),
		System:    uint64(C.arv_buffer_get_system_timestamp(b.b)),
	}
	if f.Status != 0 || C.arv_buffer_get_payload_type(b.b) != C.ARV_BUFFER_PAYLOAD_TYPE_IMAGE {
		return f
	}
	var size C.size_t
	data := C.arv_buffer_get_image_data(b.b, &size)
	var xpad, ypad C.gint
	C.arv_buffer_get_image_padding(b.b, &xpad, &ypad)
	f.PadX = int(xpad)
	f.Width = int(C.arv_buffer_get_image_width(b.b))
	f.Height = int(C.arv_buffer_get_image_height(b.b))
	f.Format = uint32(C.arv_buffer_get_image_pixel_format(b.b))
	if data != nil && size > 0 {
		f.Data = unsafe.Slice((*byte)(data), int(size))
	}
	return f
}

func (a *arvCam) close() {
	a.stopStream()
	if a.cam != nil {
		C.arvgo_close(a.cam, a.lost)
		a.cam, a.lost = nil, nil
	}
}
