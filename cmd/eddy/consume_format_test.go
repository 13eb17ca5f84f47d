package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/eddy-streams/eddy/serde"
	"github.com/eddy-streams/eddy/serde/avro"
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
		{"--value-format", "avro", "--value-format avro needs the schema registry: --registry is empty"},
		{"--key-format", "avro", "--key-format avro needs the schema registry: --registry is empty"},
	} {
		out, _, err := run(t, "", "consume", topic, "-e", c.flag, c.format, "--registry", "")
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
	for _, seed := range avroFuzzSeeds {
		f.Add(seed)
	}
	formats := []string{"json", "msgpack", "string", "int64", "int32", "float64"}
	decoders := map[string]dataDecoder{
		// avro with schemas from memory: no network.
		"avro": newAvroDecoder(fuzzRegistry).decode,
	}
	for _, name := range formats {
		dec, err := parseDataFormat("value-format", name, "")
		if err != nil {
			f.Fatal(err)
		}
		decoders[name] = dec
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for name, dec := range decoders {
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

// pageView is the Avro value of the consume tests.
type pageView struct {
	User string    `avro:"user"`
	Page string    `avro:"page"`
	Ref  *string   `avro:"ref"`
	Tags []string  `avro:"tags"`
	At   time.Time `avro:"at"`
	Hash [2]byte   `avro:"hash"`
	Size float64   `avro:"size"`
}

const pageViewSchema = `{"type":"record","name":"PageView","namespace":"shop","fields":[
	{"name":"user","type":"string"},
	{"name":"page","type":"string"},
	{"name":"ref","type":["null","string"],"default":null},
	{"name":"tags","type":{"type":"array","items":"string"}},
	{"name":"at","type":{"type":"long","logicalType":"timestamp-millis"}},
	{"name":"hash","type":{"type":"fixed","name":"Hash","size":2}},
	{"name":"size","type":"double"}]}`

// pageViewV2 is pageView with a field added (with a default), as a
// backward-compatible evolution registers it.
type pageViewV2 struct {
	pageView
	Country string `avro:"country"`
}

const pageViewSchemaV2 = `{"type":"record","name":"PageView","namespace":"shop","fields":[
	{"name":"user","type":"string"},
	{"name":"page","type":"string"},
	{"name":"ref","type":["null","string"],"default":null},
	{"name":"tags","type":{"type":"array","items":"string"}},
	{"name":"at","type":{"type":"long","logicalType":"timestamp-millis"}},
	{"name":"hash","type":{"type":"fixed","name":"Hash","size":2}},
	{"name":"size","type":"double"},
	{"name":"country","type":"string","default":"?"}]}`

// userKey is the Avro key of the consume tests.
type userKey struct {
	User string `avro:"user"`
}

const userKeySchema = `{"type":"record","name":"UserKey","fields":[{"name":"user","type":"string"}]}`

func mustSerializeTo[T any](t *testing.T, topic string, s serde.Serde[T], v T) []byte {
	t.Helper()
	b, err := s.Serialize(topic, v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// produceTo writes recs, in order, to partition 0 of topic on brokers.
func produceTo(t *testing.T, brokers, topic string, recs ...*kgo.Record) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers), kgo.DefaultProduceTopic(topic), kgo.AllowAutoTopicCreation())
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
}

// TestConsumeAvro produces records through serde/avro, registering their
// schemas in a broker's registry, plus records that do not decode, and
// checks what `consume --key-format avro --value-format avro` prints.
func TestConsumeAvro(t *testing.T) {
	b := startRegistryBroker(t)
	reg, err := avro.NewRegistryClient(b.url)
	if err != nil {
		t.Fatal(err)
	}
	topic := "pageviews"
	values, err := avro.Serde[pageView](reg, pageViewSchema, avro.AutoRegister())
	if err != nil {
		t.Fatal(err)
	}
	valuesV2, err := avro.Serde[pageViewV2](reg, pageViewSchemaV2, avro.AutoRegister())
	if err != nil {
		t.Fatal(err)
	}
	// A record key, so that keys print as JSON objects too.
	keys, err := avro.Serde[userKey](reg, userKeySchema, avro.IsKey(), avro.AutoRegister())
	if err != nil {
		t.Fatal(err)
	}
	ref := "home <&>"
	at := time.Date(2026, 11, 22, 12, 30, 0, 0, time.UTC)
	v1 := pageView{User: "ann", Page: "/a", Ref: &ref, Tags: []string{"x", "y"}, At: at, Hash: [2]byte{1, 255}, Size: 1.5}
	v1b := pageView{User: "bob", Page: "/b", Tags: []string{}, At: at, Size: -2}
	v2 := pageViewV2{pageView: v1b, Country: "NZ"}
	good := mustSerializeTo(t, topic, values, v1)
	truncated := good[:len(good)-3]
	unknownID := append([]byte{0, 0, 0, 0x7f, 0x7f}, good[5:]...)
	trailing := append(append([]byte{}, good...), 0)
	produceTo(t, b.addr, topic,
		&kgo.Record{Key: mustSerializeTo(t, topic, keys, userKey{"ann"}), Value: good},
		&kgo.Record{Key: mustSerializeTo(t, topic, keys, userKey{"bob"}), Value: mustSerializeTo(t, topic, values, v1b)},
		&kgo.Record{Key: mustSerializeTo(t, topic, keys, userKey{"bob"}), Value: mustSerializeTo(t, topic, valuesV2, v2)},
		&kgo.Record{Key: mustSerializeTo(t, topic, keys, userKey{"bob"}), Value: nil},
		&kgo.Record{Key: []byte("plain"), Value: []byte{1, 2, 3, 4, 5, 6}},
		&kgo.Record{Value: []byte{0, 0, 0}},
		&kgo.Record{Value: truncated},
		&kgo.Record{Value: unknownID},
		&kgo.Record{Value: trailing},
	)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, errOut, err := runAt(ctx, b.addr, "", "consume", topic, "-e", "-f", `%o|%k|%v\n`,
		"--key-format", "avro", "--value-format", "avro", "--registry", b.url)
	if err != nil {
		t.Fatalf("consume: %v\n%s", err, errOut)
	}
	want := `0|{"user":"ann"}|{"at":"2026-11-22T12:30:00Z","hash":[1,255],"page":"/a","ref":"home <&>","size":1.5,"tags":["x","y"],"user":"ann"}
1|{"user":"bob"}|{"at":"2026-11-22T12:30:00Z","hash":[0,0],"page":"/b","ref":null,"size":-2,"tags":[],"user":"bob"}
2|{"user":"bob"}|{"at":"2026-11-22T12:30:00Z","country":"NZ","hash":[0,0],"page":"/b","ref":null,"size":-2,"tags":[],"user":"bob"}
3|{"user":"bob"}|null
4|!decode error: avro deserializer, topic "pageviews": first byte 0x70: avro: bad magic byte (not Confluent wire format)|!decode error: avro deserializer, topic "pageviews": first byte 0x1: avro: bad magic byte (not Confluent wire format)
5|null|!decode error: avro deserializer, topic "pageviews": 3 bytes, need a 5-byte header: avro: truncated data
6|null|!decode error: avro deserializer, topic "pageviews", schema id 1: avro: truncated data: map[string]interface {}: unexpected EOF
7|null|!decode error: avro deserializer, topic "pageviews": schema id 32639: avro: registry: schema id 32639: avro: unknown schema (40403 Schema 32639 not found)
8|null|!decode error: avro deserializer, topic "pageviews", schema id 1: avro: serde: trailing data after value
`
	if out != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", out, want)
	}
	if !strings.Contains(errOut, "5 of 9 records could not be decoded") {
		t.Errorf("stderr: %q", errOut)
	}
}

// countingRegistry is an avro.Registry with schemas in memory that counts
// SchemaByID calls.
type countingRegistry struct {
	schemas map[int]string
	calls   map[int]int
}

func (r *countingRegistry) SchemaByID(_ context.Context, id int) (string, error) {
	if r.calls != nil {
		r.calls[id]++
	}
	s, ok := r.schemas[id]
	if !ok {
		return "", fmt.Errorf("schema id %d: %w", id, avro.ErrUnknownSchema)
	}
	return s, nil
}

func (r *countingRegistry) Register(context.Context, string, string) (int, error) {
	return 0, fmt.Errorf("not supported")
}

func (r *countingRegistry) Lookup(context.Context, string, string) (int, error) {
	return 0, fmt.Errorf("not supported")
}

// fuzzRegistry holds the schemas FuzzDecodeData's avro decoder knows.
var fuzzRegistry = &countingRegistry{schemas: map[int]string{
	1: pageViewSchema,
	2: `"string"`,
	3: `{"type":"array","items":"null"}`, // refused: zero-width items
	4: `{"type":"nope"}`,                 // invalid
	5: `{"type":"map","values":{"type":"array","items":["null","long","bytes"]}}`,
	6: `{"type":"enum","name":"E","symbols":["A","B"]}`,
}}

// avroFuzzSeeds are FuzzDecodeData's avro inputs: the header, then data.
var avroFuzzSeeds = [][]byte{
	{0, 0, 0, 0, 2, 6, 'a', 'b', 'c'},                        // "abc"
	{0, 0, 0, 0, 2, 0xfe, 0xff, 0xff, 0xff, 0x0f},            // string of 2^31-1 bytes, absent
	{0, 0, 0, 0, 1, 2, 'a', 0},                               // truncated record
	{0, 0, 0, 0, 3, 2, 0},                                    // unsafe schema
	{0, 0, 0, 0, 4},                                          // invalid schema
	{0, 0, 0, 0, 9, 0},                                       // unknown id
	{0, 0, 0, 0, 5, 2, 2, 'k', 4, 0, 2, 0x54, 0, 0},          // {"k":[null, 42]}
	{0, 0, 0, 0, 5, 2, 2, 'k', 0xfe, 0xff, 0xff, 0xff, 0x0f}, // array of 2^31-1 items, absent
	{0, 0, 0, 0, 6, 4},                                       // enum index 2 of 2
	{1, 0, 0, 0, 2, 0},                                       // bad magic
}

// TestAvroDecoderCache checks that each schema id is fetched once, the
// unknown ones included.
func TestAvroDecoderCache(t *testing.T) {
	r := &countingRegistry{schemas: fuzzRegistry.schemas, calls: map[int]int{}}
	dec := newAvroDecoder(r).decode
	for range 3 {
		for _, in := range avroFuzzSeeds {
			dec(nil, "t", in) //nolint:errcheck // outcomes checked by other tests
		}
	}
	for id, n := range r.calls {
		if n != 1 {
			t.Errorf("schema id %d fetched %d times, want once", id, n)
		}
	}
	if len(r.calls) != 7 {
		t.Errorf("fetched ids %v, want 2, 1, 3, 4, 9, 5, 6", r.calls)
	}
	for _, c := range []struct {
		in   []byte
		want string
	}{
		{avroFuzzSeeds[0], `"abc"`},
		{avroFuzzSeeds[6], `{"k":[null,42]}`},
		{[]byte{0, 0, 0, 0, 6, 2}, `"B"`},
		{avroFuzzSeeds[1], "!decode error: avro deserializer, topic \"t\", schema id 2: avro: value exceeds size limit"},
		{avroFuzzSeeds[3], "!decode error: avro deserializer, topic \"t\": schema id 3: avro: schema not supported: array of zero-width items"},
		{avroFuzzSeeds[4], "!decode error: avro deserializer, topic \"t\": schema id 4: avro: invalid schema"},
		{avroFuzzSeeds[7], "!decode error: avro deserializer, topic \"t\", schema id 5: avro: value exceeds size limit"},
	} {
		out, _ := decodeText(dec, nil, "t", c.in)
		if !strings.HasPrefix(string(out), c.want) {
			t.Errorf("decode %x: %s, want %s...", c.in, out, c.want)
		}
	}
}

// TestAvroTimes checks that timestamps print in UTC, local timestamps with
// their wall clock, whatever the machine's time zone.
func TestAvroTimes(t *testing.T) {
	saved := time.Local
	time.Local = time.FixedZone("X", 5*3600+1800)
	defer func() { time.Local = saved }()
	r := &countingRegistry{schemas: map[int]string{
		7: `{"type":"long","logicalType":"local-timestamp-millis"}`,
		8: `{"type":"long","logicalType":"timestamp-millis"}`,
		9: `{"type":"int","logicalType":"date"}`,
	}}
	dec := newAvroDecoder(r).decode
	ms := time.Date(2026, 11, 22, 12, 30, 0, 0, time.UTC).UnixMilli()
	for _, c := range []struct {
		in   []byte
		want string
	}{
		{binary.AppendVarint([]byte{0, 0, 0, 0, 7}, ms), `"2026-11-22T12:30:00Z"`},
		{binary.AppendVarint([]byte{0, 0, 0, 0, 8}, ms), `"2026-11-22T12:30:00Z"`},
		{binary.AppendVarint([]byte{0, 0, 0, 0, 9}, 20414), `"2025-11-22T00:00:00Z"`},
	} {
		out, err := dec(nil, "t", c.in)
		if err != nil || string(out) != c.want {
			t.Errorf("decode %x: %s, %v; want %s", c.in, out, err, c.want)
		}
	}
}
