package main

import (
	"path/filepath"
	"strconv"
	"testing"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/samtemplate"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/registry"
)

// TestGlobalPartnerRateWithinLimit: in every environment of samconfig.toml
// (and with the template's defaults), each partner's MaximumConcurrency ×
// per-instance rate stays within the partner's Limit (partner.Rate): SQS
// runs at most MaximumConcurrency instances, each with its own limiter, so
// their product is what the partner sees. Checked here, not by hand.
func TestGlobalPartnerRateWithinLimit(t *testing.T) {
	root := filepath.Join("..", "..")
	tpl, err := samtemplate.Load(filepath.Join(root, samtemplate.FileName))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := loadSAMConfig(filepath.Join(root, samConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	envs := map[string]map[string]string{"template defaults": {}}
	for env := range cfg.envs {
		raw, err := cfg.lookup(env, "parameter_overrides")
		if err != nil {
			continue // an environment without overrides takes the defaults, checked above
		}
		if envs[env], err = parameterOverrides(raw); err != nil {
			t.Fatalf("%s: %v", env, err)
		}
	}
	apps := map[string]*samtemplate.Application{}
	for _, app := range tpl.Applications {
		apps[app.Parameters["Partner"].Target().Literal] = app
	}
	for _, def := range registry.All() {
		app := apps[string(def.Name)]
		if app == nil {
			t.Errorf("%s: no partner application in %s", def.Name, samtemplate.FileName)
			continue
		}
		for env, overrides := range envs {
			value := func(param string) float64 {
				tg := app.Parameters[param].Target()
				text := tg.Literal
				if tg.Kind == samtemplate.TargetParameter {
					text = overrides[tg.Name]
					if text == "" {
						p := tpl.Parameters[tg.Name]
						if p == nil || !p.HasDefault {
							t.Fatalf("%s: %s: parameter %s has no default", env, def.Name, tg.Name)
						}
						text = p.Default
					}
				} else if tg.Kind != samtemplate.TargetLiteral {
					t.Fatalf("%s: %s's %s is neither a literal nor a parameter", env, def.Name, param)
				}
				f, err := strconv.ParseFloat(text, 64)
				if err != nil {
					t.Fatalf("%s: %s's %s = %q: %v", env, def.Name, param, text, err)
				}
				return f
			}
			rate, conc := value("RatePerSecond"), value("MaximumConcurrency")
			if global := rate * conc; global > def.Rate.Limit+1e-9 {
				t.Errorf("%s: %s sends up to %g × %g = %g req/s, over its limit of %g req/s (%s)",
					env, def.Name, conc, rate, global, def.Rate.Limit, def.Rate.Source)
			}
		}
	}
}
