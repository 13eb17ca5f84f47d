package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/eddy-streams/eddy/serde"
)

// produceRecords writes recs, in order, to partition 0 of a new topic and
// returns the topic.
func produceRecords(t *testing.T, recs ...*kgo.Record) string {
	t.Helper()
	topic := newTopic(t)
	mustRun(t, "", "topic", "create", topic, "-p", "1")
	cl, err := kgo.NewClient(kgo.SeedBrokers(testBrokers), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, r := range recs {
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	return topic
}

func mustSerialize[T any](t *testing.T, s serde.Serde[T], v T) []byte {
	t.Helper()
	b, err := s.Serialize("", v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// msgpackSample is {1: "one", "bin": bin(01 02 03), "arr": [true, nil, {2.5: "x"}]}.
func msgpackSample(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	e := msgpack.NewEncoder(&buf)
	for _, err := range []error{
		e.EncodeMapLen(3),
		e.EncodeInt(1), e.EncodeString("one"),
		e.EncodeString("bin"), e.EncodeBytes([]byte{1, 2, 3}),
		e.EncodeString("arr"), e.EncodeArrayLen(3), e.EncodeBool(true), e.EncodeNil(),
		e.EncodeMapLen(1), e.EncodeFloat64(2.5), e.EncodeString("x"),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// msgpackTime is a one-element array holding tm as a msgpack timestamp.
func msgpackTime(t *testing.T, tm time.Time) []byte {
	t.Helper()
	b, err := msgpack.Marshal([]any{tm})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func val(v []byte) *kgo.Record { return &kgo.Record{Value: v} }

// TestConsumeValueFormats produces values in each format, plus tombstones
// and garbage, and checks the exact output of --value-format.
func TestConsumeValueFormats(t *testing.T) {
	mp := msgpackSample(t)
	cases := []struct {
		format string
		recs   []*kgo.Record
		want   string // %o|%v lines; TOPIC is replaced by the topic name
		failed int
	}{
		{"json", []*kgo.Record{
			val([]byte(" {\n \"a\" : [1, 2],\t\"b\": \"x<y\" }\n")),
			val(nil),
			val([]byte("not json")),
			val([]byte(`{"a":1} {"b":2}`)),
			val([]byte("")),
			val([]byte(`"s"`)),
		}, `0|{"a":[1,2],"b":"x<y"}
1|null
2|!decode error: json deserializer, topic "TOPIC": invalid character 'o' in literal null (expecting 'u')
3|!decode error: json deserializer, topic "TOPIC": invalid character '{' after top-level value
4|!decode error: json deserializer, topic "TOPIC": unexpected end of JSON input
5|"s"
`, 3},
		{"msgpack", []*kgo.Record{
			val(mp),
			val(nil),
			val([]byte{0xc1}), // a code msgpack never uses
			val([]byte{0xdd, 0xff, 0xff, 0xff, 0xff}), // array of 2^32-1 elements, none present
			val(append(append([]byte{}, mp...), 0x01)),
			val([]byte{0xa3, 'a', '<', 'b'}),
			val([]byte{0x81, 0x91, 0x01, 0x02}), // {[1]: 2}: an array as a map key
			val([]byte{0xd4, 0x05, 0x00}),       // fixext1 of an unregistered type
			val(msgpackTime(t, time.Date(2026, 11, 22, 13, 0, 0, 5, time.FixedZone("X", 3600)))),
		}, `0|{"1":"one","arr":[true,null,{"2.5":"x"}],"bin":"AQID"}
1|null
2|!decode error: msgpack deserializer, topic "TOPIC": msgpack: reserved code 0xc1 at offset 0
3|!decode error: msgpack deserializer, topic "TOPIC": msgpack: truncated value
4|!decode error: msgpack deserializer, topic "TOPIC": 1 bytes left: serde: trailing data after value
5|"a<b"
6|{"[1]":2}
7|!decode error: msgpack deserializer, topic "TOPIC": msgpack: unknown ext id=5
8|["2026-11-22T12:00:00.000000005Z"]
`, 4},
		{"int64", []*kgo.Record{
			val(mustSerialize(t, serde.Int64(), -42)),
			val(mustSerialize(t, serde.Int64(), 1<<62)),
			val(nil),
			val([]byte{1, 2, 3}),
		}, `0|-42
1|4611686018427387904
2|null
3|!decode error: int64 deserializer, topic "TOPIC": got 3 bytes, want 8: serde: wrong data length
`, 1},
		{"int32", []*kgo.Record{
			val(mustSerialize(t, serde.Int32(), 7)),
			val(mustSerialize(t, serde.Int64(), 7)),
		}, `0|7
1|!decode error: int32 deserializer, topic "TOPIC": got 8 bytes, want 4: serde: wrong data length
`, 1},
		{"float64", []*kgo.Record{
			val(mustSerialize(t, serde.Float64(), 1.5)),
			val(mustSerialize(t, serde.Float64(), -2)),
			val(mustSerialize(t, serde.Float64(), math.NaN())),
			val(mustSerialize(t, serde.Float64(), math.Inf(-1))),
		}, "0|1.5\n1|-2\n2|\"NaN\"\n3|\"-Inf\"\n", 0},
		{"string", []*kgo.Record{
			val([]byte("h\u00e9llo \"q\"\n<tag>")),
			val(nil),
			val([]byte{}),
		}, "0|\"h\u00e9llo \\\"q\\\"\\n<tag>\"\n1|null\n2|\"\"\n", 0},
		{"raw", []*kgo.Record{
			val([]byte(`{ "a" : 1 }`)),
			val(nil),
		}, "0|{ \"a\" : 1 }\n1|\n", 0},
	}
	for _, c := range cases {
		t.Run(c.format, func(t *testing.T) {
			topic := produceRecords(t, c.recs...)
			out, errOut, err := run(t, "", "consume", topic, "-e", "-f", `%o|%v\n`, "--value-format", c.format)
			if err != nil {
				t.Fatalf("consume: %v\n%s", err, errOut)
			}
			if want := strings.ReplaceAll(c.want, "TOPIC", topic); out != want {
				t.Errorf("stdout:\n%s\nwant:\n%s", out, want)
			}
			summary := fmt.Sprintf("%d of %d records could not be decoded", c.failed, len(c.recs))
			if got := strings.Contains(errOut, summary); got != (c.failed > 0) {
				t.Errorf("stderr %q: want summary %q: %v", errOut, summary, c.failed > 0)
			}
		})
	}
}

// TestConsumeKeyFormat decodes keys and values with different formats and
// checks that %K and %S stay the raw lengths.
func TestConsumeKeyFormat(t *testing.T) {
	topic := produceRecords(t,
		&kgo.Record{Key: mustSerialize(t, serde.Int64(), 9), Value: []byte(`[1, 2]`)},
		&kgo.Record{Key: nil, Value: []byte(`{}`)},
		&kgo.Record{Key: []byte("bad"), Value: []byte(`nope`)},
	)
	out, errOut, err := run(t, "", "consume", topic, "-e", "-f", `%k=%v %K %S\n`, "--key-format", "int64", "--value-format", "json")
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`9=[1,2] 8 6
null={} 0 2
!decode error: int64 deserializer, topic %[1]q: got 3 bytes, want 8: serde: wrong data length=!decode error: json deserializer, topic %[1]q: invalid character 'o' in literal null (expecting 'u') 3 4
`, topic)
	if out != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", out, want)
	}
	if !strings.Contains(errOut, "1 of 3 records could not be decoded") {
		t.Errorf("stderr: %q", errOut)
	}
	// Without the flags the output is the bytes as they are.
	if out := mustRun(t, "", "consume", topic, "-e", "-o", "1", "-f", `%k=%v\n`); out != "={}\nbad=nope\n" {
		t.Errorf("raw output: %q", out)
	}
}

func TestConsumeFormatErrors(t *testing.T) {
	topic := newTopic(t)
	mustRun(t, "", "topic", "create", topic, "-p", "1")
	for _, c := range []struct {
		flag, format, want string
	}{
		{"--value-format", "yaml", `--value-format "yaml": unknown format, want one of raw, json, msgpack`},
		{"--key-format", "JSON", `--key-format "JSON": unknown format`},
		{"--value-format", "avro", "--value-format avro: not yet available (Avro decoding comes with the schema registry"},
		{"--key-format", "avro", "--key-format avro: not yet available"},
	} {
		out, _, err := run(t, "", "consume", topic, "-e", c.flag, c.format)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %s: err %v, want %q", c.flag, c.format, err, c.want)
		}
		if out != "" {
			t.Errorf("%s %s printed %q", c.flag, c.format, out)
		}
	}
}

// FuzzDecodeData runs every --key-format / --value-format decoder on
// arbitrary bytes: none may panic, and whatever decodes prints as exactly
// one valid JSON value on one line.
// FuzzDecodeData's seeds are also checked in under testdata/fuzz/FuzzDecodeData.
func FuzzDecodeData(f *testing.F) {
	for _, seed := range [][]byte{
		nil, {}, []byte(`{"a":[1,2]}`), []byte("not json"),
		{0x81, 0x91, 0x01, 0x02}, {0xdd, 0xff, 0xff, 0xff, 0xff}, {0xd4, 0x05, 0x00},
		{0x92, 0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 1, 0xc4, 0x01, 0xff}, // [NaN, bin]
		{0, 0, 0, 0, 0, 0, 0, 42}, {0, 0, 0, 7},
	} {
		f.Add(seed)
	}
	formats := []string{"json", "msgpack", "string", "int64", "int32", "float64"}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, name := range formats {
			dec, err := parseDataFormat("value-format", name)
			if err != nil {
				t.Fatal(err)
			}
			out, err := dec([]byte("prefix"), "topic", b)
			if !bytes.HasPrefix(out, []byte("prefix")) {
				t.Fatalf("%s: lost dst prefix: %q", name, out)
			}
			if err != nil {
				if len(out) != len("prefix") {
					t.Fatalf("%s: error %v with output %q", name, err, out)
				}
				continue
			}
			text := out[len("prefix"):]
			if !json.Valid(text) || bytes.ContainsAny(text, "\n\r") {
				t.Fatalf("%s(%x) printed %q: not one line of JSON", name, b, text)
			}
		}
	})
}
