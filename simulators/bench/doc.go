// Package bench holds the twin instruments of a bench: a Keithley 2400 SMU
// twin driving a resistor-and-diode load, and a Thorlabs PM100 twin reading
// the optical power the OWMS twin (simulators/optics) delivers into a
// detector under the phase pattern an SLM driver shows on a file-backed
// framebuffer. Each is served through drivers/scpi/emulator over loopback
// TCP or a pseudo-terminal, so the real drivers and transports are exercised
// end to end; fault injection is the emulator's (emulator.WithFaults).
//
// Both identify as twins in *IDN? (manufacturer "insitu", model "... twin"),
// so an identity check configured for real hardware refuses them.
//
// The package also registers the part twins of a rig in twin mode (`insitu
// run --dry-run`; see parttwins.go): the SMU and power-meter drivers
// talking to these twins served in process, the DAQ driver on an emulated
// I²C bus through the analog PNN layer, and the OWMS scene twin cameras
// show.
package bench
