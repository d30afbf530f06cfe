package insitu

import (
	"errors"
	"testing"
)

func TestProblems(t *testing.T) {
	p := &Problems{Kind: "twin"}
	if p.Err() != nil || p.In(Params{}) != nil {
		t.Fatal("no problems must give nil")
	}
	p.Add("steps", "must be ≥ %d, got %d", 1, 0)
	p.Add("n", "too big")
	err := p.Err()
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Key != "steps" || err.Error() != "twin: steps: must be ≥ 1, got 0\ntwin: n: too big" {
		t.Errorf("Err = %q", err)
	}
	got := p.In(Params{File: "c.yaml", Prefix: "blackbox"}).Error()
	if got != "c.yaml: blackbox.steps: must be ≥ 1, got 0\nc.yaml: blackbox.n: too big" {
		t.Errorf("In = %q", got)
	}
}
