package avro

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/eddy-streams/eddy/serde"
)

const userV1 = `{"type":"record","name":"User","namespace":"com.example","fields":[
	{"name":"a","type":"string"},
	{"name":"b","type":"long"}]}`

const userV2 = `{"type":"record","name":"User","namespace":"com.example","fields":[
	{"name":"a","type":"string"},
	{"name":"b","type":"long"},
	{"name":"c","type":"string","default":"none"}]}`

// userV3 drops b and changes nothing else: readers with it ignore b.
const userV3 = `{"type":"record","name":"User","namespace":"com.example","fields":[
	{"name":"a","type":"string"}]}`

type userV1T struct {
	A string `avro:"a"`
	B int64  `avro:"b"`
}

type userV2T struct {
	A string `avro:"a"`
	B int64  `avro:"b"`
	C string `avro:"c"`
}

type userV3T struct {
	A string `avro:"a"`
}

func mustSerde[T any](t testing.TB, reg Registry, schema string, opts ...Option) serde.Serde[T] {
	t.Helper()
	s, err := Serde[T](reg, schema, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRoundTripAndWireFormat(t *testing.T) {
	fake := newFakeRegistry()
	reg := fake.serve(t)
	// Take id 1 so the serde's schema gets id 2: the id bytes are checked.
	if _, err := fake.Register(context.Background(), "other", `"string"`); err != nil {
		t.Fatal(err)
	}
	s := mustSerde[userV1T](t, reg, userV1, AutoRegister())
	in := userV1T{A: "ann", B: -3}
	b, err := s.Serialize("users", in)
	if err != nil {
		t.Fatal(err)
	}
	// magic 0, id 2 big-endian, string "ann" (len 3 zigzag 6), long -3 (zigzag 5).
	want := []byte{0, 0, 0, 0, 2, 6, 'a', 'n', 'n', 5}
	if !bytes.Equal(b, want) {
		t.Fatalf("wire bytes % x, want % x", b, want)
	}
	out, err := s.Deserialize("users", b)
	if err != nil {
		t.Fatal(err)
	}
	if out != in {
		t.Fatalf("got %+v, want %+v", out, in)
	}
	if got := fake.subjects["users-value"]; len(got) != 1 || got[0] != 2 {
		t.Fatalf("subject users-value has ids %v, want [2]", got)
	}
}

func TestIDCache(t *testing.T) {
	fake := newFakeRegistry()
	reg := fake.serve(t)
	if _, err := fake.Register(context.Background(), "users-value", userV1); err != nil {
		t.Fatal(err)
	}
	base := fake.count("lookup")
	w := mustSerde[userV1T](t, reg, userV1) // Lookup, no auto-register
	for i := range 100 {
		if _, err := w.Serialize("users", userV1T{A: "x", B: int64(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if n := fake.count("lookup") - base; n != 1 {
		t.Fatalf("%d lookups for 100 records, want 1", n)
	}
	if n := fake.count("register"); n != 1 { // the test's own
		t.Fatalf("%d registrations, want 1", n)
	}
	b, _ := w.Serialize("users", userV1T{A: "x"})
	r := mustSerde[userV1T](t, reg, userV1) // a separate consumer
	for range 100 {
		if _, err := r.Deserialize("users", b); err != nil {
			t.Fatal(err)
		}
	}
	if n := fake.count("byid"); n != 1 {
		t.Fatalf("%d schema fetches for 100 records, want 1", n)
	}
}

func TestSerializeUnregistered(t *testing.T) {
	s := mustSerde[userV1T](t, newFakeRegistry().serve(t), userV1)
	_, err := s.Serialize("users", userV1T{})
	if !errors.Is(err, ErrUnknownSchema) {
		t.Fatalf("err = %v, want ErrUnknownSchema", err)
	}
}

func TestEvolution(t *testing.T) {
	reg := newFakeRegistry().serve(t)
	w1 := mustSerde[userV1T](t, reg, userV1, AutoRegister())
	w2 := mustSerde[userV2T](t, reg, userV2, AutoRegister())
	r2 := mustSerde[userV2T](t, reg, userV2)
	r3 := mustSerde[userV3T](t, reg, userV3)
	r1 := mustSerde[userV1T](t, reg, userV1)

	old, err := w1.Serialize("users", userV1T{A: "ann", B: 7})
	if err != nil {
		t.Fatal(err)
	}
	neu, err := w2.Serialize("users", userV2T{A: "bob", B: 8, C: "new"})
	if err != nil {
		t.Fatal(err)
	}
	// Newer reader, older data: c takes its default.
	if got, err := r2.Deserialize("users", old); err != nil || got != (userV2T{A: "ann", B: 7, C: "none"}) {
		t.Fatalf("v2 reader of v1 data: %+v, %v", got, err)
	}
	// Older reader, newer data: c is skipped.
	if got, err := r1.Deserialize("users", neu); err != nil || got != (userV1T{A: "bob", B: 8}) {
		t.Fatalf("v1 reader of v2 data: %+v, %v", got, err)
	}
	// Reader without a field the writer has: b is skipped.
	if got, err := r3.Deserialize("users", old); err != nil || got != (userV3T{A: "ann"}) {
		t.Fatalf("v3 reader of v1 data: %+v, %v", got, err)
	}
	// Incompatible: a reader field with no default that the writer lacks.
	const noDefault = `{"type":"record","name":"User","namespace":"com.example","fields":[
		{"name":"a","type":"string"},{"name":"z","type":"int"}]}`
	type zT struct {
		A string `avro:"a"`
		Z int32  `avro:"z"`
	}
	rz := mustSerde[zT](t, reg, noDefault)
	for range 2 { // the second time from the cache
		if _, err := rz.Deserialize("users", old); !errors.Is(err, ErrIncompatible) {
			t.Fatalf("err = %v, want ErrIncompatible", err)
		}
	}
}

func TestBadInput(t *testing.T) {
	fake := newFakeRegistry()
	reg := fake.serve(t)
	const withBytes = `{"type":"record","name":"B","fields":[
		{"name":"data","type":"bytes"},
		{"name":"list","type":{"type":"array","items":"long"}}]}`
	type bT struct {
		Data []byte  `avro:"data"`
		List []int64 `avro:"list"`
	}
	s := mustSerde[bT](t, reg, withBytes, AutoRegister(), MaxBytesLen(16), MaxArrayLen(10))
	good, err := s.Serialize("t", bT{Data: []byte("hi"), List: []int64{1, 2}})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Deserialize("t", good); err != nil || string(got.Data) != "hi" || len(got.List) != 2 {
		t.Fatalf("good record: %+v, %v", got, err)
	}
	id := good[1:5]
	hdr := append([]byte{0}, id...)
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"nil", nil, serde.ErrNull},
		{"empty", []byte{}, ErrTruncated},
		{"short header", []byte{0, 0, 0}, ErrTruncated},
		{"bad magic", cat([]byte{1}, id, good[5:]), ErrBadMagic},
		{"unknown id", cat([]byte{0, 0, 0, 0x30, 0x39}, good[5:]), ErrUnknownSchema},
		{"header only", hdr, ErrTruncated},
		{"truncated bytes", cat(hdr, []byte{8, 'a'}), ErrTruncated},
		{"truncated array", cat(hdr, []byte{0, 4}), ErrTruncated},
		{"oversized bytes length", cat(hdr, []byte{0xfe, 0xff, 0xff, 0xff, 0x0f}), ErrTooLarge},
		{"bytes over limit", cat(hdr, []byte{34}, bytes.Repeat([]byte{'x'}, 17), []byte{0}), ErrTooLarge},
		{"negative bytes length", cat(hdr, []byte{1}), nil},
		{"oversized array count", cat(hdr, []byte{0, 0xfe, 0xff, 0xff, 0xff, 0x0f}), ErrTooLarge},
		{"array over limit", cat(hdr, []byte{0, 22}, bytes.Repeat([]byte{2}, 11), []byte{0}), ErrTooLarge},
		{"trailing data", cat(good, []byte{0}), serde.ErrTrailingData},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Deserialize("t", tt.in)
			if err == nil {
				t.Fatalf("no error, got %+v", got)
			}
			t.Log(err)
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if got.Data != nil || got.List != nil {
				t.Fatalf("non-zero value %+v with error", got)
			}
			if !strings.Contains(err.Error(), `topic "t"`) {
				t.Fatalf("error %q does not name the topic", err)
			}
		})
	}
}

func TestSubjects(t *testing.T) {
	tests := []struct {
		name string
		opts []Option
		want string
	}{
		{"topic value", nil, "orders-value"},
		{"topic key", []Option{IsKey()}, "orders-key"},
		{"record", []Option{SubjectStrategy(RecordName)}, "com.example.User"},
		{"topic record", []Option{SubjectStrategy(TopicRecordName)}, "orders-com.example.User"},
		{"topic record key", []Option{SubjectStrategy(TopicRecordName), IsKey()}, "orders-com.example.User"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFakeRegistry()
			s := mustSerde[userV1T](t, fake.serve(t), userV1, append(tt.opts, AutoRegister())...)
			if _, err := s.Serialize("orders", userV1T{}); err != nil {
				t.Fatal(err)
			}
			if len(fake.subjects) != 1 || len(fake.subjects[tt.want]) != 1 {
				t.Fatalf("subjects %v, want only %q", fake.subjects, tt.want)
			}
		})
	}
	if _, err := Serde[string](newFakeRegistry(), `"string"`, SubjectStrategy(RecordName)); err == nil {
		t.Fatal("RecordName with an unnamed schema: no error")
	}
}

func TestInvalidSchema(t *testing.T) {
	if _, err := Serde[userV1T](newFakeRegistry(), `{"type":"record"}`); err == nil {
		t.Fatal("no error for an invalid schema")
	}
	if _, err := Serde[userV1T](nil, userV1); err == nil {
		t.Fatal("no error for a nil registry")
	}
}

func TestNullableTombstone(t *testing.T) {
	s := serde.Nullable(mustSerde[userV1T](t, newFakeRegistry(), userV1, AutoRegister()))
	if b, err := s.Serialize("t", nil); b != nil || err != nil {
		t.Fatalf("nil: %v, %v", b, err)
	}
	if v, err := s.Deserialize("t", nil); v != nil || err != nil {
		t.Fatalf("nil: %v, %v", v, err)
	}
}

func TestUnsafeSchema(t *testing.T) {
	unsafe := []string{
		`{"type":"array","items":"null"}`,
		`{"type":"record","name":"R","fields":[{"name":"l","type":{"type":"array","items":{"type":"record","name":"E","fields":[{"name":"n","type":"null"},{"name":"f","type":{"type":"fixed","name":"F","size":0}}]}}}]}`,
		`{"type":"map","values":{"type":"array","items":{"type":"record","name":"E","fields":[]}}}`,
	}
	for _, sch := range unsafe {
		if _, err := Serde[any](newFakeRegistry(), sch); !errors.Is(err, ErrUnsafeSchema) {
			t.Errorf("%s: err = %v, want ErrUnsafeSchema", sch, err)
		}
	}
	safe := []string{
		`{"type":"array","items":{"type":"array","items":"long"}}`,
		`{"type":"array","items":["null","long"]}`,
		`{"type":"record","name":"L","fields":[{"name":"next","type":["null","L"]},{"name":"xs","type":{"type":"array","items":"L"}}]}`,
	}
	for _, sch := range safe {
		if _, err := Serde[any](newFakeRegistry(), sch); err != nil {
			t.Errorf("%s: %v", sch, err)
		}
	}
	// A writer schema with such an array is refused when a record uses it.
	fake := newFakeRegistry()
	const w = `{"type":"record","name":"R","fields":[{"name":"l","type":{"type":"array","items":"null"}}]}`
	const r = `{"type":"record","name":"R","fields":[]}`
	id, _ := fake.Register(context.Background(), "t-value", w)
	s := mustSerde[struct{}](t, fake, r)
	if _, err := s.Deserialize("t", []byte{0, 0, 0, 0, byte(id), 0}); !errors.Is(err, ErrUnsafeSchema) {
		t.Fatalf("err = %v, want ErrUnsafeSchema", err)
	}
}

// TestOversizedNoAllocation checks that forged lengths beyond the limits
// are refused before their memory is allocated.
func TestOversizedNoAllocation(t *testing.T) {
	fake := newFakeRegistry()
	s := mustSerde[fuzzT](t, fake, fuzzV1, AutoRegister())
	if _, err := s.Serialize("t", fuzzT{}); err != nil { // registers id 1
		t.Fatal(err)
	}
	forged := [][]byte{
		{0, 0, 0, 0, 1, 2, 0xfe, 0xff, 0xff, 0xff, 0x0f},          // name of 2^31-1 bytes
		{0, 0, 0, 0, 1, 2, 0, 0, 0xfe, 0xff, 0xff, 0xff, 0x0f},    // 2^31-1 tags
		{0, 0, 0, 0, 1, 2, 0, 0xfe, 0xff, 0x7f, 0, 0, 0, 0, 0, 0}, // data of 1 MiB - 1 claimed, 6 present
	}
	for _, b := range forged {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		const n = 20
		for range n {
			if _, err := s.Deserialize("t", b); err == nil {
				t.Fatalf("% x: no error", b)
			}
		}
		runtime.ReadMemStats(&after)
		// The last case may allocate its claimed MiB: the limit, not more.
		if per := (after.TotalAlloc - before.TotalAlloc) / n; per > DefaultMaxBytesLen+64<<10 {
			t.Fatalf("% x: %d bytes allocated per record", b, per)
		}
	}
}

// TestNonRecordTypes round-trips values that are not structs: primitives,
// a map for a record, an array, and any. hamba refuses pointers to them,
// so Serialize must hand them over by value.
func TestNonRecordTypes(t *testing.T) {
	reg := newFakeRegistry().serve(t)
	roundTrip := func(name string, check func() error) {
		t.Helper()
		if err := check(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	roundTrip("string", func() error { return rt(t, reg, `"string"`, "ann") })
	roundTrip("long", func() error { return rt(t, reg, `"long"`, int64(-42)) })
	roundTrip("double", func() error { return rt(t, reg, `"double"`, 2.5) })
	roundTrip("bytes", func() error { return rt(t, reg, `"bytes"`, []byte{1, 2, 3}) })
	roundTrip("array", func() error { return rt(t, reg, `{"type":"array","items":"int"}`, []int32{1, 2}) })
	roundTrip("map as record", func() error {
		return rt(t, reg, userV1, map[string]any{"a": "x", "b": int64(3)})
	})
	roundTrip("any string", func() error { return rt[any](t, reg, `"string"`, "y") })
}

// rt serializes v with a serde of schema (auto-registered under topic
// "nr-<schema>") and checks that it deserializes to v.
func rt[T any](t *testing.T, reg Registry, schema string, v T) error {
	t.Helper()
	s, err := Serde[T](reg, schema, AutoRegister())
	if err != nil {
		return err
	}
	topic := "nr-" + strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' {
			return r
		}
		return -1
	}, schema)
	b, err := s.Serialize(topic, v)
	if err != nil {
		return err
	}
	got, err := s.Deserialize(topic, b)
	if err != nil {
		return err
	}
	if !reflect.DeepEqual(got, v) {
		return fmt.Errorf("got %#v, want %#v", got, v)
	}
	return nil
}

// TestGeneric decodes records of two versions, each with the schema it was
// written with, into maps; the limits and error kinds are Serde's, and
// Serialize is refused.
func TestGeneric(t *testing.T) {
	fake := newFakeRegistry()
	reg := fake.serve(t)
	b1, err := mustSerde[userV1T](t, reg, userV1, AutoRegister()).Serialize("users", userV1T{A: "ann", B: 7})
	if err != nil {
		t.Fatal(err)
	}
	b2, err := mustSerde[userV2T](t, reg, userV2, AutoRegister()).Serialize("users", userV2T{A: "bob", B: 8, C: "x"})
	if err != nil {
		t.Fatal(err)
	}
	g, err := Generic(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		in   []byte
		want map[string]any
	}{
		{b1, map[string]any{"a": "ann", "b": int64(7)}},
		{b2, map[string]any{"a": "bob", "b": int64(8), "c": "x"}}, // not resolved to v1: as written
	} {
		v, err := g.Deserialize("users", c.in)
		if err != nil || !reflect.DeepEqual(v, any(c.want)) {
			t.Errorf("Deserialize: %#v, %v; want %#v", v, err, c.want)
		}
	}
	if _, err := g.Serialize("users", map[string]any{"a": "x"}); err == nil {
		t.Error("Serialize succeeded without a schema")
	}

	small, err := Generic(reg, MaxBytesLen(2))
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		in   []byte
		want error
	}{
		"too long":   {b1, ErrTooLarge},
		"bad magic":  {append([]byte{1}, b1[1:]...), ErrBadMagic},
		"truncated":  {b1[:len(b1)-1], ErrTruncated},
		"unknown id": {append([]byte{0, 0, 0, 0x30, 0x39}, b1[5:]...), ErrUnknownSchema},
		"null":       {nil, serde.ErrNull},
	} {
		s := g
		if name == "too long" {
			s = small
		}
		if _, err := s.Deserialize("users", c.in); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
	unsafeID, err := fake.Register(context.Background(), "zero", `{"type":"array","items":"null"}`)
	if err != nil {
		t.Fatal(err)
	}
	in := []byte{0, 0, 0, 0, byte(unsafeID), 2, 0}
	if _, err := g.Deserialize("zero", in); !errors.Is(err, ErrUnsafeSchema) {
		t.Errorf("zero-width array schema: %v, want ErrUnsafeSchema", err)
	}
}
