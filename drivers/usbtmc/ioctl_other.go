//go:build !linux

package usbtmc

import (
	"syscall"
	"time"
)

// The usbtmc character device is Linux's; elsewhere there is no ioctl.
func (d *Device) setKernelTimeout(time.Duration) error { return syscall.ENOTTY }
func (d *Device) clear() error                         { return syscall.ENOTTY }
