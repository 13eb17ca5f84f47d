// Command eddy is the one command-line tool of the eddy project.
//
// "eddy broker" runs the bundled broker. Every other command (topic, produce,
// consume, group, perf) is a plain Kafka client built on franz-go, so it works
// against eddy's broker and against any Kafka cluster alike, as rpk or kcat do.
// The global --brokers flag (environment EDDY_BROKERS, default 127.0.0.1:9092)
// selects the cluster.
//
// Commands:
//
//	eddy broker                         run the broker
//	eddy topic create|list|describe|delete|alter-config
//	eddy produce TOPIC                  one record per stdin line
//	eddy consume TOPIC                  kcat-like formatted output
//	eddy group list|describe|delete|reset-offsets
//	eddy perf produce|consume|latency|compare
//
// docs/cli.md is the full reference.
package main
