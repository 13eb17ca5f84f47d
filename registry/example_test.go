package registry_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"

	"github.com/eddy-streams/eddy/registry"
)

// Evolving a schema under the default BACKWARD mode: adding a field with a
// default is accepted, adding one without a default is not, because the new
// schema could not read records written before the field existed.
func ExampleCheck() {
	v1 := `{"type":"record","name":"PageView","fields":[
		{"name":"user","type":"string"}]}`
	withDefault := `{"type":"record","name":"PageView","fields":[
		{"name":"user","type":"string"},
		{"name":"referrer","type":"string","default":""}]}`
	withoutDefault := `{"type":"record","name":"PageView","fields":[
		{"name":"user","type":"string"},
		{"name":"referrer","type":"string"}]}`

	mode, err := registry.ParseCompatibility("BACKWARD")
	if err != nil {
		panic(err)
	}
	msgs, err := registry.Check(mode, withDefault, []string{v1})
	fmt.Println("with default:", len(msgs) == 0, err)

	msgs, err = registry.Check(mode, withoutDefault, []string{v1})
	fmt.Println("without default:", len(msgs) == 0, err)
	fmt.Println(msgs[0])

	msgs, err = registry.Check(registry.Forward, withoutDefault, []string{v1})
	fmt.Println("without default, FORWARD:", len(msgs) == 0, err)
	// Output:
	// with default: true <nil>
	// without default: false <nil>
	// {description:'the new schema cannot read data written with the old schema: reader field referrer is missing in writer schema and has no default'}
	// without default, FORWARD: true <nil>
}

// sliceLog is the smallest registry.Log: records in memory, lost when the
// process exits. Real deployments use registry.NewKafkaLog.
type sliceLog struct {
	mu   sync.Mutex
	recs [][2][]byte
}

func (l *sliceLog) Replay(_ context.Context, apply func(key, value []byte) error) error {
	l.mu.Lock()
	recs := slices.Clone(l.recs)
	l.mu.Unlock()
	for _, r := range recs {
		if err := apply(r[0], r[1]); err != nil {
			return err
		}
	}
	return nil
}

func (l *sliceLog) Append(_ context.Context, key, value []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recs = append(l.recs, [2][]byte{key, value})
	return nil
}

func (*sliceLog) Close() error { return nil }

// A registry server answering the Confluent REST API, here through
// httptest: a schema is registered, evolved compatibly, refused when
// incompatible, and still there after a restart on the same log.
func ExampleNew() {
	ctx := context.Background()
	log := &sliceLog{}
	srv, err := registry.New(ctx, registry.Config{Log: log})
	if err != nil {
		panic(err)
	}
	call := func(method, path, body string) {
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/vnd.schemaregistry.v1+json")
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, r)
		fmt.Println(w.Code, w.Body.String())
	}
	v1 := `{"schema":"{\"type\":\"record\",\"name\":\"PageView\",\"fields\":[{\"name\":\"user\",\"type\":\"string\"}]}"}`
	v2 := `{"schema":"{\"type\":\"record\",\"name\":\"PageView\",\"fields\":[{\"name\":\"user\",\"type\":\"string\"},{\"name\":\"ref\",\"type\":\"string\",\"default\":\"\"}]}"}`
	v3 := `{"schema":"{\"type\":\"record\",\"name\":\"PageView\",\"fields\":[{\"name\":\"user\",\"type\":\"long\"}]}"}`
	call("POST", "/subjects/pageviews-value/versions", v1)
	call("POST", "/subjects/pageviews-value/versions", v2)
	call("POST", "/subjects/pageviews-value/versions", v3)

	srv.Close()
	srv, err = registry.New(ctx, registry.Config{Log: log}) // restart: replay the log
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	call("GET", "/subjects/pageviews-value/versions", "")
	call("GET", "/schemas/ids/1", "")
	call("GET", "/subjects/nope/versions", "")
	// Output:
	// 200 {"id":1}
	// 200 {"id":2}
	// 409 {"error_code":409,"message":"Schema being registered is incompatible with an earlier schema for subject \"pageviews-value\", details: [{description:'the new schema cannot read data written with the old schema: reader schema long not compatible with writer schema string'}, {oldSchema: '{\"type\":\"record\",\"name\":\"PageView\",\"fields\":[{\"name\":\"user\",\"type\":\"string\"},{\"name\":\"ref\",\"type\":\"string\",\"default\":\"\"}]}'}, {compatibility: 'BACKWARD'}]"}
	// 200 [1,2]
	// 200 {"schema":"{\"type\":\"record\",\"name\":\"PageView\",\"fields\":[{\"name\":\"user\",\"type\":\"string\"}]}"}
	// 404 {"error_code":40401,"message":"Subject 'nope' not found."}
}
