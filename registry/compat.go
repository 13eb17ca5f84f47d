package registry

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/hamba/avro/v2"
)

// Compatibility is a Confluent Schema Registry compatibility mode: which
// earlier schemas of a subject a new schema is checked against, and in which
// direction.
type Compatibility string

// The compatibility modes, spelled as the Confluent REST API spells them.
const (
	// None accepts every valid schema.
	None Compatibility = "NONE"
	// Backward requires that the new schema can read data written with the
	// latest previous schema. It is the default mode.
	Backward Compatibility = "BACKWARD"
	// BackwardTransitive requires that the new schema can read data written
	// with every previous schema.
	BackwardTransitive Compatibility = "BACKWARD_TRANSITIVE"
	// Forward requires that the latest previous schema can read data written
	// with the new schema.
	Forward Compatibility = "FORWARD"
	// ForwardTransitive requires that every previous schema can read data
	// written with the new schema.
	ForwardTransitive Compatibility = "FORWARD_TRANSITIVE"
	// Full requires both Backward and Forward against the latest previous
	// schema.
	Full Compatibility = "FULL"
	// FullTransitive requires both Backward and Forward against every
	// previous schema.
	FullTransitive Compatibility = "FULL_TRANSITIVE"
)

// DefaultCompatibility is the mode a registry uses when none is configured.
const DefaultCompatibility = Backward

// ErrInvalidCompatibility is returned, wrapped, for a name that is not one of
// the compatibility modes (the REST API answers it with error code 42203).
var ErrInvalidCompatibility = errors.New("registry: invalid compatibility level")

// ErrInvalidSchema is returned, wrapped, by Check for a schema text that is
// not a valid Avro schema (the REST API answers it with error code 42201).
var ErrInvalidSchema = errors.New("registry: invalid schema")

// ParseCompatibility returns the mode named s. Names are matched exactly, in
// upper case as the Confluent REST API writes them ("BACKWARD",
// "FULL_TRANSITIVE", ...); anything else is an error wrapping
// ErrInvalidCompatibility.
func ParseCompatibility(s string) (Compatibility, error) {
	c := Compatibility(s)
	if !c.valid() {
		return "", fmt.Errorf("%w: %q", ErrInvalidCompatibility, s)
	}
	return c, nil
}

// String returns the mode's Confluent name.
func (c Compatibility) String() string { return string(c) }

func (c Compatibility) valid() bool {
	switch c {
	case None, Backward, BackwardTransitive, Forward, ForwardTransitive, Full, FullTransitive:
		return true
	}
	return false
}

// backward reports whether the mode needs the new schema to read old data.
func (c Compatibility) backward() bool {
	return c == Backward || c == BackwardTransitive || c == Full || c == FullTransitive
}

// forward reports whether the mode needs old schemas to read new data.
func (c Compatibility) forward() bool {
	return c == Forward || c == ForwardTransitive || c == Full || c == FullTransitive
}

func (c Compatibility) transitive() bool {
	return c == BackwardTransitive || c == ForwardTransitive || c == FullTransitive
}

// Check decides whether the Avro schema candidate may follow previous, the
// subject's existing schema texts oldest first, under mode. It returns the
// reasons it may not, as human-readable messages in the style of the
// Confluent compatibility endpoint with verbose=true; an empty result means
// compatible.
//
// Non-transitive modes check against the last previous schema only,
// transitive ones against all of them, newest first. With no previous schema
// every valid candidate is compatible, as it is in mode None.
//
// The error is non-nil only for bad input: an unknown mode (wrapping
// ErrInvalidCompatibility) or a candidate or checked previous schema that is
// not a valid Avro schema (wrapping ErrInvalidSchema). Every schema is parsed
// on its own, so names defined in one never leak into another.
func Check(mode Compatibility, candidate string, previous []string) ([]string, error) {
	if !mode.valid() {
		return nil, fmt.Errorf("%w: %q", ErrInvalidCompatibility, string(mode))
	}
	cand, err := parse(candidate)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidSchema, err)
	}
	if mode == None || len(previous) == 0 {
		return nil, nil
	}
	first := len(previous) - 1
	if mode.transitive() {
		first = 0
	}
	// A fresh checker per call: hamba's checker caches every pair it sees.
	sc := avro.NewSchemaCompatibility()
	var msgs []string
	for i := len(previous) - 1; i >= first; i-- {
		old, err := parse(previous[i])
		if err != nil {
			return nil, fmt.Errorf("%w: previous schema %d: %w", ErrInvalidSchema, i, err)
		}
		var found []string
		if mode.backward() {
			if err := sc.Compatible(cand, old); err != nil {
				found = append(found, describe("the new schema cannot read data written with the old schema", err))
			}
		}
		if mode.forward() {
			if err := sc.Compatible(old, cand); err != nil {
				found = append(found, describe("the old schema cannot read data written with the new schema", err))
			}
		}
		if len(found) > 0 {
			msgs = append(msgs, found...)
			msgs = append(msgs, fmt.Sprintf("{oldSchema: '%s'}", previous[i]))
		}
	}
	if len(msgs) > 0 {
		msgs = append(msgs, fmt.Sprintf("{compatibility: '%s'}", mode))
	}
	return msgs, nil
}

func describe(what string, err error) string {
	return fmt.Sprintf("{description:'%s: %s'}", what, strings.TrimPrefix(err.Error(), "avro: "))
}

// parse parses one schema text in isolation: with its own name cache, so a
// record name defined by another schema (or an earlier version of this one)
// is neither reused nor resolvable. Unlike avro.Parse it requires JSON, as
// Confluent's registry does.
func parse(text string) (avro.Schema, error) {
	if !json.Valid([]byte(text)) {
		return nil, errors.New("schema is not valid JSON")
	}
	return avro.ParseWithCache(text, "", &avro.SchemaCache{})
}
