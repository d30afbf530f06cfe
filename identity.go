package insitu

import "context"

// Identifier is a device that can say which physical unit it is: an SCPI
// instrument's *IDN? reply (manufacturer, model, serial, firmware), a
// camera's vendor, model and serial. A run journals the identity of every
// device at its start, so that its data name the units that measured them.
// Identify must not change the device's state; an instrument that read its
// identity when it was opened returns that.
type Identifier interface {
	Identify(ctx context.Context) (string, error)
}
