package stream

import "github.com/eddy-streams/eddy/serde"

// orDefault returns s, or when s is nil the serde for T's built-in type:
// String for string, Bytes for []byte, and Kafka's number layouts for
// int64, int32, int16, float64 and float32. Other types have no default; an
// operator that needs their serde reports a build error naming itself.
func orDefault[T any](s serde.Serde[T]) serde.Serde[T] {
	if s != nil {
		return s
	}
	var zero T
	var d any
	switch any(zero).(type) {
	case string:
		d = serde.String()
	case []byte:
		d = serde.Bytes()
	case int64:
		d = serde.Int64()
	case int32:
		d = serde.Int32()
	case int16:
		d = serde.Int16()
	case float64:
		d = serde.Float64()
	case float32:
		d = serde.Float32()
	default:
		return nil
	}
	return d.(serde.Serde[T])
}
