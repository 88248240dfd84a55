package rollout

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/featureflag"
	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/shared/textfit"
)

// maxReason is featureflag's limit on a value's reason, in bytes.
const maxReason = 512

// AdvanceOptions are the operator's choices for one advance.
type AdvanceOptions struct {
	// By is recorded as updated_by.
	By string
	// Reason is written with the change; it is required with Force.
	Reason string
	// Force applies the next stage although checks hold it back.
	Force bool
	// DryRun reports what would be written, and writes nothing.
	DryRun bool
}

// EnvUpdate is the outcome of a flag write in one environment.
type EnvUpdate struct {
	Environment string              `json:"environment"`
	Update      *featureflag.Update `json:"update,omitempty"`
	Error       string              `json:"error,omitempty"`
}

// EnvDeletion is the outcome of a parameter deletion in one environment.
type EnvDeletion struct {
	Environment string    `json:"environment"`
	Deletion    *Deletion `json:"deletion,omitempty"`
	Error       string    `json:"error,omitempty"`
}

// AdvanceResult is what one advance found and did.
type AdvanceResult struct {
	Status *Status `json:"status"`
	// Stage is the number of the stage acted on, 0 when the plan is complete.
	Stage int `json:"stage"`
	// Held is true when checks held the stage back and nothing was done.
	Held bool `json:"held"`
	// Forced lists the failing checks a forced advance overrode.
	Forced []Check `json:"forced,omitempty"`
	// Reason is what was written with the change.
	Reason    string        `json:"reason,omitempty"`
	Updates   []EnvUpdate   `json:"updates,omitempty"`
	Deletions []EnvDeletion `json:"deletions,omitempty"`
	// Edit is the code change a person must make (the code stages).
	Edit *Edit `json:"edit,omitempty"`
	// DeleteFile is set when the edit is removing a whole file.
	DeleteFile bool `json:"delete_file,omitempty"`
	// References are the lines naming the flag (the removal stage).
	References []Reference `json:"references,omitempty"`
}

// Failed lists the environments where a write or deletion failed.
func (a *AdvanceResult) Failed() []string {
	var out []string
	for _, u := range a.Updates {
		if u.Error != "" {
			out = append(out, u.Environment)
		}
	}
	for _, d := range a.Deletions {
		if d.Error != "" {
			out = append(out, d.Environment)
		}
	}
	return out
}

// ErrForceNeedsReason means --force was given without a reason.
var ErrForceNeedsReason = errors.New("a forced advance needs a reason: it is written with the change")

// Advance applies the next stage when every check passes (or Force says
// to apply it anyway). A flag stage is written in each of its
// environments; a code stage yields the edit a person makes; the removal,
// once its definition is gone from the repository, deletes the parameter
// in each of its environments.
func (r *Runner) Advance(ctx context.Context, o AdvanceOptions) (*AdvanceResult, error) {
	if o.Force && strings.TrimSpace(o.Reason) == "" {
		return nil, ErrForceNeedsReason
	}
	st, err := r.Status(ctx)
	if err != nil {
		return nil, err
	}
	res := &AdvanceResult{Status: st}
	if st.Complete {
		return res, nil
	}
	if bad := st.Unreadable(); len(bad) > 0 {
		var why []string
		for _, name := range bad {
			why = append(why, name+": "+st.Env(name).Error)
		}
		return res, fmt.Errorf("advance %s: the flag could not be read (%s); nothing was changed", r.Plan.Flag, strings.Join(why, "; "))
	}
	res.Stage = st.Next
	held := st.Held()
	if len(held) > 0 && !o.Force {
		res.Held = true
		return res, nil
	}
	if len(held) > 0 {
		res.Forced = held
	}
	stage := r.Plan.Stages[st.Next-1]
	res.Reason = r.reason(st.Next, stage, o.Reason, res.Forced)
	meta := featureflag.Meta{By: o.By, Reason: res.Reason}
	switch {
	case stage.IsFlag():
		for _, name := range stage.Environments {
			e := r.Envs[name]
			store := featureflag.NewStore(e.SSM, r.Now)
			u, err := store.Set(ctx, r.Plan.Flag, e.Parameter, stage.Set.Change(), meta, o.DryRun)
			eu := EnvUpdate{Environment: name}
			if err != nil {
				eu.Error = err.Error()
			}
			if err == nil || u.Before.Parameter != "" {
				eu.Update = &u
			}
			res.Updates = append(res.Updates, eu)
		}
	case stage.CodeChange == CodeDefaultEnabled:
		edit := st.Code.DefaultEnabledEdit()
		res.Edit = &edit
	case st.Code.Present:
		res.Edit = &Edit{Path: st.Code.Definition}
		res.DeleteFile = true
		if res.References, err = References(r.Root, r.Plan.Flag); err != nil {
			return res, err
		}
	default:
		if res.References, err = References(r.Root, r.Plan.Flag); err != nil {
			return res, err
		}
		for _, name := range stage.Environments {
			e := r.Envs[name]
			d, err := Delete(ctx, e.SSM, r.Plan.Flag, e.Parameter, o.DryRun)
			ed := EnvDeletion{Environment: name, Deletion: &d}
			if err != nil {
				ed.Error = err.Error()
			}
			res.Deletions = append(res.Deletions, ed)
		}
	}
	return res, nil
}

// reason is the text written with a stage's change: which stage of which
// plan, the operator's reason, and any check a force overrode.
func (r *Runner) reason(number int, s Stage, given string, forced []Check) string {
	head := fmt.Sprintf("rollout stage %d/%d %s", number, len(r.Plan.Stages), s.Name)
	var tail string
	if len(forced) > 0 {
		names := make([]string, len(forced))
		for i, c := range forced {
			names[i] = c.Name
		}
		tail = " (forced past: " + strings.Join(names, ", ") + ")"
	}
	given = strings.TrimSpace(given)
	if given == "" {
		return textfit.Fit(head+tail, maxReason)
	}
	room := maxReason - len(head) - len(tail) - len(": ")
	return textfit.Fit(head+": "+textfit.Fit(given, room)+tail, maxReason)
}

// Rollback turns the flag off (every gate: global, groups, projects,
// percentage) in every environment a stage of the plan sets it in,
// production first. A partner's kill switch stays as it is; an absent
// parameter is left absent while the definition's default is off. It needs
// no check: turning off is always allowed.
func (r *Runner) Rollback(ctx context.Context, by, reason string, dryRun bool) ([]EnvUpdate, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	text := "rollout rollback"
	if reason = strings.TrimSpace(reason); reason != "" {
		text = textfit.Fit(text+": "+reason, maxReason)
	}
	code, err := ReadCode(r.Root, r.Plan.Flag)
	if err != nil {
		return nil, err
	}
	var out []EnvUpdate
	for _, name := range r.Plan.FlagEnvironments() {
		e := r.Envs[name]
		// An absent parameter is off while the default is: writing "off"
		// there would only create a parameter the removal must delete.
		if !(code.Present && code.DefaultEnabled) {
			// A read error is left to Set, which reads again and reports it.
			if p, err := featureflag.ReadParameter(ctx, e.SSM, r.Plan.Flag, e.Parameter); err == nil && !p.Found {
				absent := featureflag.State{Flag: r.Plan.Flag, Parameter: e.Parameter, Value: featureflag.Value{Flag: r.Plan.Flag}}
				out = append(out, EnvUpdate{Environment: name, Update: &featureflag.Update{Before: absent, After: absent}})
				continue
			}
		}
		u, err := featureflag.NewStore(e.SSM, r.Now).Set(ctx, r.Plan.Flag, e.Parameter, featureflag.Change{Enable: false},
			featureflag.Meta{By: by, Reason: text}, dryRun)
		eu := EnvUpdate{Environment: name}
		if err != nil {
			eu.Error = err.Error()
		}
		if err == nil || u.Before.Parameter != "" {
			eu.Update = &u
		}
		out = append(out, eu)
	}
	return out, nil
}
