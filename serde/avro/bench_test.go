package avro

import (
	"testing"
)

// benchRecord is a small record: the shape of a page view event.
type benchRecord struct {
	User  string `avro:"user"`
	Page  string `avro:"page"`
	Ts    int64  `avro:"ts"`
	Count int32  `avro:"count"`
}

const benchSchema = `{"type":"record","name":"Bench","fields":[
	{"name":"user","type":"string"},{"name":"page","type":"string"},
	{"name":"ts","type":"long"},{"name":"count","type":"int"}]}`

func benchSerde(b *testing.B) (*avroSerde[benchRecord], benchRecord, []byte) {
	s := mustSerde[benchRecord](b, newFakeRegistry(), benchSchema, AutoRegister()).(*avroSerde[benchRecord])
	v := benchRecord{User: "user-12345", Page: "/products/42", Ts: 1_700_000_000_000, Count: 3}
	enc, err := s.Serialize("bench", v)
	if err != nil {
		b.Fatal(err)
	}
	return s, v, enc
}

func BenchmarkAvroEncode(b *testing.B) {
	s, v, enc := benchSerde(b)
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Serialize("bench", v); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAvroDecode(b *testing.B) {
	s, _, enc := benchSerde(b)
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Deserialize("bench", enc); err != nil {
			b.Fatal(err)
		}
	}
}
