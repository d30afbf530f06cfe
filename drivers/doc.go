// Package drivers is the home of transports and wire protocols (serial,
// raw SCPI over TCP, USBTMC, framebuffers, I²C chips). Drivers know nothing
// of devices or of the optimization loop; the instruments built on them do.
//
// The SCPI stack:
//
//	scpi           Client over any scpi.Conn: Write, Query, QueryFloat(s),
//	               QueryBlock, Identify, Clear, OPC, a bounded Errors drain;
//	               one command at a time; *OpError naming instrument and
//	               command; ErrTimeout. Parsers for IDN, SYST:ERR?, numbers
//	               (9.9E37 / 9.91E37) and definite-length blocks.
//	scpi/emulator  an emulated SCPI instrument served over a pty or loopback
//	               TCP, with fault injection; tests and `insitu twin serve`.
//	serial         go.bug.st/serial, by path or USB VID/PID/serial number.
//	lxi            raw SCPI over TCP 5025, deadlines, reconnect.
//	usbtmc         the Linux /dev/usbtmcN character device.
//
// Transports do not import scpi: each satisfies scpi.Conn structurally and
// reports an expired deadline as os.ErrDeadlineExceeded, like net.Conn.
package drivers
