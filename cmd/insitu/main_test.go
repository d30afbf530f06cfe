package main

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// run executes the command line in-process and returns stdout, stderr.
func run(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	root := newRoot()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

const tinyStudy = `
blackbox: {kind: cnon, horizon: 2, steps: 20}
settings:
  - {name: N=4, points: 120, blackbox: {n: 4}}
hidden: [16, 16]
epochs: 50
batch: 32
ks: [1, 3]
test_points: 30
seed: 3
`

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestStudyGradientWritesTableCSVAndPlot(t *testing.T) {
	cfg := writeFile(t, "tiny.yaml", tinyStudy)
	out := t.TempDir()
	t.Setenv("INSITU_TEST_POINTS", "25") // the environment overrides the file...
	stdout, stderr, err := run(t, "study", "gradient", cfg, "--out", out, "--epochs", "4", "--set", "ks=[1,2]")
	if err != nil {
		t.Fatalf("%v\nstderr:\n%s", err, stderr)
	}
	for _, want := range []string{"mae", "gradpie k=1", "gradpie k=2", "best GradPIE"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("table lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "gradpie k=3") {
		t.Errorf("--set ks did not override the file:\n%s", stdout)
	}
	resolved, err := os.ReadFile(filepath.Join(out, "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"epochs: 4", "test_points: 25", "seed: 3"} { // ...and flags override both
		if !strings.Contains(string(resolved), want) {
			t.Errorf("resolved config lacks %q:\n%s", want, resolved)
		}
	}
	csv, err := os.ReadFile(filepath.Join(out, "gradient.csv"))
	if err != nil || strings.Count(string(csv), "\n") != 4 {
		t.Errorf("gradient.csv: %v\n%s", err, csv)
	}
	f, err := os.Open(filepath.Join(out, "gradient.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := png.Decode(f); err != nil {
		t.Errorf("gradient.png: %v", err)
	}
}

func TestConfigErrorsNameKeyAndFile(t *testing.T) {
	cases := []struct {
		name, body string
		args       []string
		want       []string
	}{
		{"unknown key", tinyStudy + "epoch: 3\n", nil, []string{"bad.yaml", "epoch"}},
		{"wrong type", strings.Replace(tinyStudy, "epochs: 50", "epochs: many", 1), nil, []string{"bad.yaml", "epochs"}},
		{"invalid values", tinyStudy + "lr: -1\nnorm: l7\n", nil, []string{"bad.yaml", "lr:", "norm:"}},
		{"unknown twin key", strings.Replace(tinyStudy, "steps: 20", "stepz: 20", 1), nil, []string{"stepz"}},
		{"unknown kind", strings.Replace(tinyStudy, "kind: cnon", "kind: warp-drive", 1), nil, []string{"blackbox.kind", "warp-drive"}},
		{"bad --set", tinyStudy, []string{"--set", "epochs"}, []string{"--set", "key=value"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := writeFile(t, "bad.yaml", c.body)
			args := append([]string{"study", "gradient", cfg, "--out", t.TempDir(), "--quiet"}, c.args...)
			_, _, err := run(t, args...)
			if err == nil {
				t.Fatal("bad config accepted")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestMissingConfigFile(t *testing.T) {
	_, _, err := run(t, "study", "gradient", filepath.Join(t.TempDir(), "nope.yaml"))
	if err == nil || !strings.Contains(err.Error(), "nope.yaml does not exist") {
		t.Fatalf("got %v", err)
	}
}
