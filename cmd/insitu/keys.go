package main

//go:generate sh -c "go run . config keys --markdown > ../../docs/reference/config.md.tmp && mv ../../docs/reference/config.md.tmp ../../docs/reference/config.md"

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/instruments/rig"
	"github.com/insitu-lab/insitu/loop/study"
)

// keySection is one table of `insitu config keys`: a config file's keys,
// a black box kind's or a rig part type's.
type keySection struct {
	Name, Title, Intro string
	Keys               []insitu.Key
	Missing            bool // the kind or part type declares no keys
}

// keySections are every section in the order of the reference: the three
// config files, then the kinds, then the part types.
func keySections() []keySection {
	run := defaultRunConfig()
	train := defaultTrainConfig()
	st := study.DefaultGradientConfig()
	secs := []keySection{
		{Name: "run", Title: "insitu run (and resume, sweep, reproduce)", Intro: "A run config: the loop's settings at the top level, the black box, the objective, the safety section and the journal. `blackbox` takes the keys of its kind (below).", Keys: insitu.Keys("", &run)},
		{Name: "train", Title: "insitu train", Intro: "A training config: the training's settings, the black box (and its ideal twin), the dataset, the safety section and the journal.", Keys: insitu.Keys("", &train)},
		{Name: "study", Title: "insitu study gradient", Intro: "The gradient-quality study: surrogates trained offline on one dataset per setting.", Keys: insitu.Keys("", &st)},
	}
	for _, kind := range insitu.Kinds() {
		ks, ok := insitu.KindKeys(kind)
		secs = append(secs, keySection{Name: kind, Title: "blackbox kind " + kind, Keys: ks, Missing: !ok,
			Intro: fmt.Sprintf("`blackbox: {kind: %s, ...}`.", kind)})
	}
	for _, typ := range rig.PartTypes() {
		ks, ok := rig.PartKeys(typ)
		secs = append(secs, keySection{Name: typ, Title: "rig part type " + typ, Keys: ks, Missing: !ok,
			Intro: fmt.Sprintf("An entry of a rig's parts: `blackbox: {kind: rig, parts: [{name: NAME, type: %s, ...}]}`.", typ)})
	}
	return secs
}

func newConfigKeysCmd() *cobra.Command {
	var markdown bool
	cmd := &cobra.Command{
		Use:   "keys [run|train|study|KIND|PART-TYPE]",
		Short: "Every config key with its type, default, unit and meaning",
		Long: `Lists the keys a config file may hold, as the code declares them: their
type, default, unit and meaning. Without an argument, every section: the
run, train and study configs, each black box kind (the keys under
blackbox) and each rig part type (the keys of an entry of blackbox.parts).
--markdown writes the configuration reference (docs/reference/config.md).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			secs := keySections()
			if len(args) == 1 {
				i := slices.IndexFunc(secs, func(s keySection) bool { return s.Name == args[0] })
				if i < 0 {
					names := make([]string, len(secs))
					for k, s := range secs {
						names[k] = s.Name
					}
					return fmt.Errorf("no config section %q: want one of %s", args[0], strings.Join(names, ", "))
				}
				secs = secs[i : i+1]
			}
			w := cmd.OutOrStdout()
			if markdown {
				return writeKeysMarkdown(w, secs, len(args) == 0)
			}
			for i, s := range secs {
				if i > 0 {
					fmt.Fprintln(w)
				}
				writeKeysText(w, s)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&markdown, "markdown", false, "write Markdown tables (the configuration reference)")
	return cmd
}

func writeKeysText(w io.Writer, s keySection) {
	fmt.Fprintf(w, "# %s\n", s.Title)
	if s.Missing {
		fmt.Fprintln(w, "(declares no keys)")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tTYPE\tDEFAULT\tUNIT\tMEANING")
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	for _, k := range s.Keys {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.Path, k.Type, dash(k.Default), dash(k.Unit), k.Doc)
	}
	tw.Flush()
}

// cell escapes a Markdown table cell.
func cell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.ReplaceAll(s, "\n", " ")
}

func writeKeysMarkdown(w io.Writer, secs []keySection, whole bool) error {
	if whole {
		fmt.Fprint(w, `# Configuration reference

Every key a config file may hold, with its type, default, unit and meaning.
This file is generated from the code (the `+"`doc`"+` and `+"`unit`"+` tags beside each
key's field): do not edit it, run `+"`make docs`"+` (or `+"`insitu config keys`"+` for the
same tables in the terminal, `+"`insitu config keys smu`"+` for one section).

Every key can also be set with `+"`--set key=value`"+` or an `+"`INSITU_`"+` environment
variable (`+"`INSITU_SURROGATE_K=10`"+`); `+"`insitu config check FILE`"+` prints a file's
resolved config or every error, each naming the key and the file. A key
written `+"`a[].b`"+` is the key b of each entry of the list a; `+"`a.<NAME>.b`"+` the key b
of each entry of the map a, by name. Durations are written with their unit
(`+"`150ms`"+`, `+"`10s`"+`).

`)
		for _, s := range secs {
			fmt.Fprintf(w, "- [%s](#%s)\n", s.Title, anchor(s.Title))
		}
		fmt.Fprintln(w)
	}
	for _, s := range secs {
		fmt.Fprintf(w, "## %s\n\n%s\n\n", s.Title, s.Intro)
		if s.Missing {
			fmt.Fprint(w, "(declares no keys)\n\n")
			continue
		}
		fmt.Fprint(w, "| key | type | default | unit | meaning |\n|---|---|---|---|---|\n")
		for _, k := range s.Keys {
			def := k.Default
			if def != "" {
				def = "`" + strings.ReplaceAll(def, "`", "'") + "`"
			}
			fmt.Fprintf(w, "| `%s` | %s | %s | %s | %s |\n", k.Path, cell(k.Type), cell(def), cell(k.Unit), cell(k.Doc))
		}
		fmt.Fprintln(w)
	}
	return nil
}

// anchor is GitHub's anchor of a heading.
func anchor(title string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(title) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
		}
	}
	return b.String()
}
