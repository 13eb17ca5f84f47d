package serde

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

const topic = "t"

// roundTrip serializes v with s, checks the bytes against want (hex, when
// non-empty) and that deserializing them gives v back.
func roundTrip[T any](t *testing.T, s Serde[T], v T, wantHex string) {
	t.Helper()
	b, err := s.Serialize(topic, v)
	if err != nil {
		t.Fatalf("Serialize(%v): %v", v, err)
	}
	if b == nil {
		t.Fatalf("Serialize(%v) = nil, want non-nil bytes", v)
	}
	if wantHex != "" {
		want, err := hex.DecodeString(strings.ReplaceAll(wantHex, " ", ""))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, want) {
			t.Fatalf("Serialize(%v) = % x, want % x", v, b, want)
		}
	}
	got, err := s.Deserialize(topic, b)
	if err != nil {
		t.Fatalf("Deserialize(% x): %v", b, err)
	}
	if !reflect.DeepEqual(got, v) {
		t.Fatalf("round trip of %v gave %v", v, got)
	}
}

// TestKafkaLayouts checks the number serdes against the byte layouts of
// Kafka's LongSerializer, IntegerSerializer, ShortSerializer,
// DoubleSerializer and FloatSerializer.
func TestKafkaLayouts(t *testing.T) {
	for _, tc := range []struct {
		v    int64
		want string
	}{
		{0, "00 00 00 00 00 00 00 00"},
		{1, "00 00 00 00 00 00 00 01"},
		{-1, "ff ff ff ff ff ff ff ff"},
		{256, "00 00 00 00 00 00 01 00"},
		{math.MaxInt64, "7f ff ff ff ff ff ff ff"},
		{math.MinInt64, "80 00 00 00 00 00 00 00"},
	} {
		roundTrip(t, Int64(), tc.v, tc.want)
	}
	for _, tc := range []struct {
		v    int32
		want string
	}{
		{0, "00 00 00 00"},
		{1, "00 00 00 01"},
		{-1, "ff ff ff ff"},
		{0x01020304, "01 02 03 04"},
		{math.MaxInt32, "7f ff ff ff"},
		{math.MinInt32, "80 00 00 00"},
	} {
		roundTrip(t, Int32(), tc.v, tc.want)
	}
	for _, tc := range []struct {
		v    int16
		want string
	}{
		{0, "00 00"},
		{1, "00 01"},
		{-1, "ff ff"},
		{math.MaxInt16, "7f ff"},
		{math.MinInt16, "80 00"},
	} {
		roundTrip(t, Int16(), tc.v, tc.want)
	}
	for _, tc := range []struct {
		v    float64
		want string
	}{
		{0, "00 00 00 00 00 00 00 00"},
		{math.Copysign(0, -1), "80 00 00 00 00 00 00 00"},
		{1, "3f f0 00 00 00 00 00 00"},
		{-2.5, "c0 04 00 00 00 00 00 00"},
		{math.Inf(1), "7f f0 00 00 00 00 00 00"},
		{math.MaxFloat64, "7f ef ff ff ff ff ff ff"},
	} {
		roundTrip(t, Float64(), tc.v, tc.want)
	}
	for _, tc := range []struct {
		v    float32
		want string
	}{
		{0, "00 00 00 00"},
		{1, "3f 80 00 00"},
		{-2.5, "c0 20 00 00"},
		{float32(math.Inf(-1)), "ff 80 00 00"},
		{math.SmallestNonzeroFloat32, "00 00 00 01"},
	} {
		roundTrip(t, Float32(), tc.v, tc.want)
	}
}

// TestNaNBitsKept checks that NaN payloads survive, as with Java's raw bits.
func TestNaNBitsKept(t *testing.T) {
	nan64 := math.Float64frombits(0x7ff8_0000_0000_0001)
	b, _ := Float64().Serialize(topic, nan64)
	if hex.EncodeToString(b) != "7ff8000000000001" {
		t.Fatalf("Float64 NaN = %x", b)
	}
	got, err := Float64().Deserialize(topic, b)
	if err != nil || math.Float64bits(got) != 0x7ff8_0000_0000_0001 {
		t.Fatalf("Float64 NaN back = %x, %v", math.Float64bits(got), err)
	}
	nan32 := math.Float32frombits(0x7fc0_0001)
	b, _ = Float32().Serialize(topic, nan32)
	got32, err := Float32().Deserialize(topic, b)
	if err != nil || math.Float32bits(got32) != 0x7fc0_0001 {
		t.Fatalf("Float32 NaN back = %x, %v", math.Float32bits(got32), err)
	}
}

func TestBytesAndString(t *testing.T) {
	for _, v := range []string{"", "a", "héllo, wörld", "\x00\xff"} {
		roundTrip(t, String(), v, hex.EncodeToString([]byte(v)))
		roundTrip(t, Bytes(), []byte(v), hex.EncodeToString([]byte(v)))
	}
	// Like Kafka's StringDeserializer, invalid UTF-8 is not rejected.
	s, err := String().Deserialize(topic, []byte{0xff, 0xfe})
	if err != nil || s != "\xff\xfe" {
		t.Fatalf("String invalid UTF-8 = %q, %v", s, err)
	}
}

func TestBadLength(t *testing.T) {
	for name, de := range map[string]func([]byte) error{
		"int64":   func(b []byte) error { _, err := Int64().Deserialize(topic, b); return err },
		"int32":   func(b []byte) error { _, err := Int32().Deserialize(topic, b); return err },
		"int16":   func(b []byte) error { _, err := Int16().Deserialize(topic, b); return err },
		"float64": func(b []byte) error { _, err := Float64().Deserialize(topic, b); return err },
		"float32": func(b []byte) error { _, err := Float32().Deserialize(topic, b); return err },
	} {
		for _, n := range []int{0, 1, 3, 5, 7, 9, 16} {
			if (name == "int64" || name == "float64") && n == 8 {
				continue
			}
			err := de(make([]byte, n))
			if !errors.Is(err, ErrBadLength) {
				t.Errorf("%s with %d bytes: err = %v, want ErrBadLength", name, n, err)
			}
			if err != nil && !strings.Contains(err.Error(), name) {
				t.Errorf("%s error %q does not name the serde", name, err)
			}
		}
	}
}

// TestNullRule checks the package-wide tombstone rule on every serde.
func TestNullRule(t *testing.T) {
	type rec struct{ A int }
	checks := map[string]func() (any, error){
		"bytes":   func() (any, error) { return Bytes().Deserialize(topic, nil) },
		"string":  func() (any, error) { return String().Deserialize(topic, nil) },
		"int64":   func() (any, error) { return Int64().Deserialize(topic, nil) },
		"int32":   func() (any, error) { return Int32().Deserialize(topic, nil) },
		"int16":   func() (any, error) { return Int16().Deserialize(topic, nil) },
		"float64": func() (any, error) { return Float64().Deserialize(topic, nil) },
		"float32": func() (any, error) { return Float32().Deserialize(topic, nil) },
		"json":    func() (any, error) { return JSON[rec]().Deserialize(topic, nil) },
		"msgpack": func() (any, error) { return Msgpack[rec]().Deserialize(topic, nil) },
		"func": func() (any, error) {
			return Func(func(string, int) ([]byte, error) { return []byte{1}, nil },
				func(string, []byte) (int, error) { t.Error("func deserializer called with nil"); return 7, nil }).
				Deserialize(topic, nil)
		},
	}
	for name, check := range checks {
		v, err := check()
		if !errors.Is(err, ErrNull) {
			t.Errorf("%s: Deserialize(nil) err = %v, want ErrNull", name, err)
		}
		if !reflect.ValueOf(v).IsZero() {
			t.Errorf("%s: Deserialize(nil) = %v, want zero value", name, v)
		}
	}

	// Only nil values serialize to nil.
	if b, err := Bytes().Serialize(topic, nil); b != nil || err != nil {
		t.Errorf("Bytes nil = %v, %v", b, err)
	}
	if b, err := Bytes().Serialize(topic, []byte{}); b == nil || err != nil {
		t.Errorf("Bytes empty = %v, %v, want non-nil", b, err)
	}
	if b, err := String().Serialize(topic, ""); b == nil || err != nil {
		t.Errorf("String empty = %v, %v, want non-nil", b, err)
	}
	if b, err := JSON[*rec]().Serialize(topic, nil); b != nil || err != nil {
		t.Errorf("JSON nil pointer = %q, %v", b, err)
	}
	if b, err := JSON[map[string]int]().Serialize(topic, nil); b != nil || err != nil {
		t.Errorf("JSON nil map = %q, %v", b, err)
	}
	if b, err := JSON[any]().Serialize(topic, nil); b != nil || err != nil {
		t.Errorf("JSON nil interface = %q, %v", b, err)
	}
	if b, err := JSON[[]int]().Serialize(topic, []int{}); string(b) != "[]" || err != nil {
		t.Errorf("JSON empty slice = %q, %v", b, err)
	}
	if b, err := Msgpack[*rec]().Serialize(topic, nil); b != nil || err != nil {
		t.Errorf("Msgpack nil pointer = %x, %v", b, err)
	}
	if b, err := JSON[rec]().Serialize(topic, rec{}); b == nil || err != nil {
		t.Errorf("JSON zero struct = %q, %v, want non-nil", b, err)
	}
}

func TestNullable(t *testing.T) {
	s := Nullable(Int64())
	b, err := s.Serialize(topic, nil)
	if b != nil || err != nil {
		t.Fatalf("Serialize(nil) = %v, %v", b, err)
	}
	p, err := s.Deserialize(topic, nil)
	if p != nil || err != nil {
		t.Fatalf("Deserialize(nil) = %v, %v", p, err)
	}
	v := int64(-1)
	b, err = s.Serialize(topic, &v)
	if err != nil || hex.EncodeToString(b) != "ffffffffffffffff" {
		t.Fatalf("Serialize(-1) = %x, %v", b, err)
	}
	p, err = s.Deserialize(topic, b)
	if err != nil || p == nil || *p != -1 {
		t.Fatalf("Deserialize = %v, %v", p, err)
	}
	if _, err := s.Deserialize(topic, []byte{1}); !errors.Is(err, ErrBadLength) {
		t.Fatalf("short input err = %v, want ErrBadLength", err)
	}
}

func TestFunc(t *testing.T) {
	s := Func(
		func(_ string, v bool) ([]byte, error) {
			if v {
				return []byte{1}, nil
			}
			return []byte{0}, nil
		},
		func(tp string, b []byte) (bool, error) {
			if len(b) != 1 || b[0] > 1 {
				return false, errors.New("bad bool")
			}
			return b[0] == 1, nil
		})
	roundTrip(t, s, true, "01")
	roundTrip(t, s, false, "00")
	if _, err := s.Deserialize(topic, []byte{2}); err == nil {
		t.Fatal("want error for 02")
	}
}

type user struct {
	Name  string            `json:"name" msgpack:"name"`
	Age   int32             `json:"age" msgpack:"age"`
	Tags  []string          `json:"tags,omitempty" msgpack:"tags,omitempty"`
	Attrs map[string]string `json:"attrs,omitempty" msgpack:"attrs,omitempty"`
}

func TestJSON(t *testing.T) {
	roundTrip(t, JSON[user](), user{Name: "ann", Age: 41}, hex.EncodeToString([]byte(`{"name":"ann","age":41}`)))
	roundTrip(t, JSON[user](), user{Name: "bo", Tags: []string{"x"}, Attrs: map[string]string{"k": "v"}}, "")
	roundTrip(t, JSON[*user](), &user{Name: "p"}, "")
	roundTrip(t, JSON[map[string]int](), map[string]int{"a": 1}, "")
	roundTrip(t, JSON[[]int](), []int{}, "")
	roundTrip(t, JSON[string](), "", "")

	for _, bad := range []string{``, `{`, `{"name":"a"} {}`, `{"name":"a"}x`, `[1]`, `{"age":"x"}`, `{"age":1e10}`} {
		if _, err := JSON[user]().Deserialize(topic, []byte(bad)); err == nil {
			t.Errorf("JSON accepted %q", bad)
		}
	}
	// Surrounding white space is allowed.
	u, err := JSON[user]().Deserialize(topic, []byte(" {\"name\":\"a\"}\n"))
	if err != nil || u.Name != "a" {
		t.Errorf("white space: %v, %v", u, err)
	}
	if _, err := JSON[func()]().Serialize(topic, func() {}); err == nil {
		t.Error("JSON serialized a non-nil func")
	}
}

func TestMsgpack(t *testing.T) {
	roundTrip(t, Msgpack[user](), user{Name: "ann", Age: 41}, "")
	roundTrip(t, Msgpack[user](), user{Name: "bo", Tags: []string{"x"}, Attrs: map[string]string{"k": "v"}}, "")
	roundTrip(t, Msgpack[*user](), &user{Name: "p"}, "")
	roundTrip(t, Msgpack[map[string]int](), map[string]int{"a": 1}, "")
	roundTrip(t, Msgpack[int64](), int64(-5), "")
	// Positive fixint 5 is the single byte 0x05.
	roundTrip(t, Msgpack[int](), 5, "05")
	roundTrip(t, Msgpack[string](), "hi", "a2 68 69")

	good, _ := Msgpack[user]().Serialize(topic, user{Name: "a"})
	if _, err := Msgpack[user]().Deserialize(topic, append(good, 0xc0)); !errors.Is(err, ErrTrailingData) {
		t.Errorf("trailing byte: err = %v, want ErrTrailingData", err)
	}
	for _, bad := range [][]byte{{}, good[:len(good)-1], {0xc1}, {0xa5, 'a'}, {0xdd, 0xff, 0xff, 0xff, 0xff}} {
		if _, err := Msgpack[user]().Deserialize(topic, bad); err == nil {
			t.Errorf("Msgpack accepted % x", bad)
		}
	}
	// A huge declared array length with no data is an error, not a huge allocation.
	if _, err := Msgpack[[]int]().Deserialize(topic, []byte{0xdd, 0x7f, 0xff, 0xff, 0xff}); err == nil {
		t.Error("Msgpack accepted a truncated 2^31-element array")
	}
}

// TestConcurrentUse runs every serde from several goroutines; with -race it
// checks the documented concurrency contract.
func TestConcurrentUse(t *testing.T) {
	done := make(chan struct{})
	for i := 0; i < 4; i++ {
		go func() {
			defer func() { done <- struct{}{} }()
			for j := 0; j < 100; j++ {
				u := user{Name: "n", Age: int32(j)}
				b, _ := Msgpack[user]().Serialize(topic, u)
				if got, err := Msgpack[user]().Deserialize(topic, b); err != nil || got.Age != u.Age {
					t.Errorf("msgpack: %v, %v", got, err)
					return
				}
				b, _ = JSON[user]().Serialize(topic, u)
				if got, err := JSON[user]().Deserialize(topic, b); err != nil || got.Age != u.Age {
					t.Errorf("json: %v, %v", got, err)
					return
				}
			}
		}()
	}
	for i := 0; i < 4; i++ {
		<-done
	}
}

func TestMsgpackNesting(t *testing.T) {
	nest := func(depth int) []byte {
		b := bytes.Repeat([]byte{0x91}, depth) // fixarray of one element
		return append(b, 0x00)
	}
	if _, err := Msgpack[any]().Deserialize(topic, nest(100)); err != nil {
		t.Fatalf("depth 100: %v", err)
	}
	if _, err := Msgpack[any]().Deserialize(topic, nest(maxMsgpackDepth+10)); err == nil {
		t.Fatal("accepted nesting deeper than the limit")
	}
	// A large input of maximal nesting is rejected quickly, without recursion.
	if _, err := Msgpack[any]().Deserialize(topic, nest(1<<20)); err == nil {
		t.Fatal("accepted 1 Mi nesting")
	}
}

// TestScanMsgpackAgrees checks the pre-decode scan against values the
// library itself encodes, covering every msgpack code family.
func TestScanMsgpackAgrees(t *testing.T) {
	big := strings.Repeat("x", 70000)
	for _, v := range []any{
		nil, true, false, 0, 127, 128, -1, -33, 300, -300, 70000, -70000, int64(1) << 40, -(int64(1) << 40),
		uint64(math.MaxUint64), float32(1.5), 2.5, "", "short", strings.Repeat("y", 40), strings.Repeat("z", 300), big,
		[]byte{}, []byte{1, 2}, make([]byte, 300), make([]byte, 70000),
		[]any{}, []any{1, "a"}, make([]any, 20), make([]any, 70000),
		map[string]any{}, map[string]any{"a": 1}, func() map[int]int {
			m := map[int]int{}
			for i := 0; i < 20; i++ {
				m[i] = i
			}
			return m
		}(),
		time.Unix(1, 0).UTC(), time.Unix(1<<40, 5).UTC(),
	} {
		b, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		n, err := scanMsgpack(b)
		if err != nil || n != len(b) {
			t.Errorf("scan of %T (% x...) = %d, %v; want %d", v, b[:min(len(b), 8)], n, err, len(b))
		}
		for cut := 0; cut < len(b) && cut < 12; cut++ {
			if _, err := scanMsgpack(b[:cut]); err == nil {
				t.Errorf("scan accepted %T cut to %d bytes", v, cut)
			}
		}
	}
}
