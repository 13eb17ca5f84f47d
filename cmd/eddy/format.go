package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/eddy-streams/eddy/serde"
	"github.com/eddy-streams/eddy/serde/avro"
)

// recordFormat is a compiled kcat-like --format string.
//
//	%k key    %v value   %p partition   %o offset
//	%t topic  %T timestamp (Unix ms)    %h headers (k=v,k=v)
//	%K key length   %S value length     %% a literal %
//	\n newline  \t tab  \r carriage return  \\ backslash
type recordFormat []fmtPart

type fmtPart struct {
	lit  string // literal text when verb == 0
	verb byte
}

// parseFormat compiles a --format string.
func parseFormat(s string) (recordFormat, error) {
	var (
		f   recordFormat
		lit strings.Builder
	)
	flush := func() {
		if lit.Len() > 0 {
			f = append(f, fmtPart{lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '%':
			if i+1 >= len(s) {
				return nil, fmt.Errorf("format %q: dangling %%", s)
			}
			i++
			switch v := s[i]; v {
			case '%':
				lit.WriteByte('%')
			case 'k', 'v', 'p', 'o', 't', 'T', 'h', 'K', 'S':
				flush()
				f = append(f, fmtPart{verb: v})
			default:
				return nil, fmt.Errorf("format %q: unknown verb %%%c", s, v)
			}
		case '\\':
			if i+1 >= len(s) {
				lit.WriteByte('\\')
				continue
			}
			i++
			switch e := s[i]; e {
			case 'n':
				lit.WriteByte('\n')
			case 't':
				lit.WriteByte('\t')
			case 'r':
				lit.WriteByte('\r')
			case '\\':
				lit.WriteByte('\\')
			default:
				lit.WriteByte('\\')
				lit.WriteByte(e)
			}
		default:
			lit.WriteByte(c)
		}
	}
	flush()
	return f, nil
}

// append formats r onto dst, printing key and value as they are.
func (f recordFormat) append(dst []byte, r *kgo.Record) []byte {
	if r == nil { // literal-only formats
		return f.appendKV(dst, r, nil, nil)
	}
	return f.appendKV(dst, r, r.Key, r.Value)
}

// appendKV formats r onto dst with key and value as the text of %k and %v
// (the decoded forms under --key-format / --value-format). %K and %S stay
// the lengths of the raw key and value.
func (f recordFormat) appendKV(dst []byte, r *kgo.Record, key, value []byte) []byte {
	for _, p := range f {
		switch p.verb {
		case 0:
			dst = append(dst, p.lit...)
		case 'k':
			dst = append(dst, key...)
		case 'v':
			dst = append(dst, value...)
		case 'p':
			dst = strconv.AppendInt(dst, int64(r.Partition), 10)
		case 'o':
			dst = strconv.AppendInt(dst, r.Offset, 10)
		case 't':
			dst = append(dst, r.Topic...)
		case 'T':
			dst = strconv.AppendInt(dst, r.Timestamp.UnixMilli(), 10)
		case 'K':
			dst = strconv.AppendInt(dst, int64(len(r.Key)), 10)
		case 'S':
			dst = strconv.AppendInt(dst, int64(len(r.Value)), 10)
		case 'h':
			for i, h := range r.Headers {
				if i > 0 {
					dst = append(dst, ',')
				}
				dst = append(dst, h.Key...)
				dst = append(dst, '=')
				dst = append(dst, h.Value...)
			}
		}
	}
	return dst
}

// dataFormats lists the --key-format / --value-format names, for messages.
const dataFormats = "raw, json, msgpack, avro, string, int64, int32, float64"

// decodeMarker starts the text printed in place of a key or value that
// could not be decoded.
const decodeMarker = "!decode error: "

// dataDecoder renders a record key or value as text for %k / %v. It appends
// the text for b to dst; nil b is a null (tombstone).
type dataDecoder func(dst []byte, topic string, b []byte) ([]byte, error)

// parseDataFormat returns the decoder of a --key-format / --value-format
// name, or nil for raw (bytes printed as they are). flag names the flag in
// errors; registryURL is the schema registry avro fetches schemas from.
func parseDataFormat(flag, name, registryURL string) (dataDecoder, error) {
	switch name {
	case "", "raw":
		return nil, nil
	case "json":
		return decodeJSON, nil
	case "msgpack":
		return decodeMsgpack, nil
	case "string":
		return decodeString, nil
	case "int64":
		return decodeNumber(serde.Int64(), func(dst []byte, v int64) []byte { return strconv.AppendInt(dst, v, 10) }), nil
	case "int32":
		return decodeNumber(serde.Int32(), func(dst []byte, v int32) []byte { return strconv.AppendInt(dst, int64(v), 10) }), nil
	case "float64":
		return decodeNumber(serde.Float64(), appendJSONFloat), nil
	case "avro":
		url, err := registryBaseURL(registryURL)
		if err != nil {
			return nil, fmt.Errorf("--%s avro needs the schema registry: %w", flag, err)
		}
		reg, err := avro.NewRegistryClient(url)
		if err != nil {
			return nil, fmt.Errorf("--%s avro: %w", flag, err)
		}
		return newAvroDecoder(reg).decode, nil
	}
	return nil, fmt.Errorf("--%s %q: unknown format, want one of %s", flag, name, dataFormats)
}

// appendNull appends the JSON null printed for a tombstone.
func appendNull(dst []byte) []byte { return append(dst, "null"...) }

var jsonSerde = serde.JSON[json.RawMessage]()

// decodeJSON validates that b is exactly one JSON value and appends it
// compacted onto one line.
func decodeJSON(dst []byte, topic string, b []byte) ([]byte, error) {
	if b == nil {
		return appendNull(dst), nil
	}
	raw, err := jsonSerde.Deserialize(topic, b)
	if err != nil {
		return dst, err
	}
	buf := bytes.NewBuffer(dst)
	if err := json.Compact(buf, raw); err != nil {
		return dst, fmt.Errorf("json: %w", err)
	}
	return buf.Bytes(), nil
}

// decodeString appends b as a JSON string (invalid UTF-8 replaced by
// U+FFFD, as encoding/json does).
func decodeString(dst []byte, topic string, b []byte) ([]byte, error) {
	if b == nil {
		return appendNull(dst), nil
	}
	s, err := serde.String().Deserialize(topic, b)
	if err != nil {
		return dst, err
	}
	return appendJSON(dst, s)
}

// decodeNumber returns a decoder of a fixed-width Kafka number serde that
// prints the number as JSON.
func decodeNumber[T any](s serde.Serde[T], app func([]byte, T) []byte) dataDecoder {
	return func(dst []byte, topic string, b []byte) ([]byte, error) {
		if b == nil {
			return appendNull(dst), nil
		}
		v, err := s.Deserialize(topic, b)
		if err != nil {
			return dst, err
		}
		return app(dst, v), nil
	}
}

// appendJSONFloat appends v as a JSON number; NaN and infinities, which
// JSON cannot represent, are printed as the strings "NaN", "+Inf", "-Inf".
func appendJSONFloat(dst []byte, v float64) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		return strconv.AppendQuote(dst, strconv.FormatFloat(v, 'g', -1, 64))
	}
	return append(dst, b...)
}

// appendJSON appends v encoded as JSON without HTML escaping.
func appendJSON(dst []byte, v any) ([]byte, error) {
	buf := bytes.NewBuffer(dst)
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return dst, fmt.Errorf("to json: %w", err)
	}
	out := buf.Bytes()
	return out[:len(out)-1], nil // Encode ends with a newline
}

// msgpackValue is a msgpack value decoded into generic Go values: maps
// become map[string]any with non-string keys printed by fmt's %v, binary
// becomes []byte (base64 in JSON), timestamps time.Time, the rest what
// DecodeInterface returns.
// It is decoded through [serde.Msgpack], whose pre-scan bounds memory use
// by the input size before the library allocates anything.
type msgpackValue struct{ v any }

// DecodeMsgpack implements msgpack.CustomDecoder.
func (m *msgpackValue) DecodeMsgpack(d *msgpack.Decoder) error {
	d.SetMapDecoder(decodeMsgpackMap)
	v, err := d.DecodeInterface()
	m.v = v
	return err
}

// decodeMsgpackMap decodes a map with keys of any type into map[string]any.
func decodeMsgpackMap(d *msgpack.Decoder) (any, error) {
	n, err := d.DecodeMapLen()
	if err != nil || n < 0 {
		return nil, err
	}
	m := make(map[string]any, n) // n is backed by input bytes (pre-scan)
	for range n {
		k, err := d.DecodeInterface()
		if err != nil {
			return nil, err
		}
		v, err := d.DecodeInterface()
		if err != nil {
			return nil, err
		}
		ks, ok := k.(string)
		if !ok {
			ks = fmt.Sprintf("%v", k)
		}
		m[ks] = v
	}
	return m, nil
}

var msgpackSerde = serde.Msgpack[msgpackValue]()

// decodeMsgpack decodes exactly one msgpack value and appends it as JSON.
func decodeMsgpack(dst []byte, topic string, b []byte) ([]byte, error) {
	if b == nil {
		return appendNull(dst), nil
	}
	v, err := msgpackSerde.Deserialize(topic, b)
	if err != nil {
		return dst, err
	}
	return appendJSON(dst, utcTimes(v.v))
}

// utcTimes converts the msgpack timestamps in v, which the library decodes
// in the local time zone, to UTC in place, so output does not depend on the
// machine's zone. Nesting is bounded by the msgpack pre-scan.
func utcTimes(v any) any {
	switch x := v.(type) {
	case time.Time:
		return x.UTC()
	case map[string]any:
		for k, e := range x {
			x[k] = utcTimes(e)
		}
	case []any:
		for i, e := range x {
			x[i] = utcTimes(e)
		}
	}
	return v
}

// avroDecoder decodes records in the Confluent wire format (magic byte 0,
// 4-byte big-endian schema id, Avro binary) with the schema they were
// written with, fetched from the registry by id, and prints the datum as
// JSON: records and maps as objects (keys in alphabetical order), bytes as
// base64 strings, fixed as arrays of numbers, timestamps and dates as
// RFC 3339 strings in UTC (local timestamps with their wall clock), time of
// day as a number of nanoseconds, unions as the value of the branch taken.
//
// Decoding is serde/avro's (avro.Generic), with its size limits (bytes and
// strings up to avro.DefaultMaxBytesLen, arrays up to
// avro.DefaultMaxArrayLen elements), its refusal of writer schemas with
// arrays of zero-width items, and its recovery from decoder panics.
//
// Each schema id is asked for once per run: what the registry answers,
// a schema or an error, is kept for the rest of the run (serde/avro asks
// again for an unknown id, as a pipeline should; a one-off consume should
// not flood the registry with requests for the same bad id).
type avroDecoder struct {
	serde serde.Serde[any]
}

func newAvroDecoder(reg avro.Registry) *avroDecoder {
	s, err := avro.Generic(&onceRegistry{Registry: reg, answers: map[int]onceAnswer{}})
	if err != nil {
		panic(err) // only for a nil registry
	}
	return &avroDecoder{serde: s}
}

// decode is the avro dataDecoder.
func (d *avroDecoder) decode(dst []byte, topic string, b []byte) ([]byte, error) {
	if b == nil {
		return appendNull(dst), nil
	}
	v, err := d.serde.Deserialize(topic, b)
	if err != nil {
		return dst, err
	}
	return appendJSON(dst, wallClockUTC(v))
}

// onceRegistry asks its Registry for each schema id once and keeps the
// answer, schema or error.
type onceRegistry struct {
	avro.Registry
	mu      sync.Mutex
	answers map[int]onceAnswer
}

type onceAnswer struct {
	text string
	err  error
}

func (r *onceRegistry) SchemaByID(ctx context.Context, id int) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	a, ok := r.answers[id]
	if !ok {
		a.text, a.err = r.Registry.SchemaByID(ctx, id)
		r.answers[id] = a
	}
	return a.text, a.err
}

// wallClockUTC rewrites, in place, the times in v that hamba decoded in the
// local time zone (local-timestamp-millis and -micros, whose wall clock is
// the value) to the same wall clock in UTC, so output does not depend on
// the machine's zone. The other timestamps and dates are in UTC already.
// Nesting is bounded by the record's size.
func wallClockUTC(v any) any {
	switch x := v.(type) {
	case time.Time:
		if x.Location() != time.UTC {
			return time.Date(x.Year(), x.Month(), x.Day(), x.Hour(), x.Minute(), x.Second(), x.Nanosecond(), time.UTC)
		}
	case map[string]any:
		for k, e := range x {
			x[k] = wallClockUTC(e)
		}
	case []any:
		for i, e := range x {
			x[i] = wallClockUTC(e)
		}
	}
	return v
}
