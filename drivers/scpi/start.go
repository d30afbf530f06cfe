package scpi

import (
	"context"
	"errors"
	"fmt"
)

// Start takes over conn (closing it on error) for the instrument called
// name and runs the startup every SCPI instrument shares: *IDN? must match
// idn (see Identify), *CLS, then *RST when reset. The client is named
// "NAME PORT", PORT from conn's String when it has one, and port is
// returned for the instrument's own messages.
func Start(ctx context.Context, conn Conn, name, idn string, reset bool, opts ...Option) (*Client, IDN, string, error) {
	port := "?"
	if s, ok := conn.(fmt.Stringer); ok {
		port = s.String()
	}
	c := NewClient(conn, append([]Option{WithName(name + " " + port)}, opts...)...)
	id, err := c.Identify(ctx, idn)
	if err == nil {
		err = c.Clear(ctx)
	}
	if err == nil && reset {
		err = c.Write(ctx, "*RST")
	}
	if err != nil {
		c.Close()
		return nil, id, port, err
	}
	return c, id, port, nil
}

// CheckErrors drains the error queue and fails if it held anything, naming
// what the entries followed: a refused setting must not pass silently.
func (c *Client) CheckErrors(ctx context.Context, after string) error {
	errs, err := c.Errors(ctx)
	if err != nil {
		return err
	}
	if len(errs) == 0 {
		return nil
	}
	list := make([]error, len(errs))
	for i, e := range errs {
		list[i] = e
	}
	return fmt.Errorf("%s: error queue after %s: %w", c.name, after, errors.Join(list...))
}
