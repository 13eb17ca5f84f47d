// Command eddy is the one command-line tool of the eddy project.
//
// "eddy broker" runs the bundled broker, and the schema registry on its
// HTTP listener. Every other command (topic, produce, consume, group, txn,
// perf) is a plain Kafka client built on franz-go, so it works
// against eddy's broker and against any Kafka cluster alike, as rpk or kcat do.
// The global --brokers flag (environment EDDY_BROKERS, default 127.0.0.1:9092)
// selects the cluster; "eddy registry" talks to a schema registry by URL
// (--registry, environment EDDY_REGISTRY, default http://127.0.0.1:8081).
//
// Commands:
//
//	eddy broker                         run the broker
//	eddy topic create|list|describe|delete|alter-config
//	eddy produce TOPIC                  one record per stdin line
//	eddy consume TOPIC                  kcat-like formatted output
//	eddy group list|describe|delete|reset-offsets
//	eddy registry subjects|get|register|check|delete|config
//	eddy txn list|describe|producers    transactions and producer state
//	eddy perf produce|consume|latency|compare|streams|soak|eos|avro
//
// docs/cli.md is the full reference.
package main
