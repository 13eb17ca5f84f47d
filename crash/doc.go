// Package crash holds eddy's reliability suite: it builds the eddy binary,
// runs `eddy broker` as a subprocess, and checks durability and recovery
// against real process deaths (kill -9), torn and corrupted segment tails,
// and many concurrent connections; and transactions: an exactly-once
// consume-transform-produce workload under kill -9, and Jepsen-style checks
// for aborted reads, torn transactions, lost writes and a delayed EndTxn.
//
// The package has no exported API; everything lives in its tests. The
// default profile is short enough for CI; EDDY_CRASH_LONG=1 selects the
// long profile. See docs/testing.md.
package crash
