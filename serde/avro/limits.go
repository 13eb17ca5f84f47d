package avro

import (
	"errors"
	"fmt"

	havro "github.com/hamba/avro/v2"
)

// ErrUnsafeSchema is wrapped by the error returned for a schema whose data
// could make the decoder allocate without bound: an array whose items
// encode to zero bytes (null, a zero-size fixed, or a record of only such
// fields). A block count costs a few bytes of input, each item none, so
// nested arrays of such items could claim gigabytes from a short record.
// Serde rejects such a reader schema, and Deserialize such a writer schema.
var ErrUnsafeSchema = errors.New("avro: schema not supported: array of zero-width items")

// checkSchema returns an error wrapping ErrUnsafeSchema if s contains an
// array of zero-width items.
func checkSchema(s havro.Schema) error {
	return walk(s, map[string]bool{})
}

// walk visits every schema reachable from s once per named type.
func walk(s havro.Schema, seen map[string]bool) error {
	if n, ok := s.(havro.NamedSchema); ok {
		if seen[n.FullName()] {
			return nil
		}
		seen[n.FullName()] = true
	}
	switch s := s.(type) {
	case *havro.RefSchema:
		return walk(s.Schema(), seen)
	case *havro.RecordSchema:
		for _, f := range s.Fields() {
			if err := walk(f.Type(), seen); err != nil {
				return err
			}
		}
	case *havro.ArraySchema:
		if zeroWidth(s.Items(), map[string]bool{}) {
			return fmt.Errorf("%w: items %s", ErrUnsafeSchema, s.Items().Type())
		}
		return walk(s.Items(), seen)
	case *havro.MapSchema: // each entry's key takes at least one byte
		return walk(s.Values(), seen)
	case *havro.UnionSchema:
		for _, t := range s.Types() {
			if err := walk(t, seen); err != nil {
				return err
			}
		}
	}
	return nil
}

// zeroWidth reports whether a value of s can encode to zero bytes. A
// record met again while being checked (recursion) counts as not zero
// width: to recurse it must go through a union or a collection, which
// take at least one byte.
func zeroWidth(s havro.Schema, inRecord map[string]bool) bool {
	switch s := s.(type) {
	case *havro.RefSchema:
		return zeroWidth(s.Schema(), inRecord)
	case *havro.NullSchema:
		return true
	case *havro.FixedSchema:
		return s.Size() == 0
	case *havro.RecordSchema:
		if inRecord[s.FullName()] {
			return false
		}
		inRecord[s.FullName()] = true
		defer delete(inRecord, s.FullName())
		for _, f := range s.Fields() {
			if !zeroWidth(f.Type(), inRecord) {
				return false
			}
		}
		return true
	}
	return false
}
