package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"reflect"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"

	"github.com/insitu-lab/insitu/safety"
)

// loadConfig resolves a command's settings into out, in increasing order of
// precedence: the defaults in out, the YAML file (if any), INSITU_* environment
// variables, bound flags, and --set key=value overrides. Unknown keys and
// values of the wrong type are errors naming the key and the file.
func loadConfig(file string, flags *pflag.FlagSet, bind map[string]string, sets []string, out any) error {
	var data []byte
	if file != "" {
		var err error
		if data, err = os.ReadFile(file); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("config file %s does not exist", file)
			}
			return err
		}
	}
	return resolveConfig(file, data, flags, bind, sets, out)
}

// resolveConfig is loadConfig for YAML already in memory (a journal's
// config); where names it in errors.
func resolveConfig(where string, data []byte, flags *pflag.FlagSet, bind map[string]string, sets []string, out any) error {
	if where == "" {
		where = "defaults"
	}
	v := viper.New()
	defaults := map[string]any{}
	if err := mapstructure.Decode(out, &defaults); err != nil {
		return fmt.Errorf("encoding defaults: %w", err)
	}
	dropNil(defaults)
	if err := v.MergeConfigMap(defaults); err != nil {
		return err
	}
	if data != nil {
		v.SetConfigType("yaml")
		if err := v.MergeConfig(bytes.NewReader(data)); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
	}
	v.SetEnvPrefix("INSITU")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	for key, flag := range bind {
		if flags == nil {
			break
		}
		if f := flags.Lookup(flag); f != nil && f.Changed {
			if err := v.BindPFlag(key, f); err != nil {
				return err
			}
		}
	}
	for _, s := range sets {
		key, val, ok := strings.Cut(s, "=")
		if !ok || key == "" {
			return fmt.Errorf("--set %q: want key=value", s)
		}
		var parsed any
		if err := yaml.Unmarshal([]byte(val), &parsed); err != nil {
			return fmt.Errorf("--set %s: %w", key, err)
		}
		v.Set(key, parsed)
	}
	// viper's map holds the defaults merged with the file: decode it onto
	// zeroed fields, or a list in the file would be merged element by
	// element into the default list (a setting inheriting the keys of the
	// default setting at its index).
	err := v.Unmarshal(out, func(c *mapstructure.DecoderConfig) {
		c.ZeroFields = true
		c.ErrorUnused = true
		c.WeaklyTypedInput = true
		c.DecodeHook = mapstructure.ComposeDecodeHookFunc(c.DecodeHook, safety.DecodeHook())
	})
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	return nil
}

// dropNil removes nil values, nil maps included, from the encoded defaults:
// viper panics when it merges a file's map into a nil map default.
func dropNil(m map[string]any) {
	for k, v := range m {
		switch x := v.(type) {
		case nil:
			delete(m, k)
		case map[string]any:
			if x == nil {
				delete(m, k)
				continue
			}
			dropNil(x)
		default:
			if rv := reflect.ValueOf(v); (rv.Kind() == reflect.Map || rv.Kind() == reflect.Slice || rv.Kind() == reflect.Pointer) && rv.IsNil() {
				delete(m, k)
			}
		}
	}
}
