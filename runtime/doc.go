// Package runtime executes a stream topology as workers: tasks per input
// partition, partition assignment through the Kafka group protocol, commits,
// exactly-once processing, state restore and metrics.
//
// It is being built (see the streams issues); today it holds only this
// description.
package runtime
