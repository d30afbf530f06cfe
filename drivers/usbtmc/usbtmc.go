// Package usbtmc talks to a USB Test & Measurement Class instrument through
// the Linux usbtmc kernel driver's character device, /dev/usbtmcN. The
// kernel does the USBTMC framing: each write is one message, and a read
// returns (part of) the reply. *Device satisfies scpi.Conn.
//
// Timeouts: before each read the kernel driver's own timeout is set to the
// time left (USBTMC_IOCTL_SET_TIMEOUT, at least 100 ms), and its ETIMEDOUT
// becomes an error wrapping os.ErrDeadlineExceeded. On a file that is not a
// usbtmc device (a pty standing in for one in tests) the ioctls fail with
// ENOTTY and the file's own read deadline is used instead. A real usbtmc
// read cannot be interrupted by cancelling the context before the kernel
// timeout fires.
package usbtmc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"
)

// Config configures a device.
type Config struct {
	Path    string        `mapstructure:"path" doc:"the device node, e.g. /dev/usbtmc0"`
	Timeout time.Duration `mapstructure:"timeout" doc:"bound on an exchange without a deadline of its own; 0: 5s"`
}

// Defaults fills unset fields.
func (c *Config) Defaults() {
	if c.Timeout == 0 {
		c.Timeout = 5 * time.Second
	}
}

// Validate checks a defaulted config; errors name the key.
func (c Config) Validate() error {
	var errs []error
	if c.Path == "" {
		errs = append(errs, errors.New("path: missing (e.g. /dev/usbtmc0)"))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout: %v must not be negative", c.Timeout))
	}
	return errors.Join(errs...)
}

// MaxMessage bounds one ReadUntil.
const MaxMessage = 64 << 20

// minKernelTimeout is the smallest timeout the usbtmc driver accepts.
const minKernelTimeout = 100 * time.Millisecond

// Device is an open usbtmc character device.
type Device struct {
	f       *os.File
	path    string
	timeout time.Duration

	mu    sync.Mutex
	buf   []byte
	chunk []byte // read buffer, reused
	notTM bool   // ioctls failed with ENOTTY: not a usbtmc device
}

// Open opens the device at c.Path.
func Open(ctx context.Context, c Config) (*Device, error) {
	c.Defaults()
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("usbtmc: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(c.Path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("usbtmc %s: open: %w", c.Path, err)
	}
	return &Device{f: f, path: c.Path, timeout: c.Timeout}, nil
}

// String is the device path.
func (d *Device) String() string { return d.path }

// Timeout is the configured operation timeout (scpi.Timed): the SCPI
// client's exchange timeout unless the instrument sets its own.
func (d *Device) Timeout() time.Duration { return d.timeout }

// IsUSBTMC reports whether the file answered the usbtmc ioctls (false for a
// stand-in such as a pty). It is known after the first read.
func (d *Device) IsUSBTMC() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return !d.notTM
}

// Write sends p as one message.
func (d *Device) Write(ctx context.Context, p []byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("usbtmc %s: write: %w", d.path, err)
	}
	deadline := d.deadline(ctx)
	_ = d.f.SetWriteDeadline(deadline) // os.ErrNoDeadline on a non-pollable device
	if _, err := d.f.Write(p); err != nil {
		return fmt.Errorf("usbtmc %s: write: %w", d.path, mapErr(err))
	}
	return nil
}

// ReadUntil reads up to and including delim.
func (d *Device) ReadUntil(ctx context.Context, delim byte) ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	deadline := d.deadline(ctx)
	if d.chunk == nil {
		d.chunk = make([]byte, 64<<10)
	}
	chunk := d.chunk
	for {
		if i := bytes.IndexByte(d.buf, delim); i >= 0 {
			msg := bytes.Clone(d.buf[:i+1])
			d.buf = append(d.buf[:0], d.buf[i+1:]...)
			return msg, nil
		}
		if len(d.buf) > MaxMessage {
			d.buf = d.buf[:0]
			return nil, fmt.Errorf("usbtmc %s: read: no terminator in %d bytes", d.path, MaxMessage)
		}
		left := time.Until(deadline)
		if left <= 0 {
			return nil, fmt.Errorf("usbtmc %s: read: %w", d.path, os.ErrDeadlineExceeded)
		}
		if !d.notTM {
			if err := d.setKernelTimeout(max(left, minKernelTimeout)); err != nil {
				d.notTM = true
			}
		}
		_ = d.f.SetReadDeadline(deadline)
		f := d.f
		stop := context.AfterFunc(ctx, func() { f.SetReadDeadline(time.Now()) })
		n, err := d.f.Read(chunk)
		stop()
		d.buf = append(d.buf, chunk[:n]...)
		if err != nil {
			if c := ctx.Err(); c != nil && !errors.Is(c, context.DeadlineExceeded) {
				err = c
			}
			return nil, fmt.Errorf("usbtmc %s: read: %w", d.path, mapErr(err))
		}
	}
}

// Reset discards buffered input and, on a real device, sends a USBTMC
// device clear, which aborts pending transfers (scpi.Resetter).
func (d *Device) Reset(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.buf = d.buf[:0]
	if d.notTM {
		return nil
	}
	if err := d.clear(); err != nil {
		if errors.Is(err, syscall.ENOTTY) || errors.Is(err, syscall.EINVAL) {
			d.notTM = true
			return nil
		}
		return fmt.Errorf("usbtmc %s: device clear: %w", d.path, err)
	}
	return nil
}

// Close closes the device.
func (d *Device) Close() error {
	if err := d.f.Close(); err != nil {
		return fmt.Errorf("usbtmc %s: close: %w", d.path, err)
	}
	return nil
}

func (d *Device) deadline(ctx context.Context) time.Time {
	if dl, ok := ctx.Deadline(); ok {
		return dl
	}
	return time.Now().Add(d.timeout)
}

// mapErr turns the kernel driver's ETIMEDOUT into the deadline convention.
func mapErr(err error) error {
	if errors.Is(err, syscall.ETIMEDOUT) {
		return fmt.Errorf("%w (%w)", os.ErrDeadlineExceeded, err)
	}
	return err
}
