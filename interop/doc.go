// Package interop holds the protocol-compatibility suite: independent Kafka
// clients (franz-go, IBM/sarama, segmentio/kafka-go, librdkafka through kcat
// and confluent-kafka-python, kafka-python) drive eddy's broker, started
// in-process, and the suite checks what each of them observes. Confluent's
// Python schema registry client drives eddy's schema registry too.
//
// The package has no exported API; everything lives in its tests. See
// docs/testing.md for the environment variables that control it
// (EDDY_INTEROP_REQUIRE, EDDY_INTEROP_TARGET, EDDY_PYTHON).
package interop
