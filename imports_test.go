package insitu

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
)

// under reports whether path is pkg or a package below it.
func under(path, pkg string) bool {
	return path == pkg || strings.HasPrefix(path, pkg+"/")
}

// TestImportsPointDown keeps the import graph layered: no twin, driver,
// instrument, surrogate or safety package depends, even indirectly, on the
// optimizer (the loop package or any package below it, such as the
// journal, which bring SQLite and gonum's optimizers) or on a command.
// What they share with the loop (objectives, datasets, kinds) lives in
// this package.
func TestImportsPointDown(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool:", err)
	}
	const mod = "github.com/insitu-lab/insitu"
	cmd := exec.Command(gobin, "list", "-e", "-json=ImportPath,Deps,Error",
		"./simulators/...", "./drivers/...", "./instruments/...", "./surrogate/...", "./safety/...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.Bytes())
	}
	forbidden := func(path string) bool {
		return under(path, mod+"/loop") || under(path, mod+"/cmd")
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	n := 0
	for {
		var p struct {
			ImportPath string
			Deps       []string
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		n++
		for _, d := range p.Deps {
			if forbidden(d) {
				t.Errorf("%s depends on %s", p.ImportPath, d)
			}
		}
	}
	if n == 0 {
		t.Fatal("go list listed no packages")
	}
}
