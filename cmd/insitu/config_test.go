package main

import (
	"testing"

	"github.com/insitu-lab/insitu/loop/study"
)

// A list in the file replaces the default list: a setting does not inherit
// the keys of the default setting at its index, and the blackbox section
// of another twin does not inherit CNON's keys.
func TestConfigListsReplaceDefaults(t *testing.T) {
	file := writeFile(t, "study.yaml", `
blackbox: {kind: pnn-optical, eta: 0.1}
settings:
  - {name: a, points: 100}
`)
	cfg := study.DefaultGradientConfig()
	if err := loadConfig(file, nil, nil, nil, &cfg); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Settings) != 1 || cfg.Settings[0].Name != "a" || len(cfg.Settings[0].BlackBox) != 0 {
		t.Errorf("settings %+v: want the file's one setting, without the default's blackbox keys", cfg.Settings)
	}
	if len(cfg.BlackBox) != 2 || cfg.BlackBox["kind"] != "pnn-optical" {
		t.Errorf("blackbox %v: want the file's kind and eta only", cfg.BlackBox)
	}
	// Defaults the file does not touch are kept.
	if cfg.Epochs != 100 || len(cfg.Ks) != 6 {
		t.Errorf("defaults lost: epochs %d, ks %v", cfg.Epochs, cfg.Ks)
	}
}
