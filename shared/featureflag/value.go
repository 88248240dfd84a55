// Package featureflag evaluates and stores the feature flags of
// CONTRACT.md §4: a JSON value in SSM Parameter Store per flag, read by every
// function through a per-instance cache (Reader) and written by the `feature`
// command (Store). Only flags with a definition file in
// config/feature_flags can be read or set.
package featureflag

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	featureflags "gitlab.com/gitlab-org/secret-detection/partner-token-verification/config/feature_flags"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/finding"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/textfit"
)

// ParameterPrefix is where the contract keeps flag parameters; a flag's
// parameter is this prefix plus its name.
const ParameterPrefix = "/secret-detection/feature-flags/"

// DefaultParameter is the SSM parameter name of a flag (contract §4).
func DefaultParameter(flag string) string { return ParameterPrefix + flag }

// Limits on the metadata a write records, so a value stays readable.
const (
	maxUpdatedBy = 128
	maxReason    = 512
)

// Value is a flag's state as stored in its parameter (contract §4), plus the
// metadata every write of the `feature` command records.
type Value struct {
	Enabled            bool                     `json:"enabled"`
	Groups             []string                 `json:"groups"`
	Projects           []int64                  `json:"projects"`
	PercentageOfActors int                      `json:"percentage_of_actors"`
	Partners           map[finding.Partner]bool `json:"partners,omitempty"`
	UpdatedAt          time.Time                `json:"updated_at,omitzero"`
	UpdatedBy          string                   `json:"updated_by,omitempty"`
	Reason             string                   `json:"reason,omitempty"`

	// Flag is the flag's name; the percentage gate hashes it with the
	// project id, so two flags at 10% do not select the same projects.
	Flag string `json:"-"`
}

// MarshalJSON writes empty lists as [] rather than null, so that a person
// reading the parameter sees every gate.
func (v Value) MarshalJSON() ([]byte, error) {
	type plain Value
	p := plain(v)
	if p.Groups == nil {
		p.Groups = []string{}
	}
	if p.Projects == nil {
		p.Projects = []int64{}
	}
	if !p.UpdatedAt.IsZero() {
		p.UpdatedAt = p.UpdatedAt.UTC().Truncate(time.Second)
	}
	return json.Marshal(p)
}

// Decode parses a parameter value of the named flag. It is strict: unknown
// keys, a value that is not one JSON object, and gates out of range are
// errors, because a misspelt key (a kill switch under "partner") read as
// "not set" would silently change who gets partner calls.
func Decode(flag string, data []byte) (Value, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return Value{}, errors.New("not a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.DisallowUnknownFields()
	var v Value
	if err := dec.Decode(&v); err != nil {
		return Value{}, describeDecodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Value{}, errors.New("trailing data after the JSON object")
	}
	v.Flag = flag
	if err := v.Validate(); err != nil {
		return Value{}, err
	}
	return v, nil
}

func describeDecodeError(err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Errorf("invalid JSON at byte %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Errorf("%s: %s is not a valid %s", te.Field, te.Value, te.Type)
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		return errors.New(strings.TrimPrefix(err.Error(), "json: "))
	default:
		return fmt.Errorf("invalid JSON: %w", err)
	}
}

// groupSegment is one namespace in a GitLab full path.
var groupSegment = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}$`)

// ValidGroup checks a group path such as gitlab-org or gitlab-com/gl-security.
func ValidGroup(path string) error {
	if path == "" {
		return errors.New("group path is empty")
	}
	for _, seg := range strings.Split(path, "/") {
		if !groupSegment.MatchString(seg) {
			return fmt.Errorf("group %q is not a GitLab group path (letters, digits, _ . - separated by /)", printable(path))
		}
	}
	return nil
}

// Validate checks every gate and the metadata of a value.
func (v Value) Validate() error {
	var problems []string
	if v.PercentageOfActors < 0 || v.PercentageOfActors > 100 {
		problems = append(problems, fmt.Sprintf("percentage_of_actors %d is outside 0-100", v.PercentageOfActors))
	}
	for _, g := range v.Groups {
		if err := ValidGroup(g); err != nil {
			problems = append(problems, "groups: "+err.Error())
		}
	}
	for _, id := range v.Projects {
		if id <= 0 {
			problems = append(problems, fmt.Sprintf("projects: %d is not a positive project id", id))
		}
	}
	for p := range v.Partners {
		if !ValidPartnerName(string(p)) {
			problems = append(problems, fmt.Sprintf("partners: %q is not a partner name (lower-case letters and digits)", printable(string(p))))
		}
	}
	if err := checkText("updated_by", v.UpdatedBy, maxUpdatedBy); err != nil {
		problems = append(problems, err.Error())
	}
	if err := checkText("reason", v.Reason, maxReason); err != nil {
		problems = append(problems, err.Error())
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

func checkText(field, s string, limit int) error {
	if len(s) > limit {
		return fmt.Errorf("%s is %d bytes, limit %d", field, len(s), limit)
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("%s contains a control character", field)
		}
	}
	return nil
}

// printable bounds text taken from input before it goes into a message.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if !unicode.IsPrint(r) {
			return '?'
		}
		return r
	}, textfit.Fit(s, 80))
}

// partnerName is the form of a partner name. The flag checks the form
// only, not the list of partners this build knows: a value that switches
// off a partner added by a newer deployment must not make an older
// function's flag invalid. The feature command checks names against the
// registry before it writes.
var partnerName = regexp.MustCompile(`^[a-z][a-z0-9]{0,31}$`)

// ValidPartnerName reports whether s has the form of a partner name.
func ValidPartnerName(s string) bool { return partnerName.MatchString(s) }

// partnersIn lists the partners either value names, sorted.
func partnersIn(vs ...Value) []finding.Partner {
	var out []finding.Partner
	for _, v := range vs {
		for p := range v.Partners {
			if !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
	}
	slices.Sort(out)
	return out
}

// EnabledFor says whether the flag is on for a project and partner. The
// partner's kill switch (partners.<name>: false) wins over every other gate;
// otherwise any one of the global gate, the groups, the projects or the
// percentage turns it on. An empty partner checks the project gates only.
func (v Value) EnabledFor(project finding.Project, partner finding.Partner) bool {
	if !v.PartnerEnabled(partner) {
		return false
	}
	return v.Enabled || v.inGroups(project.FullPath) || slices.Contains(v.Projects, project.ID) ||
		inPercentage(v.Flag, project.ID, v.PercentageOfActors)
}

// PartnerEnabled is false only when the partner's kill switch is set.
func (v Value) PartnerEnabled(partner finding.Partner) bool {
	on, set := v.Partners[partner]
	return !set || on
}

// inGroups matches the project's full path against each group and its
// subgroups. GitLab paths are case-insensitive; the "/" boundary keeps
// gitlab-org-archive from matching gitlab-org.
func (v Value) inGroups(fullPath string) bool {
	if fullPath == "" {
		return false
	}
	path := strings.ToLower(fullPath)
	for _, g := range v.Groups {
		g = strings.ToLower(g)
		if path == g || strings.HasPrefix(path, g+"/") {
			return true
		}
	}
	return false
}

// bucket places a project in one of 100 buckets for a flag. It depends only
// on the flag's name and the project id, so a project keeps its bucket as the
// percentage grows and stays in once it is in.
func bucket(flag string, projectID int64) int {
	return int(crc32.ChecksumIEEE([]byte(flag+":"+strconv.FormatInt(projectID, 10))) % 100)
}

// inPercentage says whether a project falls in the first pct of a flag's buckets.
func inPercentage(flag string, projectID int64, pct int) bool {
	return projectID > 0 && pct > 0 && bucket(flag, projectID) < pct
}

// Off reports whether no gate can turn the flag on for any project.
func (v Value) Off() bool {
	return !v.Enabled && len(v.Groups) == 0 && len(v.Projects) == 0 && v.PercentageOfActors == 0
}

// SameGates compares the gates of two values, ignoring metadata and the order
// of lists, so a write that changes nothing can be skipped.
func (v Value) SameGates(o Value) bool {
	if v.Enabled != o.Enabled || v.PercentageOfActors != o.PercentageOfActors {
		return false
	}
	if !sameSet(lowerAll(v.Groups), lowerAll(o.Groups)) || !sameSet(v.Projects, o.Projects) {
		return false
	}
	for _, p := range partnersIn(v, o) {
		if v.PartnerEnabled(p) != o.PartnerEnabled(p) {
			return false
		}
	}
	return true
}

func lowerAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.ToLower(s)
	}
	return out
}

func sameSet[T cmp.Ordered](a, b []T) bool {
	a, b = slices.Compact(slices.Sorted(slices.Values(a))), slices.Compact(slices.Sorted(slices.Values(b)))
	return slices.Equal(a, b)
}

// Describe says in words who the flag is on for, for the command's output.
func (v Value) Describe() string {
	var parts []string
	if v.Enabled {
		parts = append(parts, "on globally")
	}
	if len(v.Groups) > 0 {
		parts = append(parts, "groups "+strings.Join(v.Groups, ", "))
	}
	if len(v.Projects) > 0 {
		ids := make([]string, len(v.Projects))
		for i, id := range v.Projects {
			ids[i] = strconv.FormatInt(id, 10)
		}
		parts = append(parts, "projects "+strings.Join(ids, ", "))
	}
	if v.PercentageOfActors > 0 {
		parts = append(parts, fmt.Sprintf("%d%% of projects", v.PercentageOfActors))
	}
	var s string
	switch {
	case len(parts) == 0:
		s = "off"
	case v.Enabled:
		s = strings.Join(parts, "; ")
	default:
		s = "on for " + strings.Join(parts, "; ")
	}
	var killed []string
	for _, p := range partnersIn(v) {
		if !v.PartnerEnabled(p) {
			killed = append(killed, string(p))
		}
	}
	if len(killed) > 0 {
		s += "; switched off for partner " + strings.Join(killed, ", ")
	}
	return s
}

// Change is one `feature set` as chat-ops means it: Enable with no actors
// turns the global gate on; Enable with groups, projects or a percentage adds
// them; !Enable with no actors turns every gate off (the rollback); !Enable
// with groups or projects removes them; Partners switches partners off
// (!Enable) or back on (Enable).
type Change struct {
	Enable        bool
	Groups        []string
	Projects      []int64
	SetPercentage bool
	Percentage    int
	Partners      []finding.Partner
}

// Validate rejects a change that is out of range or ambiguous.
func (c Change) Validate() error {
	for _, g := range c.Groups {
		if err := ValidGroup(g); err != nil {
			return err
		}
	}
	for _, id := range c.Projects {
		if id <= 0 {
			return fmt.Errorf("project id %d is not a positive integer", id)
		}
	}
	for _, p := range c.Partners {
		if !ValidPartnerName(string(p)) {
			return fmt.Errorf("%q is not a partner name (lower-case letters and digits)", printable(string(p)))
		}
	}
	if c.SetPercentage {
		if c.Percentage < 0 || c.Percentage > 100 {
			return fmt.Errorf("percentage of actors %d is outside 0-100", c.Percentage)
		}
		if !c.Enable {
			return errors.New("a percentage of actors is set with true (use 0 to stop it); false with no option turns everything off")
		}
	}
	if len(c.Partners) > 0 && (len(c.Groups) > 0 || len(c.Projects) > 0 || c.SetPercentage) {
		return errors.New("a partner switch cannot be combined with groups, projects or a percentage")
	}
	return nil
}

// IsRollback reports whether the change turns every gate off.
func (c Change) IsRollback() bool {
	return !c.Enable && len(c.Groups) == 0 && len(c.Projects) == 0 && !c.SetPercentage && len(c.Partners) == 0
}

// Apply returns v changed by c; v itself is not modified.
func (c Change) Apply(v Value) Value {
	out := v
	out.Groups = slices.Clone(v.Groups)
	out.Projects = slices.Clone(v.Projects)
	out.Partners = make(map[finding.Partner]bool, len(v.Partners))
	for p, on := range v.Partners {
		out.Partners[p] = on
	}
	switch {
	case len(c.Partners) > 0:
		for _, p := range c.Partners {
			if c.Enable {
				// Only false has a meaning; an absent switch is "on".
				delete(out.Partners, p)
			} else {
				out.Partners[p] = false
			}
		}
	case c.IsRollback():
		out.Enabled, out.Groups, out.Projects, out.PercentageOfActors = false, nil, nil, 0
	case c.Enable && len(c.Groups) == 0 && len(c.Projects) == 0 && !c.SetPercentage:
		out.Enabled = true
	case c.Enable:
		for _, g := range c.Groups {
			if !slices.ContainsFunc(out.Groups, func(h string) bool { return strings.EqualFold(g, h) }) {
				out.Groups = append(out.Groups, g)
			}
		}
		for _, id := range c.Projects {
			if !slices.Contains(out.Projects, id) {
				out.Projects = append(out.Projects, id)
			}
		}
		if c.SetPercentage {
			out.PercentageOfActors = c.Percentage
		}
	default:
		out.Groups = slices.DeleteFunc(out.Groups, func(h string) bool {
			return slices.ContainsFunc(c.Groups, func(g string) bool { return strings.EqualFold(g, h) })
		})
		out.Projects = slices.DeleteFunc(out.Projects, func(id int64) bool { return slices.Contains(c.Projects, id) })
	}
	if len(out.Partners) == 0 {
		out.Partners = nil
	}
	if len(out.Groups) == 0 {
		out.Groups = nil
	}
	if len(out.Projects) == 0 {
		out.Projects = nil
	}
	return out
}

// definition returns the flag's definition or the error every operation
// gives for a flag that has none.
func definition(flag string) (featureflags.Definition, error) {
	d, ok := featureflags.Lookup(flag)
	if !ok {
		return featureflags.Definition{}, fmt.Errorf("feature flag %q has no definition in config/feature_flags", printable(flag))
	}
	return d, nil
}
