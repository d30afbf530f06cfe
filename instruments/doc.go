// Package instruments is the home of device models built on drivers: SLMs,
// cameras, power meters, source-measure units, DAC/ADC boards, and the rig
// that composes them into one insitu.BlackBox.
//
// The instruments themselves arrive with the hardware-path work (issue 5).
package instruments
