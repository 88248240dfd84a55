package chaos

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Cell is one scenario × invariant result.
type Cell struct {
	// Violations are what broke the invariant; none means PASS.
	Violations []string
}

// Pass reports whether the invariant held.
func (c Cell) Pass() bool { return len(c.Violations) == 0 }

// Row is one scenario's line of the table.
type Row struct {
	Scenario string
	Fault    string
	// Cells are in the order of Report.Invariants.
	Cells []Cell
	// Notes are figures worth reading beside the verdict (peak memory,
	// results, dead letters).
	Notes    []string
	Duration time.Duration
}

func (r Row) pass() bool {
	for _, c := range r.Cells {
		if !c.Pass() {
			return false
		}
	}
	return true
}

func (r Row) verdict() string {
	if r.pass() {
		return "PASS"
	}
	return "FAIL"
}

// Report is the table of a suite run.
type Report struct {
	Invariants []Invariant
	Rows       []Row
}

// OK reports whether every cell passed (and there was at least one row).
func (r *Report) OK() bool {
	if r == nil || len(r.Rows) == 0 {
		return false
	}
	for _, row := range r.Rows {
		if !row.pass() {
			return false
		}
	}
	return true
}

// Evaluate checks every invariant against what a scenario left behind.
func Evaluate(o *Observation) Row {
	row := Row{Scenario: o.Scenario}
	for _, inv := range Invariants {
		row.Cells = append(row.Cells, Cell{Violations: inv.Check(o)})
	}
	results, dup := 0, 0
	for _, rs := range o.Results {
		results += len(rs)
		if len(rs) > 1 {
			dup++
		}
	}
	dl := 0
	for _, n := range o.DeadLettered {
		dl += n
	}
	row.Notes = append(row.Notes, fmt.Sprintf("%d findings, %d results (%d findings with repeated results), %d dead-lettered",
		len(o.Expect), results, dup, dl))
	var mem []string
	for _, m := range o.Memory {
		if m.Invocations == 0 {
			continue
		}
		mem = append(mem, fmt.Sprintf("%s %d/%d MB", strings.TrimSuffix(m.Function, "Function"), m.PeakKB/1024, m.LimitMB))
	}
	row.Notes = append(row.Notes, "peak memory: "+strings.Join(mem, ", "))
	row.Notes = append(row.Notes, o.Notes...)
	return row
}

// Print writes the table, then every violation and each row's notes.
func (r *Report) Print(w io.Writer) {
	nameW := len("scenario")
	for _, row := range r.Rows {
		nameW = max(nameW, len(row.Scenario))
	}
	widths := make([]int, len(r.Invariants))
	header := fmt.Sprintf("%-*s", nameW, "scenario")
	for i, inv := range r.Invariants {
		widths[i] = max(len(inv.Name), 4)
		header += " | " + fmt.Sprintf("%-*s", widths[i], inv.Name)
	}
	fmt.Fprintln(w, header)
	fmt.Fprintln(w, strings.Repeat("-", len(header)))
	for _, row := range r.Rows {
		line := fmt.Sprintf("%-*s", nameW, row.Scenario)
		for i, c := range row.Cells {
			v := "PASS"
			if !c.Pass() {
				v = "FAIL"
			}
			line += " | " + fmt.Sprintf("%-*s", widths[i], v)
		}
		fmt.Fprintln(w, line)
	}
	fmt.Fprintln(w)
	for _, inv := range r.Invariants {
		fmt.Fprintf(w, "%s: %s\n", inv.Name, inv.Doc)
	}
	fmt.Fprintln(w)
	for _, row := range r.Rows {
		fmt.Fprintf(w, "%s (%s, %s): %s\n", row.Scenario, row.Fault, row.Duration.Round(time.Second), row.verdict())
		for _, n := range row.Notes {
			fmt.Fprintf(w, "    %s\n", n)
		}
		for i, c := range row.Cells {
			for _, v := range c.Violations {
				fmt.Fprintf(w, "    FAIL %s: %s\n", r.Invariants[i].Name, v)
			}
		}
	}
}
