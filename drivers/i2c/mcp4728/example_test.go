package mcp4728_test

import (
	"fmt"

	"periph.io/x/conn/v3/physic"

	"github.com/insitu-lab/insitu/drivers/i2c/i2cemu"
	"github.com/insitu-lab/insitu/drivers/i2c/mcp4728"
)

func Example() {
	bus := i2cemu.New(nil) // on a bench: i2creg.Open("1") after host.Init()
	dac, err := mcp4728.New(bus, &mcp4728.Opts{
		VDD:     5 * physic.Volt,
		Channel: [4]mcp4728.Config{{Ref: mcp4728.RefInternal, Gain2: true}},
		Max:     [4]physic.ElectricPotential{3 * physic.Volt},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer dac.Halt() // all channels to 0 V

	fmt.Println(dac.Set(0, 1500*physic.MilliVolt))
	fmt.Println(dac.Set(0, 3500*physic.MilliVolt)) // refused: nothing is sent
	fmt.Println(bus.Outputs()[0])
	// Output:
	// <nil>
	// MCP4728(i2cemu@0x60): set A: 3.500V outside [0 V, 3V]
	// 1.500V
}
