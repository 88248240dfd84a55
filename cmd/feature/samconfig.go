package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/BurntSushi/toml"
)

// samConfigFile is the SAM CLI configuration the environments come from.
const samConfigFile = "samconfig.toml"

// samConfig is a decoded samconfig.toml: environment -> command ("global",
// "deploy", ...) -> "parameters" -> key -> value.
type samConfig struct {
	path string
	envs map[string]map[string]map[string]map[string]any
}

// findSAMConfig looks for samconfig.toml in dir and its parents, as the
// operator may run the command from anywhere in the repository.
func findSAMConfig(dir string) (string, error) {
	for {
		p := filepath.Join(dir, samConfigFile)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("find %s: %w", samConfigFile, err)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("find %s: not in the current directory or any parent; run from the repository or pass --config", samConfigFile)
		}
		dir = parent
	}
}

// loadSAMConfig decodes samconfig.toml; SAM's top-level "version" is skipped.
func loadSAMConfig(path string) (*samConfig, error) {
	var raw map[string]any
	if _, err := toml.DecodeFile(path, &raw); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	c := &samConfig{path: path, envs: map[string]map[string]map[string]map[string]any{}}
	for env, v := range raw {
		if env == "version" {
			continue
		}
		cmds, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("read %s: [%s] is not a table", path, env)
		}
		c.envs[env] = map[string]map[string]map[string]any{}
		for cmd, cv := range cmds {
			sections, ok := cv.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("read %s: [%s.%s] is not a table", path, env, cmd)
			}
			c.envs[env][cmd] = map[string]map[string]any{}
			for sec, sv := range sections {
				params, ok := sv.(map[string]any)
				if !ok {
					return nil, fmt.Errorf("read %s: [%s.%s.%s] is not a table", path, env, cmd, sec)
				}
				c.envs[env][cmd][sec] = params
			}
		}
	}
	return c, nil
}

// lookup returns a string parameter of an environment, from its deploy
// section first (what `sam deploy --config-env` uses), then its global one.
func (c *samConfig) lookup(env, key string) (string, error) {
	for _, cmd := range []string{"deploy", "global"} {
		v, ok := c.envs[env][cmd]["parameters"][key]
		if !ok {
			continue
		}
		s, ok := v.(string)
		if !ok {
			return "", fmt.Errorf("%s: [%s.%s.parameters] %s is not a string", c.path, env, cmd, key)
		}
		return s, nil
	}
	return "", nil
}

// environment resolves a named environment's region, profile and stack.
func (c *samConfig) environment(name string) (target, error) {
	if _, ok := c.envs[name]; !ok {
		return target{}, fmt.Errorf("%s has no [%s] environment", c.path, name)
	}
	t := target{name: name}
	var err error
	if t.region, err = c.lookup(name, "region"); err != nil {
		return target{}, err
	}
	if t.profile, err = c.lookup(name, "profile"); err != nil {
		return target{}, err
	}
	if t.stack, err = c.lookup(name, "stack_name"); err != nil {
		return target{}, err
	}
	if t.region == "" {
		return target{}, fmt.Errorf("%s: [%s] sets no region", c.path, name)
	}
	return t, nil
}

// parameterOverrides splits SAM's parameter_overrides string
// (Key=Value Key2="value with spaces") into a map.
func parameterOverrides(s string) (map[string]string, error) {
	out := map[string]string{}
	var fields []string
	var cur strings.Builder
	inQuote := false
	for _, r := range s {
		switch {
		case r == '"':
			inQuote = !inQuote
		case r == ' ' && !inQuote:
			if cur.Len() > 0 {
				fields = append(fields, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteRune(r)
		}
	}
	if inQuote {
		return nil, errors.New("parameter_overrides: unbalanced quote")
	}
	if cur.Len() > 0 {
		fields = append(fields, cur.String())
	}
	for _, f := range fields {
		k, v, ok := strings.Cut(f, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("parameter_overrides: %q is not Key=Value", f)
		}
		out[k] = v
	}
	return out, nil
}
