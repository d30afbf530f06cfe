// Package instruments is the home of device models built on drivers:
//
//   - slm: a display-driven phase SLM (LUT, wrap, wavelength scaling,
//     correction, placement, settle; fbdev and in-memory displays);
//   - daq: DAC outputs and ADC inputs on an I²C bus opened by name;
//   - camera: the Camera interface with in-memory and V4L2 backends;
//   - rig: composes them into one insitu.BlackBox (kind "rig").
//
// Power meters and source-measure units join as further packages and plug
// into rig as Actuator/Sensor parts.
package instruments
