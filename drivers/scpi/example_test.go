package scpi_test

import (
	"context"
	"fmt"
	"time"

	"github.com/insitu-lab/insitu/drivers/lxi"
	"github.com/insitu-lab/insitu/drivers/scpi"
	"github.com/insitu-lab/insitu/drivers/scpi/emulator"
)

// A power-meter twin served on loopback TCP and driven through the LXI
// transport, as a bench config pointing at a twin would.
func Example() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	twin, _ := emulator.New("insitu,TWIN-PM100D,0001,1.0", emulator.Table{
		"SENSe:CORRection:WAVelength": func(string) (string, error) { return "", nil },
		"MEASure:POWer?":              func(string) (string, error) { return "1.250E-03", nil },
	})
	ln, _ := emulator.Listen("127.0.0.1:0")
	go twin.ServeTCP(ctx, ln)

	conn, err := lxi.Dial(ctx, lxi.Config{Address: ln.Addr().String()})
	if err != nil {
		fmt.Println(err)
		return
	}
	pm := scpi.NewClient(conn, scpi.WithName("powermeter"), scpi.WithTimeout(2*time.Second))
	defer pm.Close()

	id, err := pm.Identify(ctx, `^insitu,TWIN-PM100`)
	fmt.Println(id.Model, err)
	_ = pm.Write(ctx, "SENS:CORR:WAV 1550")
	w, err := pm.QueryFloat(ctx, "MEAS:POW?")
	fmt.Println(w, err)
	errs, err := pm.Errors(ctx)
	fmt.Println(len(errs), err)
	// Output:
	// TWIN-PM100D <nil>
	// 0.00125 <nil>
	// 0 <nil>
}
