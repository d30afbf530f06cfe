// Package drivers is the home of transports and wire protocols (serial,
// raw SCPI over TCP, USBTMC, framebuffers, I²C chips). Drivers know nothing
// of devices or of the optimization loop; the instruments built on them do.
//
// The drivers themselves arrive with the hardware-path work (issue 5).
package drivers
