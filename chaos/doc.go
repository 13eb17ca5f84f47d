// Package chaos is eddy's end-to-end chaos suite for the stream runtime: it
// builds the eddy binary and the wordcount and orders examples, runs
// `eddy broker` and two or three workers of each example as subprocesses,
// feeds them known input in rounds while it kills workers (kill -9, with
// restarts on the same or a wiped state directory), kills the broker
// (restarted on the same port and data directory) and pauses workers past
// their session timeout (SIGSTOP, then SIGCONT: a zombie that must be
// fenced), and then verifies every output topic read_committed against the
// input actually committed.
//
// Under exactly_once the verifier must find nothing: per key the committed
// counts strictly increase and end at the exact count, and each enriched
// order appears exactly once with the right content. Under at_least_once
// the same scenario with worker kills must make the verifier report
// duplicates: that test passes only when a violation is found, which
// proves the verifier can fail.
//
// The package has no exported API; everything lives in its tests. The
// default profile is short enough for CI; EDDY_CHAOS_LONG=1 selects the
// long profile and EDDY_CHAOS_SEED replays a run. See docs/chaos.md.
package chaos
