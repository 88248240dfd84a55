package rollout

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/partner/registry"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/smithy-go"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/featureflag"
)

// CloudFormationAPI is the part of the CloudFormation client the rollout
// reads: the stack's AutoRollbackEnabled output.
type CloudFormationAPI interface {
	DescribeStacks(ctx context.Context, in *cloudformation.DescribeStacksInput, optFns ...func(*cloudformation.Options)) (*cloudformation.DescribeStacksOutput, error)
}

// AutoRollbackOutput is the stack output that says whether the automatic
// per-partner rollback is deployed.
const AutoRollbackOutput = "AutoRollbackEnabled"

// Environment is one deployment environment: its stack, the flag's
// parameter there, and clients for its account and region.
type Environment struct {
	Name      string
	Stack     string
	Parameter string
	SSM       SSMAPI
	// CloudWatch reads the stack's alarms.
	CloudWatch CloudWatchAPI
	// CloudFormation reads the stack's outputs; nil skips them.
	CloudFormation CloudFormationAPI
}

// Runner runs one plan.
type Runner struct {
	Plan *Plan
	// Envs holds every environment the plan names, by name.
	Envs map[string]*Environment
	// Root is the repository checkout: definition file, references.
	Root string
	// Now is the clock of every decision and of updated_at (nil: time.Now).
	Now func() time.Time
}

func (r *Runner) now() time.Time {
	if r.Now == nil {
		return time.Now()
	}
	return r.Now()
}

// check says whether the runner can act on its plan.
func (r *Runner) check() error {
	if r.Plan == nil {
		return errors.New("rollout: no plan")
	}
	for _, name := range r.Plan.Environments() {
		e := r.Envs[name]
		if e == nil || e.SSM == nil || e.CloudWatch == nil || e.Parameter == "" {
			return fmt.Errorf("rollout: environment %s of the plan is not configured", name)
		}
	}
	return nil
}

// EnvState is the flag in one environment as read now.
type EnvState struct {
	Environment string `json:"environment"`
	Stack       string `json:"stack,omitempty"`
	Parameter   string `json:"parameter"`
	// Found is false when the parameter is absent; Value is then the
	// definition's default.
	Found   bool              `json:"found"`
	Version int64             `json:"version,omitempty"`
	Value   featureflag.Value `json:"value"`
	Invalid string            `json:"invalid,omitempty"`
	// ChangedAt is the value's updated_at, or SSM's modification time for
	// a value written without one.
	ChangedAt time.Time `json:"changed_at,omitzero"`
	// AutoRollback is the stack's AutoRollbackEnabled output ("true",
	// "false"), empty when unknown; AutoRollbackNote says why.
	AutoRollback     string `json:"auto_rollback,omitempty"`
	AutoRollbackNote string `json:"auto_rollback_note,omitempty"`
	Error            string `json:"error,omitempty"`
}

// Describe says in words what the flag is in this environment.
func (e EnvState) Describe() string {
	switch {
	case e.Error != "":
		return "UNREADABLE: " + e.Error
	case e.Invalid != "":
		return fmt.Sprintf("version %d, INVALID value: %s", e.Version, e.Invalid)
	case !e.Found:
		return "absent, definition default: " + e.Value.Describe()
	}
	return fmt.Sprintf("version %d, %s", e.Version, e.Value.Describe())
}

// Stage states.
const (
	Done    = "done"
	Current = "current"
	Pending = "pending"
)

// StageStatus is where one stage stands.
type StageStatus struct {
	Number  int    `json:"number"`
	Name    string `json:"name"`
	State   string `json:"state"`
	Applied bool   `json:"applied"`
	// Detail says, per environment or for the code, why it is (not) in effect.
	Detail  string `json:"detail"`
	Command string `json:"command"`
	// ChangedAt is the latest change of the flag in the stage's
	// environments; zero for code changes.
	ChangedAt time.Time `json:"changed_at,omitzero"`
	Stage     Stage     `json:"stage"`
}

// Check is one condition on advancing.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// Check names.
const (
	CheckEarliest     = "earliest date"
	CheckSoak         = "soak"
	CheckAlarmsInSoak = "alarms during the soak"
	CheckAlarmsNow    = "alarms now"
)

// Status is where the whole plan stands.
type Status struct {
	Flag         string        `json:"flag"`
	Plan         string        `json:"plan"`
	Now          time.Time     `json:"now"`
	Code         Code          `json:"code"`
	Environments []EnvState    `json:"environments"`
	Stages       []StageStatus `json:"stages"`
	// Current and Next are stage numbers (1-based); 0 means none.
	Current  int  `json:"current"`
	Next     int  `json:"next"`
	Complete bool `json:"complete"`
	// Alarms are the watched alarms examined for the next stage.
	Alarms     []Alarm  `json:"alarms,omitempty"`
	AlarmNotes []string `json:"alarm_notes,omitempty"`
	Checks     []Check  `json:"checks,omitempty"`
	MayAdvance bool     `json:"may_advance"`
	Warnings   []string `json:"warnings,omitempty"`
}

// Env returns the state of a named environment.
func (s *Status) Env(name string) *EnvState {
	for i := range s.Environments {
		if s.Environments[i].Environment == name {
			return &s.Environments[i]
		}
	}
	return nil
}

// Unreadable lists the environments whose flag could not be read.
func (s *Status) Unreadable() []string {
	var out []string
	for _, e := range s.Environments {
		if e.Error != "" {
			out = append(out, e.Environment)
		}
	}
	return out
}

// Held lists the checks that do not pass.
func (s *Status) Held() []Check {
	var out []Check
	for _, c := range s.Checks {
		if !c.OK {
			out = append(out, c)
		}
	}
	return out
}

// Status reads every environment of the plan and the repository and says
// which stage is done, current or pending, and whether the next may start.
func (r *Runner) Status(ctx context.Context) (*Status, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	now := r.now().UTC()
	code, err := ReadCode(r.Root, r.Plan.Flag)
	if err != nil {
		return nil, err
	}
	st := &Status{Flag: r.Plan.Flag, Plan: r.Plan.Path, Now: now, Code: code}
	for _, name := range r.Plan.Environments() {
		st.Environments = append(st.Environments, r.readEnv(ctx, r.Envs[name], code))
	}
	last := -1
	for i, s := range r.Plan.Stages {
		ss := r.stageStatus(i, s, st)
		if ss.Applied {
			last = i
		}
		st.Stages = append(st.Stages, ss)
	}
	// Once the flag is removed, the earlier stages are history, not gaps.
	removed := last == len(st.Stages)-1 && r.Plan.Stages[last].CodeChange == CodeRemove
	for i := range st.Stages {
		ss := &st.Stages[i]
		switch {
		case i < last && (ss.Applied || removed), i == last && last == len(st.Stages)-1:
			ss.State = Done
			if removed && i < last && !ss.Applied {
				ss.Detail = "superseded by the removal of the flag"
			}
		case i == last:
			ss.State = Current
		default:
			ss.State = Pending
			if i < last {
				st.Warnings = append(st.Warnings, fmt.Sprintf("stage %d (%s) is not in effect although stage %d (%s) is: the plan was not followed in order",
					ss.Number, ss.Name, last+1, st.Stages[last].Name))
			}
		}
	}
	st.Current = last + 1
	st.Complete = last == len(st.Stages)-1
	if !st.Complete {
		st.Next = last + 2
	}
	for _, e := range st.Environments {
		for _, p := range registry.Names() {
			if e.Error == "" && !e.Value.PartnerEnabled(p) {
				st.Warnings = append(st.Warnings, fmt.Sprintf("%s: partner %s is switched off (updated by %s)", e.Environment, p, orUnknown(e.Value.UpdatedBy)))
			}
		}
		if e.Invalid != "" {
			st.Warnings = append(st.Warnings, fmt.Sprintf("%s: the flag's value is invalid; the functions fail until `feature set %s false --%s` replaces it", e.Environment, st.Flag, e.Environment))
		}
	}
	if !st.Complete {
		r.decide(ctx, st)
	}
	return st, nil
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// readEnv reads the flag's parameter with featureflag.ReadParameter rather
// than featureflag.Store.Get, which needs the flag's definition: the removal
// stage reads parameters after the definition is gone.
func (r *Runner) readEnv(ctx context.Context, e *Environment, code Code) EnvState {
	st := EnvState{Environment: e.Name, Stack: e.Stack, Parameter: e.Parameter}
	p, err := featureflag.ReadParameter(ctx, e.SSM, r.Plan.Flag, e.Parameter)
	switch {
	case err != nil:
		st.Error = err.Error()
	case !p.Found:
		st.Value = featureflag.Value{Enabled: code.Present && code.DefaultEnabled, Flag: r.Plan.Flag}
	default:
		st.Found, st.Version, st.ChangedAt = true, p.Version, p.LastModified
		st.Invalid, st.Value = p.Invalid, p.Value
		if !p.Value.UpdatedAt.IsZero() {
			st.ChangedAt = p.Value.UpdatedAt
		}
	}
	st.AutoRollback, st.AutoRollbackNote = autoRollback(ctx, e)
	return st
}

// autoRollback reads the stack's AutoRollbackEnabled output.
func autoRollback(ctx context.Context, e *Environment) (value, note string) {
	if e.CloudFormation == nil || e.Stack == "" {
		return "", "stack not known"
	}
	out, err := e.CloudFormation.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(e.Stack)})
	var apiErr smithy.APIError
	switch {
	case errors.As(err, &apiErr):
		return "", fmt.Sprintf("describe stack %s: %s: %s", e.Stack, apiErr.ErrorCode(), apiErr.ErrorMessage())
	case err != nil:
		return "", fmt.Sprintf("describe stack %s: %v", e.Stack, err)
	}
	for _, s := range out.Stacks {
		for _, o := range s.Outputs {
			if aws.ToString(o.OutputKey) == AutoRollbackOutput {
				return aws.ToString(o.OutputValue), ""
			}
		}
	}
	return "", fmt.Sprintf("stack %s has no %s output", e.Stack, AutoRollbackOutput)
}

func (r *Runner) stageStatus(i int, s Stage, st *Status) StageStatus {
	ss := StageStatus{Number: i + 1, Name: s.Name, Command: s.Command(r.Plan.Flag), Stage: s}
	switch {
	case s.IsFlag():
		change := s.Set.Change()
		var in, out []string
		applied := true
		for _, name := range s.Environments {
			e := st.Env(name)
			switch {
			case e.Error != "":
				applied = false
				out = append(out, name+" (unreadable)")
			case e.Invalid != "":
				applied = false
				out = append(out, name+" (invalid value)")
			case change.Apply(e.Value).SameGates(e.Value):
				in = append(in, name)
				if e.ChangedAt.After(ss.ChangedAt) {
					ss.ChangedAt = e.ChangedAt
				}
			default:
				applied = false
				out = append(out, name+" ("+e.Value.Describe()+")")
			}
		}
		ss.Applied = applied
		var parts []string
		if len(in) > 0 {
			parts = append(parts, "in effect in "+strings.Join(in, ", "))
		}
		if len(out) > 0 {
			parts = append(parts, "not in "+strings.Join(out, ", "))
		}
		ss.Detail = strings.Join(parts, "; ")
	case s.CodeChange == CodeDefaultEnabled:
		switch {
		case !st.Code.Present:
			ss.Applied, ss.Detail = true, st.Code.Definition+" is removed"
		case st.Code.DefaultEnabled:
			ss.Applied, ss.Detail = true, st.Code.Definition+" says default_enabled: true"
		default:
			ss.Detail = st.Code.Definition + " says default_enabled: false"
		}
	default:
		var remain, unreadable []string
		for _, name := range s.Environments {
			e := st.Env(name)
			switch {
			case e.Error != "":
				unreadable = append(unreadable, name)
			case e.Found:
				remain = append(remain, name)
			}
		}
		switch {
		case st.Code.Present:
			ss.Detail = st.Code.Definition + " still exists"
		case len(unreadable) > 0:
			ss.Detail = "definition removed; cannot read the parameter in " + strings.Join(unreadable, ", ")
		case len(remain) > 0:
			ss.Detail = "definition removed; the parameter remains in " + strings.Join(remain, ", ")
		default:
			ss.Applied, ss.Detail = true, "definition removed and no parameter left"
		}
	}
	return ss
}

// decide fills in the checks on the next stage.
func (r *Runner) decide(ctx context.Context, st *Status) {
	next := r.Plan.Stages[st.Next-1]
	now := st.Now
	if !now.Before(next.Earliest.Time) {
		st.Checks = append(st.Checks, Check{CheckEarliest, true, "earliest date " + next.Earliest.String() + " has come"})
	} else {
		st.Checks = append(st.Checks, Check{CheckEarliest, false, fmt.Sprintf("earliest date %s has not come: %s to go", next.Earliest, Human(next.Earliest.Sub(now)))})
	}
	envs := slices.Clone(next.Environments)
	alerts := slices.Clone(next.Alarms)
	var cur *StageStatus
	if st.Current > 0 {
		cur = &st.Stages[st.Current-1]
		for _, e := range cur.Stage.Environments {
			if !slices.Contains(envs, e) {
				envs = append(envs, e)
			}
		}
		for _, a := range cur.Stage.Alarms {
			if !slices.Contains(alerts, a) {
				alerts = append(alerts, a)
			}
		}
	}
	soak := time.Duration(0)
	var since time.Time
	if cur != nil {
		soak, since = time.Duration(cur.Stage.Soak), cur.ChangedAt
	}
	if soak > 0 && since.IsZero() {
		st.Checks = append(st.Checks, Check{CheckSoak, false, fmt.Sprintf("when stage %d (%s) was applied is not known", cur.Number, cur.Name)})
		soak = 0
	} else if soak > 0 {
		elapsed := now.Sub(since)
		c := Check{Name: CheckSoak, OK: elapsed >= soak}
		c.Detail = fmt.Sprintf("stage %d (%s) changed %s, %s ago; soak %s", cur.Number, cur.Name, since.UTC().Format(time.RFC3339), Human(elapsed), Human(soak))
		if !c.OK {
			c.Detail += ": " + Human(soak-elapsed) + " to go"
		}
		st.Checks = append(st.Checks, c)
	}
	if len(alerts) == 0 || len(envs) == 0 {
		st.Checks = append(st.Checks, Check{CheckAlarmsNow, true, "no alarms are watched"})
		st.MayAdvance = len(st.Held()) == 0
		return
	}
	if soak == 0 {
		since = time.Time{}
	}
	var readErrs []string
	for _, name := range envs {
		e := r.Envs[name]
		if e.Stack == "" {
			readErrs = append(readErrs, name+": no stack name, so its alarms cannot be found")
			continue
		}
		var names []string
		for _, a := range alerts {
			for _, p := range registry.Names() {
				names = append(names, AlarmName(a, e.Stack, p))
			}
		}
		alarms, note, err := readAlarms(ctx, e.CloudWatch, name, names, since)
		if err != nil {
			readErrs = append(readErrs, err.Error())
			continue
		}
		if note != "" {
			st.AlarmNotes = append(st.AlarmNotes, note)
		}
		st.Alarms = append(st.Alarms, alarms...)
	}
	if soak > 0 {
		st.Checks = append(st.Checks, soakAlarmsCheck(st.Alarms, readErrs, since, now, soak))
	}
	st.Checks = append(st.Checks, nowAlarmsCheck(st.Alarms, readErrs))
	st.MayAdvance = len(st.Held()) == 0
}

// soakAlarmsCheck passes when no watched alarm changed into or out of
// ALARM since the stage's change, or the last such change is a whole soak
// ago: an alarm restarts the soak.
func soakAlarmsCheck(alarms []Alarm, readErrs []string, since, now time.Time, soak time.Duration) Check {
	c := Check{Name: CheckAlarmsInSoak, OK: len(readErrs) == 0}
	var quiet time.Time
	var lines []string
	firing := false
	for _, a := range alarms {
		if a.InAlarm() {
			firing = true
			lines = append(lines, a.Environment+" "+a.Name+": in ALARM since "+a.StateUpdated.UTC().Format(time.RFC3339))
			continue
		}
		if len(a.Events) == 0 {
			continue
		}
		if t := a.LastEvent(); t.After(quiet) {
			quiet = t
		}
		lines = append(lines, a.Environment+" "+a.Name+": "+describeEvents(a))
	}
	switch {
	case len(readErrs) > 0:
		c.Detail = "cannot read the alarms: " + strings.Join(readErrs, "; ")
	case firing:
		// Not quiet at all while an alarm is in ALARM: the soak restarts once it is OK.
		c.OK = false
		c.Detail = strings.Join(lines, "; ") + "; the soak starts again when it leaves ALARM"
	case quiet.IsZero():
		c.Detail = "no watched alarm went to ALARM since " + since.UTC().Format(time.RFC3339)
	default:
		quietFor := now.Sub(quiet)
		c.OK = quietFor >= soak
		c.Detail = strings.Join(lines, "; ") + fmt.Sprintf("; quiet since %s, %s of the %s soak", quiet.UTC().Format(time.RFC3339), Human(max(quietFor, 0)), Human(soak))
		if !c.OK {
			c.Detail += ": " + Human(soak-quietFor) + " to go"
		}
	}
	return c
}

func describeEvents(a Alarm) string {
	var parts []string
	for _, e := range a.Events {
		at := e.Time.UTC().Format(time.RFC3339)
		switch {
		case a.Inferred:
			parts = append(parts, "changed state to "+e.To+" at "+at+" (no alarm history: counted as an alarm)")
		case e.To == StateAlarm:
			parts = append(parts, "went to ALARM at "+at)
		case e.To == "":
			parts = append(parts, "changed state at "+at+" (states unknown: counted as an alarm)")
		default:
			parts = append(parts, "went from ALARM to "+e.To+" at "+at)
		}
	}
	return strings.Join(parts, ", ")
}

// nowAlarmsCheck passes when every watched alarm exists and none is in ALARM.
func nowAlarmsCheck(alarms []Alarm, readErrs []string) Check {
	c := Check{Name: CheckAlarmsNow}
	var firing, missing []string
	for _, a := range alarms {
		switch {
		case !a.Found:
			missing = append(missing, a.Environment+" "+a.Name)
		case a.InAlarm():
			firing = append(firing, a.Environment+" "+a.Name+" (since "+a.StateUpdated.UTC().Format(time.RFC3339)+")")
		}
	}
	var parts []string
	if len(firing) > 0 {
		parts = append(parts, "in ALARM now: "+strings.Join(firing, ", "))
	}
	if len(missing) > 0 {
		parts = append(parts, "not found, so not known to be quiet: "+strings.Join(missing, ", "))
	}
	if len(readErrs) > 0 {
		parts = append(parts, "cannot read the alarms: "+strings.Join(readErrs, "; "))
	}
	if len(parts) == 0 {
		c.OK = true
		c.Detail = fmt.Sprintf("none of the %d watched alarms is in ALARM", len(alarms))
		return c
	}
	c.Detail = strings.Join(parts, "; ")
	return c
}

// Human writes a duration as days, hours and minutes (seconds under a minute).
func Human(d time.Duration) string {
	if d < 0 {
		return "-" + Human(-d)
	}
	if d < time.Minute {
		return d.Truncate(time.Second).String()
	}
	d = d.Truncate(time.Minute)
	days, d := d/(24*time.Hour), d%(24*time.Hour)
	hours, mins := d/time.Hour, (d%time.Hour)/time.Minute
	var parts []string
	if days > 0 {
		parts = append(parts, fmt.Sprintf("%dd", days))
	}
	if hours > 0 {
		parts = append(parts, fmt.Sprintf("%dh", hours))
	}
	if mins > 0 || len(parts) == 0 {
		parts = append(parts, fmt.Sprintf("%dm", mins))
	}
	return strings.Join(parts, " ")
}
