// The Kubernetes manifests are decoded strictly (an unknown or misspelled
// field is an error) into the subset of the Kubernetes API types they use,
// written out here with the API's field names: k8s.io/api would bring
// seventeen modules into go.mod and raise versions the insitu binary links,
// for one test. The checks are the ones that make the deployment work:
// an Indexed Job whose completions equal the --shards its pods pass, the
// output volume mounted where --out points, the merge reading the same
// place, and the image's user and paths.
package kubernetes_test

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

type objectMeta struct {
	Name   string            `yaml:"name"`
	Labels map[string]string `yaml:"labels"`
}

type persistentVolumeClaim struct {
	APIVersion string     `yaml:"apiVersion"`
	Kind       string     `yaml:"kind"`
	Metadata   objectMeta `yaml:"metadata"`
	Spec       struct {
		AccessModes      []string `yaml:"accessModes"`
		StorageClassName *string  `yaml:"storageClassName"`
		Resources        struct {
			Requests map[string]string `yaml:"requests"`
		} `yaml:"resources"`
	} `yaml:"spec"`
}

type job struct {
	APIVersion string     `yaml:"apiVersion"`
	Kind       string     `yaml:"kind"`
	Metadata   objectMeta `yaml:"metadata"`
	Spec       struct {
		CompletionMode       string `yaml:"completionMode"`
		Completions          *int   `yaml:"completions"`
		Parallelism          *int   `yaml:"parallelism"`
		BackoffLimit         *int   `yaml:"backoffLimit"`
		BackoffLimitPerIndex *int   `yaml:"backoffLimitPerIndex"`
		Template             struct {
			Metadata objectMeta `yaml:"metadata"`
			Spec     podSpec    `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type podSpec struct {
	RestartPolicy                 string `yaml:"restartPolicy"`
	TerminationGracePeriodSeconds *int   `yaml:"terminationGracePeriodSeconds"`
	SecurityContext               *struct {
		RunAsNonRoot *bool  `yaml:"runAsNonRoot"`
		RunAsUser    *int64 `yaml:"runAsUser"`
		RunAsGroup   *int64 `yaml:"runAsGroup"`
		FSGroup      *int64 `yaml:"fsGroup"`
	} `yaml:"securityContext"`
	Containers []container `yaml:"containers"`
	Volumes    []struct {
		Name                  string `yaml:"name"`
		PersistentVolumeClaim *struct {
			ClaimName string `yaml:"claimName"`
		} `yaml:"persistentVolumeClaim"`
	} `yaml:"volumes"`
}

type container struct {
	Name      string   `yaml:"name"`
	Image     string   `yaml:"image"`
	Command   []string `yaml:"command"`
	Args      []string `yaml:"args"`
	Resources struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
}

// decode reads one YAML document of file strictly into v.
func decode(t *testing.T, file string, v any) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	var more any
	if dec.Decode(&more) == nil {
		t.Fatalf("%s: more than one document", file)
	}
}

// flag returns the value of --name=value or --name value in args.
func flag(args []string, name string) (string, bool) {
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
		if a == "--"+name && i+1 < len(args) {
			return args[i+1], true
		}
	}
	return "", false
}

// outVolume checks that --out lies on a volume mounted from the claim and
// returns the claim.
func outVolume(t *testing.T, name string, spec podSpec) string {
	t.Helper()
	if len(spec.Containers) != 1 {
		t.Fatalf("%s: %d containers, want 1", name, len(spec.Containers))
	}
	c := spec.Containers[0]
	out, ok := flag(c.Args, "out")
	if !ok {
		t.Fatalf("%s: no --out in %q", name, c.Args)
	}
	for _, m := range c.VolumeMounts {
		rel, err := filepath.Rel(m.MountPath, out)
		if err != nil || strings.HasPrefix(rel, "..") {
			continue
		}
		for _, v := range spec.Volumes {
			if v.Name == m.Name && v.PersistentVolumeClaim != nil {
				return v.PersistentVolumeClaim.ClaimName
			}
		}
	}
	t.Fatalf("%s: --out %s is on no mounted persistent volume claim", name, out)
	return ""
}

func TestManifests(t *testing.T) {
	var pvc persistentVolumeClaim
	decode(t, "pvc.yaml", &pvc)
	if pvc.APIVersion != "v1" || pvc.Kind != "PersistentVolumeClaim" || pvc.Metadata.Name == "" {
		t.Errorf("pvc.yaml: %s %s %q", pvc.APIVersion, pvc.Kind, pvc.Metadata.Name)
	}
	// Pods on several nodes write to it at once.
	if !slices.Equal(pvc.Spec.AccessModes, []string{"ReadWriteMany"}) || pvc.Spec.Resources.Requests["storage"] == "" {
		t.Errorf("pvc.yaml: access %v, storage %q", pvc.Spec.AccessModes, pvc.Spec.Resources.Requests["storage"])
	}

	var run job
	decode(t, "reproduce-job.yaml", &run)
	s := run.Spec
	if run.APIVersion != "batch/v1" || run.Kind != "Job" {
		t.Errorf("reproduce-job.yaml: %s %s", run.APIVersion, run.Kind)
	}
	if s.CompletionMode != "Indexed" || s.Completions == nil || s.Parallelism == nil {
		t.Fatalf("reproduce-job.yaml: completionMode %q, completions %v, parallelism %v", s.CompletionMode, s.Completions, s.Parallelism)
	}
	c := s.Template.Spec.Containers[0]
	if len(c.Command) > 0 || len(c.Args) == 0 || c.Args[0] != "reproduce" {
		t.Errorf("reproduce-job.yaml: command %q args %q: want the image's insitu entrypoint with reproduce", c.Command, c.Args)
	}
	shards, _ := flag(c.Args, "shards")
	if n, err := strconv.Atoi(shards); err != nil || n != *s.Completions {
		t.Errorf("reproduce-job.yaml: --shards %q, completions %d: each index must be one shard", shards, *s.Completions)
	}
	if *s.Parallelism < 1 || *s.Parallelism > *s.Completions {
		t.Errorf("reproduce-job.yaml: parallelism %d of %d completions", *s.Parallelism, *s.Completions)
	}
	if _, ok := flag(c.Args, "shard"); ok {
		t.Errorf("reproduce-job.yaml: --shard fixes one index for every pod; the index is JOB_COMPLETION_INDEX")
	}
	// A retried index needs restartPolicy Never (backoffLimitPerIndex
	// requires it), and time to journal its query on SIGTERM.
	if s.Template.Spec.RestartPolicy != "Never" || s.BackoffLimitPerIndex == nil {
		t.Errorf("reproduce-job.yaml: restartPolicy %q, backoffLimitPerIndex %v", s.Template.Spec.RestartPolicy, s.BackoffLimitPerIndex)
	}
	if g := s.Template.Spec.TerminationGracePeriodSeconds; g == nil || *g < 30 {
		t.Errorf("reproduce-job.yaml: terminationGracePeriodSeconds %v", g)
	}
	if cpu, jobs := c.Resources.Requests["cpu"], value(flag(c.Args, "jobs")); cpu != jobs {
		t.Errorf("reproduce-job.yaml: %s CPUs requested for --jobs %s", cpu, jobs)
	}
	if claim := outVolume(t, "reproduce-job.yaml", s.Template.Spec); claim != pvc.Metadata.Name {
		t.Errorf("reproduce-job.yaml: --out on claim %q, pvc.yaml is %q", claim, pvc.Metadata.Name)
	}

	var merge job
	decode(t, "merge-job.yaml", &merge)
	mc := merge.Spec.Template.Spec.Containers[0]
	if !slices.Equal(mc.Args[:2], []string{"reproduce", "merge"}) || merge.Spec.CompletionMode == "Indexed" {
		t.Errorf("merge-job.yaml: args %q, completionMode %q", mc.Args, merge.Spec.CompletionMode)
	}
	if a, b := value(flag(mc.Args, "out")), value(flag(c.Args, "out")); a != b {
		t.Errorf("merge-job.yaml merges %s, the shards write %s", a, b)
	}
	if claim := outVolume(t, "merge-job.yaml", merge.Spec.Template.Spec); claim != pvc.Metadata.Name {
		t.Errorf("merge-job.yaml: --out on claim %q, pvc.yaml is %q", claim, pvc.Metadata.Name)
	}

	// The image: the configs where --configs says, the user the pods run as.
	df, err := os.ReadFile(filepath.Join("..", "..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range []job{run, merge} {
		spec := j.Spec.Template.Spec
		ct := spec.Containers[0]
		if ct.Image != c.Image {
			t.Errorf("%s: image %s, the shards' is %s", j.Metadata.Name, ct.Image, c.Image)
		}
		configs := value(flag(ct.Args, "configs"))
		if !strings.Contains(string(df), "/src/configs "+configs+"\n") {
			t.Errorf("%s: --configs %s is not where the Dockerfile puts the configs", j.Metadata.Name, configs)
		}
		sc := spec.SecurityContext
		if sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != 65532 || sc.FSGroup == nil || *sc.FSGroup != 65532 {
			t.Errorf("%s: want runAsUser and fsGroup 65532, distroless's nonroot, so that it can write the volume", j.Metadata.Name)
		}
	}
	if !strings.Contains(string(df), "distroless/static-debian12:nonroot") || !strings.Contains(string(df), "CGO_ENABLED=0") {
		t.Error("Dockerfile: want a CGO_ENABLED=0 binary on distroless static nonroot")
	}
}

// value is flag's value alone ("" when absent).
func value(v string, _ bool) string { return v }

// A misspelled field fails the decoding rather than being dropped.
func TestManifestsStrict(t *testing.T) {
	b, err := os.ReadFile("reproduce-job.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var j job
	dec := yaml.NewDecoder(bytes.NewReader(bytes.Replace(b, []byte("completionMode:"), []byte("completionsMode:"), 1)))
	dec.KnownFields(true)
	if err := dec.Decode(&j); err == nil || !strings.Contains(err.Error(), "completionsMode") {
		t.Errorf("misspelled field: %v", err)
	}
}
