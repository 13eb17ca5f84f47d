// Package registry is eddy's built-in schema registry: a server for the
// Confluent Schema Registry REST API, for Avro schemas, that `eddy broker`
// serves on its HTTP listener, and the compatibility rules it enforces.
//
// # Server
//
// A [Server] keeps its state in memory and its records in a [Log], an
// ordered, durable log in the layout of Confluent's _schemas topic; [New]
// rebuilds the state by replaying the log, so schema ids and versions
// survive restarts. Every change is validated, appended to the log (one
// writer at a time) and applied to memory only once the append succeeded.
// The smallest use, on a log of your own:
//
//	srv, err := registry.New(ctx, registry.Config{Log: log})
//	if err != nil {
//		return err
//	}
//	defer srv.Close()
//	http.ListenAndServe("127.0.0.1:8081", srv)
//
// [NewKafkaLog] is a Log on a compacted Kafka topic (eddy's broker or any
// Kafka), and [Mount] serves a registry on an eddy broker with its records
// in [DefaultTopic] there.
//
// Clients of Confluent's registry work against it unchanged: franz-go's
// pkg/sr, hamba/avro's registry client and eddy's serde/avro are tested.
//
// # Endpoints
//
//	GET    /                                       {}
//	GET    /schemas/types                          ["AVRO"]
//	GET    /contexts                               ["."]
//	GET    /subjects[?deleted&subjectPrefix]       subjects with a live (or, deleted=true, any) version
//	GET    /subjects/{s}/versions[?deleted]        version numbers
//	POST   /subjects/{s}/versions                  register: {"id":N}
//	GET    /subjects/{s}/versions/{v}[?deleted]    {"subject","id","version","schema"}; v: N, latest or -1
//	GET    /subjects/{s}/versions/{v}/schema       the schema text
//	GET    /subjects/{s}/versions/{v}/referencedby []
//	POST   /subjects/{s}[?deleted]                 look a schema up under s
//	DELETE /subjects/{s}[?permanent]               versions deleted
//	DELETE /subjects/{s}/versions/{v}[?permanent]  version deleted
//	GET    /schemas/ids/{id}                       {"schema"}; also of soft-deleted versions
//	GET    /schemas/ids/{id}/schema                the schema text
//	GET    /schemas/ids/{id}/versions[?deleted]    [{"subject","version"}]
//	GET    /schemas/ids/{id}/subjects[?deleted]    subjects
//	GET|PUT|DELETE /config[/{s}]                   compatibility level (GET /config/{s}?defaultToGlobal)
//	POST   /compatibility/subjects/{s}/versions[/{v}][?verbose]  {"is_compatible"[,"messages"]}
//	GET|PUT|DELETE /mode[/{s}]                     READWRITE, READONLY, READONLY_OVERRIDE, IMPORT
//
// Registration: a schema identical (after json.Compact) to a live version
// of the subject returns that version's id and writes nothing. Otherwise the
// schema is checked against the subject's live versions under the subject's
// compatibility level (else the global one, else Config.DefaultCompatibility),
// gets the id of an identical schema anywhere in the registry (soft-deleted
// versions included) or a new one, one above the largest id ever applied,
// and the version after the largest the subject holds (soft-deleted ones
// included). Ids of permanently deleted schemas are not reused while the
// log still holds their records.
//
// Modes: READONLY and READONLY_OVERRIDE refuse registrations and deletes
// (42205); configs and modes can still be changed. IMPORT skips the
// compatibility check and honours "id" and "version" in the registration
// body, which other modes refuse (42205); it can only be set on an empty
// registry or subject unless ?force=true.
//
// Deletes follow Confluent: a soft delete marks versions deleted (a
// rewritten record), a permanent one (?permanent=true) writes tombstones and
// is only allowed for soft-deleted versions. A subject's config and mode
// outlive its schemas. DELETE /config/{s} and /mode/{s} answer the level or
// mode they removed, 40408 or 40409 when there was none; DELETE /config and
// /mode reset the global ones to the defaults.
//
// # Errors
//
// Error bodies are {"error_code":N,"message":"..."} with HTTP status the
// first three digits of N: 40401 subject, 40402 version, 40403 schema not
// found; 40404/40405 subject (not) soft-deleted, 40406/40407 version (not)
// soft-deleted, 40408/40409 no subject-level config/mode; 42201 invalid
// schema (also: a body that is not JSON on the schema endpoints, a
// schemaType other than AVRO, schema references), 42202 invalid version,
// 42203 invalid compatibility level, 42204 invalid mode, 42205 operation not
// permitted, 42207 id mismatch, 42208 invalid subject (empty, not UTF-8, or
// holding a control character); 50001 the log append failed (nothing was
// changed). An incompatible schema is HTTP 409 with error_code 409, which is
// what Confluent sends and what clients map to "incompatible" (the issue's
// 40901 is not used). A body that is not JSON on /config and /mode is 400
// with error_code 400; one over Config.MaxBodyBytes is 413 (error_code
// 413); a Content-Type other than the schema registry's, application/json
// or application/octet-stream is 415; an unknown path is 404 and a known one
// with another method 405, all with JSON bodies. Responses are
// application/vnd.schemaregistry.v1+json.
//
// GET /config answers both "compatibilityLevel" (Confluent's field) and
// "compatibility" (which hamba/avro's client reads).
//
// Not implemented: schema types other than Avro, schema references,
// contexts other than the default, metadata and rule sets (accepted and
// ignored), the normalize and format parameters and the subject parameter
// of /schemas/ids/{id} (ignored), GET /schemas, /exporters and the other
// Confluent Platform extensions. A subject name with an encoded slash
// (%2F) works.
//
// # Compatibility
//
// The compatibility modes are Confluent's (NONE, BACKWARD, BACKWARD_TRANSITIVE,
// FORWARD, FORWARD_TRANSITIVE, FULL, FULL_TRANSITIVE) for Avro schemas,
// decided by hamba/avro's schema resolution rules. [Check] is usable on its
// own:
//
//	msgs, err := registry.Check(registry.Backward, newSchema, []string{v1, v2})
//	if err != nil {
//		// newSchema (or a previous one) is not a valid Avro schema.
//	}
//	if len(msgs) > 0 {
//		// incompatible; msgs say why
//	}
package registry
