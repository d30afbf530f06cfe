package usbtmc

import (
	"time"

	"golang.org/x/sys/unix"
)

// From <linux/usb/tmc.h>: ioctl type '[' (91).
const (
	ioctlClear      = 0x5B02     // _IO('[', 2): device clear
	ioctlSetTimeout = 0x40045B0A // _IOW('[', 10, __u32): timeout in ms
)

func (d *Device) setKernelTimeout(t time.Duration) error {
	return d.control(func(fd uintptr) error {
		return unix.IoctlSetPointerInt(int(fd), ioctlSetTimeout, int(t/time.Millisecond))
	})
}

func (d *Device) clear() error {
	return d.control(func(fd uintptr) error {
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, fd, ioctlClear, 0)
		if errno != 0 {
			return errno
		}
		return nil
	})
}

// control runs f on the descriptor without os.File.Fd, which would switch
// the file to blocking mode and disable its deadlines.
func (d *Device) control(f func(fd uintptr) error) error {
	rc, err := d.f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = f(fd) }); err != nil {
		return err
	}
	return ferr
}
