package avro

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"sync"
	"time"

	havro "github.com/hamba/avro/v2"

	"github.com/eddy-streams/eddy/serde"
)

// magic is the first byte of every record in the Confluent wire format.
const magic = 0

// headerLen is the length of the wire-format header: magic byte and id.
const headerLen = 5

// Default decoding limits; see [MaxBytesLen] and [MaxArrayLen].
const (
	DefaultMaxBytesLen = 1 << 20 // 1 MiB per bytes or string value
	DefaultMaxArrayLen = 1 << 16 // 65536 elements per array
)

// maxPooledBuffer is the largest encode buffer kept for reuse.
const maxPooledBuffer = 64 << 10

// DefaultTimeout bounds each registry request the serde makes.
const DefaultTimeout = 10 * time.Second

// ErrBadMagic is wrapped by the error Deserialize returns when a record's
// first byte is not the Confluent wire format's magic byte 0.
var ErrBadMagic = errors.New("avro: bad magic byte (not Confluent wire format)")

// ErrUnknownSchema is wrapped by the error Deserialize returns when the
// registry does not know a record's schema id, and by the error Serialize
// returns when the serde's schema is not registered under the subject
// (and auto-registration is off). [Registry] implementations wrap it for
// not-found answers.
var ErrUnknownSchema = errors.New("avro: unknown schema")

// ErrTruncated is wrapped by the error Deserialize returns when a record is
// shorter than the 5-byte header or its Avro data ends early.
var ErrTruncated = errors.New("avro: truncated data")

// ErrTooLarge is wrapped by the error Deserialize returns when a bytes or
// string value, or an array, is longer than the serde's limits allow.
var ErrTooLarge = errors.New("avro: value exceeds size limit")

// ErrIncompatible is wrapped by the error Deserialize returns when the
// schema a record was written with cannot be resolved against the reader's
// schema (for example a field was removed without a default on the reader
// side, or a type changed incompatibly).
var ErrIncompatible = errors.New("avro: writer schema incompatible with reader schema")

// Strategy chooses the subject a schema is registered and looked up under
// when serializing, as Confluent's subject name strategies do.
type Strategy int

const (
	// TopicName uses "<topic>-value", or "<topic>-key" with [IsKey]. It is
	// the default and Confluent's default.
	TopicName Strategy = iota
	// RecordName uses the schema's full name, such as "com.example.User",
	// so one subject serves every topic carrying that record.
	RecordName
	// TopicRecordName uses "<topic>-<full name>", so one topic can carry
	// several record types, each evolving on its own.
	TopicRecordName
)

// String returns the strategy's Confluent-style name.
func (s Strategy) String() string {
	switch s {
	case TopicName:
		return "TopicName"
	case RecordName:
		return "RecordName"
	case TopicRecordName:
		return "TopicRecordName"
	}
	return fmt.Sprintf("Strategy(%d)", int(s))
}

// Option configures a serde built by [Serde].
type Option func(*options)

type options struct {
	strategy     Strategy
	isKey        bool
	autoRegister bool
	maxBytes     int
	maxArray     int
	timeout      time.Duration
}

// SubjectStrategy sets how the subject is named (default [TopicName]).
func SubjectStrategy(s Strategy) Option { return func(o *options) { o.strategy = s } }

// IsKey marks the serde as one for record keys: with [TopicName] the
// subject is "<topic>-key" instead of "<topic>-value".
func IsKey() Option { return func(o *options) { o.isKey = true } }

// AutoRegister makes Serialize register the serde's schema under the
// subject (Registry.Register) instead of requiring it to be registered
// already (Registry.Lookup). Off by default, as producers in governed
// pipelines usually should not create schemas.
func AutoRegister() Option { return func(o *options) { o.autoRegister = true } }

// MaxBytesLen limits the length of each bytes or string value Deserialize
// accepts (default [DefaultMaxBytesLen]); n <= 0 keeps the default.
func MaxBytesLen(n int) Option { return func(o *options) { o.maxBytes = n } }

// MaxArrayLen limits the number of elements of each array Deserialize
// accepts (default [DefaultMaxArrayLen]); n <= 0 keeps the default.
func MaxArrayLen(n int) Option { return func(o *options) { o.maxArray = n } }

// Timeout bounds each registry request (default [DefaultTimeout]); d <= 0
// keeps the default. Requests happen only on a cache miss.
func Timeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// avroSerde is the Serde built by Serde.
type avroSerde[T any] struct {
	reg    Registry
	text   string       // the reader/writer schema as given
	schema havro.Schema // text, parsed; nil for Generic
	name   string       // full name of a named schema, else ""
	api    havro.API
	opts   options
	// byPointer: Serialize hands hamba &v (structs) rather than v.
	byPointer bool

	ids     sync.Map  // topic -> int (schema id to write with)
	readers sync.Map  // writer schema id -> *resolved
	pool    sync.Pool // *havro.Reader
	writers sync.Pool // *havro.Writer
}

// resolved is what Deserialize needs for one writer schema id: the schema
// to decode with, or the permanent error that id gives.
type resolved struct {
	schema havro.Schema
	err    error
}

// Serde returns a serde for T in the Confluent wire format: magic byte 0,
// the schema id as 4 big-endian bytes, then the Avro binary encoding.
//
// schema is the Avro schema T is written with and read into; T maps to it
// as github.com/hamba/avro/v2 maps Go values (struct fields by the avro
// tag). It is parsed here, and an error is returned if it is invalid or
// contains an array of zero-width items ([ErrUnsafeSchema]).
//
// Serialize writes with schema, under the id the registry gives for it in
// the subject the [Strategy] names (looked up, or registered with
// [AutoRegister]); the id is cached per topic, so the registry is asked
// once per topic, not per record. A registry error is not cached: the next
// record asks again.
//
// Deserialize fetches the schema a record was written with by its id
// (cached per id, together with a parse or compatibility failure, since ids
// are immutable; an unknown id or registry error is not cached, so each
// such record costs a registry request) and resolves it against schema, so records written with
// an older or newer compatible schema decode into T. It follows the serde
// package's null rule: nil input yields T's zero value and an error wrapping
// [serde.ErrNull]. Serialize never returns nil, so to write tombstones wrap
// the serde with [serde.Nullable].
func Serde[T any](reg Registry, schema string, opts ...Option) (serde.Serde[T], error) {
	if reg == nil {
		return nil, errors.New("avro: nil registry")
	}
	sch, err := parse(schema)
	if err != nil {
		return nil, err
	}
	if err := checkSchema(sch); err != nil {
		return nil, err
	}
	s := newSerde[T](reg, opts)
	s.text, s.schema = schema, sch
	// hamba encodes a struct from a pointer without copying it into an
	// interface, but refuses pointers to other kinds (strings, numbers,
	// maps, slices): those go by value.
	if t := reflect.TypeFor[T](); t.Kind() == reflect.Struct {
		s.byPointer = true
	}
	if n, ok := sch.(havro.NamedSchema); ok {
		s.name = n.FullName()
	}
	switch s.opts.strategy {
	case TopicName:
	case RecordName, TopicRecordName:
		if s.name == "" {
			return nil, fmt.Errorf("avro: subject strategy %v needs a named schema (record, enum or fixed), got %s", s.opts.strategy, sch.Type())
		}
	default:
		return nil, fmt.Errorf("avro: unknown subject strategy %v", s.opts.strategy)
	}
	return s, nil
}

// Generic returns a serde that decodes each record with the schema it was
// written with, fetched by the record's id, and no reader schema: the value
// is what hamba/avro decodes into an any (map[string]any for records and
// maps, []any for arrays, the branch's value for unions, time.Time for
// timestamps and dates, and so on). It is for tools that show or forward
// records of any schema, such as `eddy consume --value-format avro`.
//
// Decoding has the limits, the schema checks and the error kinds of
// [Serde]'s Deserialize; of opts only the limits and [Timeout] apply.
// Serialize always fails: there is no schema to write with.
func Generic(reg Registry, opts ...Option) (serde.Serde[any], error) {
	if reg == nil {
		return nil, errors.New("avro: nil registry")
	}
	return newSerde[any](reg, opts), nil
}

// newSerde returns a serde with opts applied (defaults for what they leave
// unset) and no schema of its own.
func newSerde[T any](reg Registry, opts []Option) *avroSerde[T] {
	o := options{maxBytes: DefaultMaxBytesLen, maxArray: DefaultMaxArrayLen, timeout: DefaultTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	if o.maxBytes <= 0 {
		o.maxBytes = DefaultMaxBytesLen
	}
	if o.maxArray <= 0 {
		o.maxArray = DefaultMaxArrayLen
	}
	if o.timeout <= 0 {
		o.timeout = DefaultTimeout
	}
	s := &avroSerde[T]{reg: reg, opts: o}
	s.api = havro.Config{MaxByteSliceSize: o.maxBytes, MaxSliceAllocSize: o.maxArray}.Freeze()
	s.pool.New = func() any { return havro.NewReader(nil, 0, havro.WithReaderConfig(s.api)) }
	s.writers.New = func() any { return havro.NewWriter(nil, 256, havro.WithWriterConfig(s.api)) }
	return s
}

// parse parses schema with a private name cache, so that two versions of
// a record with the same name (reader and writer) never overwrite each
// other as they would in hamba's global cache.
func parse(schema string) (havro.Schema, error) {
	sch, err := havro.ParseWithCache(schema, "", &havro.SchemaCache{})
	if err != nil {
		return nil, fmt.Errorf("avro: invalid schema: %w", err)
	}
	return sch, nil
}

// subject returns the subject the serde's strategy names for topic.
func (s *avroSerde[T]) subject(topic string) string {
	switch s.opts.strategy {
	case RecordName:
		return s.name
	case TopicRecordName:
		return topic + "-" + s.name
	}
	if s.opts.isKey {
		return topic + "-key"
	}
	return topic + "-value"
}

// id returns the schema id to write to topic with, asking the registry on
// the first use of each topic only.
func (s *avroSerde[T]) id(topic string) (int, error) {
	if id, ok := s.ids.Load(topic); ok {
		return id.(int), nil
	}
	subject := s.subject(topic)
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.timeout)
	defer cancel()
	var id int
	var err error
	if s.opts.autoRegister {
		id, err = s.reg.Register(ctx, subject, s.text)
	} else {
		id, err = s.reg.Lookup(ctx, subject, s.text)
	}
	if err != nil {
		return 0, err
	}
	if id < 0 || uint64(id) > 1<<32-1 {
		return 0, fmt.Errorf("avro: registry gave schema id %d, outside the wire format's 32 bits", id)
	}
	s.ids.Store(topic, id)
	// The serde's own schema decodes as itself, with no resolution.
	s.readers.LoadOrStore(id, &resolved{schema: s.schema})
	return id, nil
}

// Serialize encodes v with the serde's schema in the Confluent wire format.
func (s *avroSerde[T]) Serialize(topic string, v T) ([]byte, error) {
	if s.schema == nil {
		return nil, fmt.Errorf("avro serializer, topic %q: a Generic serde has no schema to write with", topic)
	}
	id, err := s.id(topic)
	if err != nil {
		return nil, fmt.Errorf("avro serializer, topic %q: %w", topic, err)
	}
	w := s.writers.Get().(*havro.Writer)
	defer func() {
		if cap(w.Buffer()) <= maxPooledBuffer {
			s.writers.Put(w)
		}
	}()
	w.Reset(nil)
	w.Error = nil
	var hdr [headerLen]byte
	hdr[0] = magic
	binary.BigEndian.PutUint32(hdr[1:], uint32(id))
	_, _ = w.Write(hdr[:])
	if s.byPointer {
		w.WriteVal(s.schema, &v)
	} else {
		w.WriteVal(s.schema, v)
	}
	if w.Error != nil {
		return nil, fmt.Errorf("avro serializer, topic %q: %w", topic, w.Error)
	}
	return bytes.Clone(w.Buffer()), nil
}

// reader returns the schema to decode records written with schema id,
// fetching and resolving it on first use.
func (s *avroSerde[T]) reader(id int) (havro.Schema, error) {
	if r, ok := s.readers.Load(id); ok {
		r := r.(*resolved)
		return r.schema, r.err
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.timeout)
	defer cancel()
	text, err := s.reg.SchemaByID(ctx, id)
	if err != nil {
		// Not cached: the registry may be down, or the id may yet appear.
		return nil, fmt.Errorf("schema id %d: %w", id, err)
	}
	r := &resolved{}
	if writer, err := parse(text); err != nil {
		r.err = fmt.Errorf("schema id %d: %w", id, err)
	} else if err := checkSchema(writer); err != nil {
		r.err = fmt.Errorf("schema id %d: %w", id, err)
	} else if s.schema == nil {
		r.schema = writer // Generic: decode as written
	} else if writer.Fingerprint() == s.schema.Fingerprint() {
		r.schema = s.schema
	} else if r.schema, err = havro.NewSchemaCompatibility().Resolve(s.schema, writer); err != nil {
		r.schema, r.err = nil, fmt.Errorf("schema id %d: %w: %w", id, ErrIncompatible, err)
	}
	// Ids are immutable in a registry, so the outcome is cached for good.
	got, _ := s.readers.LoadOrStore(id, r)
	r = got.(*resolved)
	return r.schema, r.err
}

// Deserialize decodes a Confluent wire-format record into T.
func (s *avroSerde[T]) Deserialize(topic string, b []byte) (v T, err error) {
	if b == nil {
		return v, fmt.Errorf("avro deserializer, topic %q: %w", topic, serde.ErrNull)
	}
	if len(b) < headerLen {
		return v, fmt.Errorf("avro deserializer, topic %q: %d bytes, need a %d-byte header: %w", topic, len(b), headerLen, ErrTruncated)
	}
	if b[0] != magic {
		return v, fmt.Errorf("avro deserializer, topic %q: first byte %#x: %w", topic, b[0], ErrBadMagic)
	}
	id := int(binary.BigEndian.Uint32(b[1:headerLen]))
	schema, err := s.reader(id)
	if err != nil {
		return v, fmt.Errorf("avro deserializer, topic %q: %w", topic, err)
	}
	if err := s.decode(schema, b[headerLen:], &v); err != nil {
		var zero T
		return zero, fmt.Errorf("avro deserializer, topic %q, schema id %d: %w", topic, id, err)
	}
	return v, nil
}

// decode decodes exactly one value of schema from data into v, and turns
// the decoder's failures, including a panic, into errors.
func (s *avroSerde[T]) decode(schema havro.Schema, data []byte, v *T) (err error) {
	r := s.pool.Get().(*havro.Reader)
	r.Reset(data)
	r.Error = nil
	defer func() {
		if p := recover(); p != nil {
			// Do not return a reader in an unknown state to the pool.
			err = fmt.Errorf("avro: malformed data: decoder panic: %v", p)
			return
		}
		r.Reset(nil)
		s.pool.Put(r)
	}()
	r.ReadVal(schema, v)
	if err := r.Error; err != nil {
		return classify(err)
	}
	// Peek at the end of data sets io.EOF; a clean Peek means bytes remain.
	r.Peek()
	if r.Error == nil {
		return fmt.Errorf("avro: %w", serde.ErrTrailingData)
	}
	return nil
}

// classify wraps a decoder error with the package's sentinel for its kind.
func classify(err error) error {
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: %w", ErrTruncated, err)
	case strings.Contains(err.Error(), "MaxByteSliceSize"), strings.Contains(err.Error(), "MaxSliceAllocSize"):
		return fmt.Errorf("%w: %w", ErrTooLarge, err)
	}
	return err
}
