package insitu

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

type keysInner struct {
	Lo float64 `mapstructure:"lo" unit:"V" doc:"low"`
	Hi float64 `mapstructure:"hi" doc:"high"`
}

type keysBase struct {
	Seed uint64 `mapstructure:"seed" doc:"the seed"`
}

type keysConfig struct {
	keysBase `mapstructure:",squash"`
	Name     string               `mapstructure:"name" doc:"a name"`
	Wait     time.Duration        `mapstructure:"wait" doc:"a wait"`
	Rate     *float64             `mapstructure:"rate" unit:"Hz" doc:"a rate"`
	Budget   *int                 `mapstructure:"budget" doc:"a budget"`
	Hidden   []int                `mapstructure:"hidden" doc:"widths"`
	Lower    map[string]float64   `mapstructure:"lower" doc:"by name"`
	Box      map[string]any       `mapstructure:"box" doc:"a section by kind"`
	Range    keysInner            `mapstructure:"range"`
	Ranges   map[string]keysInner `mapstructure:"ranges" doc:"ranges by name"`
	List     []keysInner          `mapstructure:"list" doc:"a list"`
	Opt      *keysInner           `mapstructure:"opt" doc:"optional"`
	Skip     int                  `mapstructure:"-"`
	Rest     map[string]any       `mapstructure:",remain"`
	unexp    int
	NoDoc    bool `mapstructure:"no_doc"`
	Untagged int
}

// Keys walks a config struct as mapstructure decodes it: squashed fields
// inline, sections and lists and maps of sections nested, the tags' doc
// and unit, the values as defaults.
func TestKeys(t *testing.T) {
	five := 5
	c := keysConfig{keysBase: keysBase{Seed: 3}, Name: "x", Wait: 150 * time.Millisecond, Budget: &five,
		Hidden: []int{8, 8}, Lower: map[string]float64{"b": 2, "a": 1}, Range: keysInner{Lo: -1, Hi: 1}}
	var got []string
	for _, k := range Keys("top", &c) {
		got = append(got, fmt.Sprintf("%s|%s|%s|%s|%s", k.Path, k.Type, k.Default, k.Unit, k.Doc))
	}
	want := []string{
		"top.seed|int ≥ 0|3||the seed",
		"top.name|string|x||a name",
		"top.wait|duration|150ms||a wait",
		"top.rate|float||Hz|a rate",
		"top.budget|int|5||a budget",
		"top.hidden|list of int|[8, 8]||widths",
		"top.lower|float by name|{a: 1, b: 2}||by name",
		"top.box|section|||a section by kind",
		"top.range.lo|float|-1|V|low",
		"top.range.hi|float|1||high",
		"top.ranges|map by name|||ranges by name",
		"top.ranges.<NAME>.lo|float|0|V|low",
		"top.ranges.<NAME>.hi|float|0||high",
		"top.list|list|||a list",
		"top.list[].lo|float|0|V|low",
		"top.list[].hi|float|0||high",
		"top.opt|section|||optional",
		"top.opt.lo|float|0|V|low",
		"top.opt.hi|float|0||high",
		"top.no_doc|bool|false||",
		"top.untagged|int|0||",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("keys:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
