package avro_test

import (
	"errors"
	"fmt"
	"net/http/httptest"

	"github.com/eddy-streams/eddy/serde/avro"
)

// exampleRegistry starts an in-memory Confluent-compatible registry fake
// for the example; in production pass the URL of a real registry (or of
// eddy's broker) to avro.NewRegistryClient.
func exampleRegistry() (url string, stop func()) {
	srv := httptest.NewServer(avro.FakeRegistryHandlerForTest())
	return srv.URL, srv.Close
}

type PageView struct {
	User string `avro:"user"`
	Page string `avro:"page"`
}

type PageViewV2 struct {
	User     string `avro:"user"`
	Page     string `avro:"page"`
	Referrer string `avro:"referrer"`
}

func Example() {
	url, stop := exampleRegistry()
	defer stop()
	reg, err := avro.NewRegistryClient(url)
	if err != nil {
		panic(err)
	}

	const v1 = `{"type":"record","name":"PageView","namespace":"shop","fields":[
		{"name":"user","type":"string"},{"name":"page","type":"string"}]}`
	producer, err := avro.Serde[PageView](reg, v1, avro.AutoRegister())
	if err != nil {
		panic(err)
	}
	b, err := producer.Serialize("pageviews", PageView{User: "ann", Page: "/home"})
	if err != nil {
		panic(err)
	}
	fmt.Printf("magic %d, schema id %d, %d bytes of Avro\n", b[0], b[4], len(b)-5)

	// A consumer on v2 of the schema, which adds a field with a default,
	// reads records written with v1.
	const v2 = `{"type":"record","name":"PageView","namespace":"shop","fields":[
		{"name":"user","type":"string"},{"name":"page","type":"string"},
		{"name":"referrer","type":"string","default":"direct"}]}`
	consumer, err := avro.Serde[PageViewV2](reg, v2)
	if err != nil {
		panic(err)
	}
	v, err := consumer.Deserialize("pageviews", b)
	fmt.Printf("%+v %v\n", v, err)

	_, err = consumer.Deserialize("pageviews", []byte(`{"user":"ann","page":"/home"}`))
	fmt.Println(errors.Is(err, avro.ErrBadMagic))
	// Output:
	// magic 0, schema id 1, 10 bytes of Avro
	// {User:ann Page:/home Referrer:direct} <nil>
	// true
}

// Generic reads records of any schema, each with the schema it was written
// with: what a tool that prints or forwards records needs.
func ExampleGeneric() {
	url, stop := exampleRegistry()
	defer stop()
	reg, err := avro.NewRegistryClient(url)
	if err != nil {
		panic(err)
	}
	const v1 = `{"type":"record","name":"PageView","namespace":"shop","fields":[
		{"name":"user","type":"string"},{"name":"page","type":"string"}]}`
	producer, err := avro.Serde[PageView](reg, v1, avro.AutoRegister())
	if err != nil {
		panic(err)
	}
	b, err := producer.Serialize("pageviews", PageView{User: "ann", Page: "/home"})
	if err != nil {
		panic(err)
	}

	generic, err := avro.Generic(reg)
	if err != nil {
		panic(err)
	}
	v, err := generic.Deserialize("pageviews", b)
	fmt.Println(v, err)
	// Output:
	// map[page:/home user:ann] <nil>
}
