// Package i2c gathers the I²C chips of the analog (PNN) path, all on
// periph.io/x/conn/v3 buses so that a real /dev/i2c-N, an FT232H adapter,
// periph's i2ctest recorders and our emulated bus are interchangeable:
//
//   - mcp4725: our driver for the 12-bit single-channel DAC;
//   - mcp4728: our driver for the 12-bit four-channel DAC;
//   - ads1115: a thin, context-aware wrapper over periph's ads1x15 ADC driver;
//   - i2cemu: an emulated bus with an MCP4728 and an ADS1115 whose inputs are
//     a function of the DAC outputs, registrable with periph's i2creg.
//
// periph.io/x/devices/v3 v3.7.4 has no DAC driver (its mcp472x is unreleased),
// hence our own. The DAC drivers refuse an out-of-range value before any byte
// reaches the bus, and their Halt drives 0 V: the safe state of the analog
// hardware.
//
// DAC calls take no context: periph's device drivers do not, and one I²C
// transaction is a few hundred microseconds bounded by the bus driver. The ADC
// read waits for a conversion, so it takes one.
package i2c
