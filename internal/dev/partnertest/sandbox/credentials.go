package sandbox

import (
	"errors"
	"fmt"
	"strconv"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
)

// Credentials are live credentials to register, by partner name: the body
// of bin/partner-sandbox's POST /credentials, so that a benchmark in one
// process can make the credentials it generated live in the sandbox
// process.
type Credentials map[string][]Credential

// MaxCredentials bounds one registration.
const MaxCredentials = 100000

// Register makes every credential live in its partner's double. It checks
// the whole request first and registers nothing when any part is wrong;
// errors name the partner and index, never a credential.
func (s *Sandbox) Register(c Credentials) error {
	if len(s.doubles) == 0 {
		return errors.New("sandbox: register: not started")
	}
	n := 0
	for _, cs := range c {
		n += len(cs)
	}
	if n > MaxCredentials {
		return fmt.Errorf("sandbox: register: %d credentials, at most %d", n, MaxCredentials)
	}
	for p, cs := range c {
		d, ok := s.doubles[finding.Partner(p)]
		if !ok {
			return fmt.Errorf("sandbox: register: unknown partner %q", p)
		}
		for i, cr := range cs {
			if err := d.Check(cr); err != nil {
				return fmt.Errorf("sandbox: register: %s[%d]: %w", p, i, err)
			}
		}
	}
	for p, cs := range c {
		for _, cr := range cs {
			s.doubles[finding.Partner(p)].Register(cr)
		}
	}
	return nil
}

// LiveFindings returns n findings of partner p's main token type with
// fresh credentials (ids f-<firstID>…), and the registration that makes
// them live.
func LiveFindings(p finding.Partner, n, firstID int) ([]finding.Finding, Credentials, error) {
	kit, ok := kits[p]
	if !ok {
		return nil, nil, fmt.Errorf("sandbox: live findings: unknown partner %q", p)
	}
	out := make([]finding.Finding, n)
	creds := Credentials{}
	for i := range out {
		c := kit.NewLive()
		out[i] = c.Finding("f-" + strconv.Itoa(firstID+i))
		creds[string(p)] = append(creds[string(p)], c)
	}
	return out, creds, nil
}
