// Package registry will hold eddy's built-in schema registry, compatible with
// the Confluent Schema Registry REST API and served by `eddy broker` on its
// HTTP listener.
//
// # Compatibility
//
// This file set is the registry's compatibility part: the Confluent
// compatibility modes (NONE, BACKWARD, BACKWARD_TRANSITIVE, FORWARD,
// FORWARD_TRANSITIVE, FULL, FULL_TRANSITIVE) for Avro schemas, decided by
// hamba/avro's schema resolution rules. The smallest use:
//
//	msgs, err := registry.Check(registry.Backward, newSchema, []string{v1, v2})
//	if err != nil {
//		// newSchema (or a previous one) is not a valid Avro schema.
//	}
//	if len(msgs) > 0 {
//		// incompatible; msgs say why
//	}
package registry
