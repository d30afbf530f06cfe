package powermeter_test

import (
	"context"
	"strings"
	"testing"

	"github.com/insitu-lab/insitu/drivers/scpi/emulator"
	"github.com/insitu-lab/insitu/drivers/scpi/scpitest"
	"github.com/insitu-lab/insitu/instruments/powermeter"
)

// A meter that does not take the calibration wavelength (a head whose
// range ends below it) is refused at open, naming the wavelength it
// reports; one that takes it opens.
func TestPowerMeterRefusesAWavelengthItDidNotTake(t *testing.T) {
	for _, tc := range []struct {
		reports string
		ok      bool
	}{{"700", true}, {"1100", false}} {
		in, err := emulator.New("insitu,PM100 twin,P0001,1.0", emulator.Table{
			"SENSe:CORRection:WAVelength": func(string) (string, error) { return "", nil },
			"SENSe:CORRection:WAVelength?": func(string) (string, error) {
				return tc.reports, nil
			},
			"SENSe:POWer:DC:UNIT":       func(string) (string, error) { return "", nil },
			"SENSe:AVERage:COUNt":       func(string) (string, error) { return "", nil },
			"SENSe:POWer:DC:RANGe:AUTO": func(string) (string, error) { return "", nil },
		})
		if err != nil {
			t.Fatal(err)
		}
		conn, _ := scpitest.ServeTCP(t, in)
		pm, err := powermeter.New(context.Background(), conn, twinConfig())
		if tc.ok {
			if err != nil {
				t.Fatalf("meter reporting %s nm: %v", tc.reports, err)
			}
			if pm.Wavelength() != 700 {
				t.Errorf("Wavelength() = %v, want 700", pm.Wavelength())
			}
			pm.Close()
			continue
		}
		if err == nil {
			pm.Close()
			t.Fatalf("meter reporting %s nm after being set to 700 nm opened", tc.reports)
		}
		if !strings.Contains(err.Error(), tc.reports) {
			t.Errorf("error %q does not name the reported %s nm", err, tc.reports)
		}
	}
}
