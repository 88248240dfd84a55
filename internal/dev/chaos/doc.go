// Package chaos is the fault-injection suite (`make chaos`, and its short
// form in `make test`): each scenario brings the whole system up
// on the local AWS (localrun: real bootstraps under the Lambda emulator,
// emulated event source mappings, the partner doubles), hurts it one way
// — partner faults, a dead or failing SSM, a results queue refusing sends,
// deadlines, duplicates, the local AWS restarting — and then checks every
// invariant against what the system left behind: nothing lost, no false
// inactive, no secret leaked, the token_uri canary silent, memory bounded,
// and the documented outcome. docs/failure-behaviour.md describes each
// fault's effect and each invariant.
package chaos
