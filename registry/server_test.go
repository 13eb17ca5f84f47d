package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
)

// Schemas of a subject's evolution: v2 adds a field with a default (BACKWARD
// compatible), v3 one without (incompatible under BACKWARD).
const (
	pv1 = `{"type":"record","name":"PageView","fields":[
		{"name":"user","type":"string"}]}`
	pv2 = `{"type":"record","name":"PageView","fields":[
		{"name":"user","type":"string"},
		{"name":"referrer","type":"string","default":""}]}`
	pv3 = `{"type":"record","name":"PageView","fields":[
		{"name":"user","type":"string"},
		{"name":"referrer","type":"string","default":""},
		{"name":"country","type":"string"}]}`
)

// compact is a schema's stored form.
func compact(t testing.TB, text string) string {
	t.Helper()
	c, err := compactSchema(text)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// schemaBody is a registration body for text.
func schemaBody(text string) string {
	return string(mustJSON(map[string]string{"schema": text}))
}

type testServer struct {
	t   testing.TB
	srv *Server
	log *memLog
}

func newTestServer(t testing.TB, log *memLog, mutate ...func(*Config)) *testServer {
	t.Helper()
	cfg := Config{Log: log}
	for _, m := range mutate {
		m(&cfg)
	}
	srv, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return &testServer{t: t, srv: srv, log: log}
}

// do sends one request through ServeHTTP and returns status and body.
func (ts *testServer) do(method, path, body string, header ...string) (int, string) {
	ts.t.Helper()
	var r *http.Request
	if body == "" {
		r = httptest.NewRequest(method, path, nil)
	} else {
		r = httptest.NewRequest(method, path, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/vnd.schemaregistry.v1+json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	ts.srv.ServeHTTP(w, r)
	if ct := w.Header().Get("Content-Type"); ct != contentType {
		ts.t.Errorf("%s %s: Content-Type %q", method, path, ct)
	}
	return w.Code, w.Body.String()
}

// ok sends a request that must succeed with a body JSON-equal to want.
func (ts *testServer) ok(method, path, body, want string) {
	ts.t.Helper()
	status, got := ts.do(method, path, body)
	if status != http.StatusOK {
		ts.t.Fatalf("%s %s: status %d, body %s; want 200 %s", method, path, status, got, want)
	}
	if !jsonEqual(got, want) {
		ts.t.Fatalf("%s %s:\n got %s\nwant %s", method, path, got, want)
	}
}

// fails sends a request that must fail with the error code (HTTP status its
// first three digits) and returns the message.
func (ts *testServer) fails(method, path, body string, code int) string {
	ts.t.Helper()
	status, got := ts.do(method, path, body)
	var e struct {
		Code    int    `json:"error_code"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal([]byte(got), &e); err != nil {
		ts.t.Fatalf("%s %s: error body %q: %v", method, path, got, err)
	}
	if e.Code != code || status != errorf(code, "").status || e.Message == "" {
		ts.t.Fatalf("%s %s: status %d body %s; want error_code %d", method, path, status, got, code)
	}
	return e.Message
}

func jsonEqual(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

func TestServerBasics(t *testing.T) {
	ts := newTestServer(t, newMemLog())
	ts.ok("GET", "/", "", `{}`)
	ts.ok("GET", "/schemas/types", "", `["AVRO"]`)
	ts.ok("GET", "/contexts", "", `["."]`)
	ts.ok("GET", "/subjects", "", `[]`)
	ts.fails("GET", "/nowhere", "", 404)
	ts.fails("GET", "/subjects/s/versions/1/nowhere", "", 404)
	ts.fails("POST", "/subjects", "", 405)
	ts.fails("PUT", "/schemas/types", `{}`, 405)
}

func TestServerRegisterAndRead(t *testing.T) {
	ts := newTestServer(t, newMemLog())
	c1, c2 := compact(t, pv1), compact(t, pv2)

	ts.ok("POST", "/subjects/pv/versions", schemaBody(pv1), `{"id":1}`)
	n := ts.log.len()
	// The same schema again, spaced differently: same id, nothing written.
	ts.ok("POST", "/subjects/pv/versions", schemaBody(c1), `{"id":1}`)
	if ts.log.len() != n {
		t.Fatalf("re-registering wrote %d records", ts.log.len()-n)
	}
	ts.ok("POST", "/subjects/pv/versions?normalize=true", schemaBody(pv2), `{"id":2}`)
	msg := ts.fails("POST", "/subjects/pv/versions", schemaBody(pv3), 409)
	if !strings.Contains(msg, "country") {
		t.Errorf("incompatibility message does not name the field: %s", msg)
	}

	ts.ok("GET", "/subjects", "", `["pv"]`)
	ts.ok("GET", "/subjects/pv/versions", "", `[1,2]`)
	one := string(mustJSON(subjectSchema{Subject: "pv", ID: 1, Version: 1, Schema: c1}))
	two := string(mustJSON(subjectSchema{Subject: "pv", ID: 2, Version: 2, Schema: c2}))
	ts.ok("GET", "/subjects/pv/versions/1", "", one)
	ts.ok("GET", "/subjects/pv/versions/latest", "", two)
	ts.ok("GET", "/subjects/pv/versions/-1", "", two)
	ts.ok("GET", "/subjects/pv/versions/1/schema", "", c1)
	ts.ok("GET", "/subjects/pv/versions/latest/referencedby", "", `[]`)
	for _, bad := range []string{"0", "-2", "abc", "99999999999", "1.5"} {
		ts.fails("GET", "/subjects/pv/versions/"+bad, "", 42202)
	}
	ts.fails("GET", "/subjects/pv/versions/3", "", 40402)
	ts.fails("GET", "/subjects/pv/versions/3/schema", "", 40402)
	ts.fails("GET", "/subjects/nope/versions", "", 40401)
	ts.fails("GET", "/subjects/nope/versions/1", "", 40401)
	ts.fails("GET", "/subjects/nope/versions/latest", "", 40401)

	// The same schema under another subject shares its id.
	ts.ok("POST", "/subjects/other/versions", schemaBody(pv1), `{"id":1}`)
	ts.ok("GET", "/subjects/other/versions/1", "", strings.Replace(one, `"pv"`, `"other"`, 1))
	ts.ok("GET", "/subjects?subjectPrefix=o", "", `["other"]`)
	ts.ok("GET", "/schemas/ids/1", "", string(mustJSON(map[string]string{"schema": c1})))
	ts.ok("GET", "/schemas/ids/1/schema", "", c1)
	ts.ok("GET", "/schemas/ids/1/versions", "", `[{"subject":"other","version":1},{"subject":"pv","version":1}]`)
	ts.ok("GET", "/schemas/ids/1/subjects", "", `["other","pv"]`)
	for _, bad := range []string{"9", "0", "x", "-1"} {
		ts.fails("GET", "/schemas/ids/"+bad, "", 40403)
	}
	ts.fails("GET", "/schemas/ids/9/schema", "", 40403)
	ts.fails("GET", "/schemas/ids/9/versions", "", 40403)
	ts.fails("GET", "/schemas/ids/9/subjects", "", 40403)

	// Lookup.
	ts.ok("POST", "/subjects/pv", schemaBody(pv2), two)
	ts.fails("POST", "/subjects/pv", schemaBody(pv3), 40403)
	ts.fails("POST", "/subjects/nope", schemaBody(pv1), 40401)
	ts.fails("POST", "/subjects/pv", schemaBody(`{"type":"record"`), 42201)

	// A primitive schema, as a bare JSON string.
	ts.ok("POST", "/subjects/key/versions", schemaBody(`"string"`), `{"id":3}`)
	ts.ok("GET", "/subjects/key/versions/1/schema", "", `"string"`)

	// Subjects with an encoded slash work; control characters do not.
	ts.ok("POST", "/subjects/a%2Fb/versions", schemaBody(pv1), `{"id":1}`)
	ts.ok("GET", "/subjects/a%2Fb/versions", "", `[1]`)
	ts.ok("GET", "/subjects?subjectPrefix=a", "", `["a/b"]`)
	ts.fails("POST", "/subjects/a%01b/versions", schemaBody(pv1), 42208)
	ts.fails("PUT", "/config/a%7Fb", `{"compatibility":"NONE"}`, 42208)
}

func TestServerInvalidSchemas(t *testing.T) {
	ts := newTestServer(t, newMemLog())
	for name, body := range map[string]string{
		"not an avro schema": schemaBody(`{"type":"record"}`),
		"not json":           schemaBody(`{"type":`),
		"empty schema":       `{"schema":""}`,
		"no schema":          `{}`,
		"body not json":      `{"schema":`,
		"empty body":         ``,
		"schema not string":  `{"schema":5}`,
		"protobuf":           `{"schema":"syntax = \"proto3\";","schemaType":"PROTOBUF"}`,
		"references":         `{"schema":"\"string\"","references":[{"name":"a","subject":"b","version":1}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			msg := ts.fails("POST", "/subjects/s/versions", body, 42201)
			if name == "protobuf" && !strings.Contains(msg, "PROTOBUF") {
				t.Errorf("message %q does not name the type", msg)
			}
			ts.fails("POST", "/compatibility/subjects/s/versions", body, 42201)
		})
	}
	ts.ok("GET", "/subjects", "", `[]`)
	if n := ts.log.len(); n != 0 {
		t.Fatalf("%d records written", n)
	}
	// An explicit AVRO type is fine; an id outside IMPORT mode is not.
	ts.ok("POST", "/subjects/s/versions", `{"schema":"\"int\"","schemaType":"AVRO"}`, `{"id":1}`)
	ts.fails("POST", "/subjects/s/versions", `{"schema":"\"long\"","id":7}`, 42205)
	ts.fails("POST", "/subjects/s/versions", `{"schema":"\"long\"","version":7}`, 42205)
}

func TestServerDeletes(t *testing.T) {
	ts := newTestServer(t, newMemLog())
	ts.ok("POST", "/subjects/s/versions", schemaBody(pv1), `{"id":1}`)
	ts.ok("POST", "/subjects/s/versions", schemaBody(pv2), `{"id":2}`)
	ts.ok("PUT", "/config/s", `{"compatibility":"FULL"}`, `{"compatibility":"FULL"}`)

	ts.fails("DELETE", "/subjects/s/versions/2?permanent=true", "", 40407)
	ts.ok("DELETE", "/subjects/s/versions/2", "", `2`)
	ts.fails("DELETE", "/subjects/s/versions/2", "", 40406)
	ts.fails("DELETE", "/subjects/s/versions/3", "", 40402)
	ts.fails("DELETE", "/subjects/s/versions/x", "", 42202)
	ts.ok("GET", "/subjects/s/versions", "", `[1]`)
	ts.ok("GET", "/subjects/s/versions?deleted=true", "", `[1,2]`)
	ts.fails("GET", "/subjects/s/versions/2", "", 40402)
	ts.ok("GET", "/subjects/s/versions/2?deleted=true", "",
		string(mustJSON(subjectSchema{Subject: "s", ID: 2, Version: 2, Schema: compact(t, pv2)})))
	ts.ok("GET", "/subjects/s/versions/latest", "", string(mustJSON(subjectSchema{Subject: "s", ID: 1, Version: 1, Schema: compact(t, pv1)})))
	ts.fails("POST", "/subjects/s", schemaBody(pv2), 40403)
	ts.ok("POST", "/subjects/s?deleted=true", schemaBody(pv2), string(mustJSON(subjectSchema{Subject: "s", ID: 2, Version: 2, Schema: compact(t, pv2)})))
	// A soft-deleted schema is still served by id, for old data.
	ts.ok("GET", "/schemas/ids/2", "", string(mustJSON(map[string]string{"schema": compact(t, pv2)})))
	ts.ok("GET", "/schemas/ids/2/versions", "", `[]`)
	ts.ok("GET", "/schemas/ids/2/versions?deleted=true", "", `[{"subject":"s","version":2}]`)
	ts.ok("GET", "/schemas/ids/2/subjects?deleted=true", "", `["s"]`)

	// Registering it again reuses its id, under a new version.
	ts.ok("POST", "/subjects/s/versions", schemaBody(pv2), `{"id":2}`)
	ts.ok("GET", "/subjects/s/versions", "", `[1,3]`)

	ts.fails("DELETE", "/subjects/s?permanent=true", "", 40405)
	ts.ok("DELETE", "/subjects/s", "", `[1,3]`)
	ts.fails("DELETE", "/subjects/s", "", 40404)
	ts.ok("GET", "/subjects", "", `[]`)
	ts.ok("GET", "/subjects?deleted=true", "", `["s"]`)
	ts.fails("GET", "/subjects/s/versions", "", 40401)
	ts.fails("GET", "/subjects/s/versions/latest", "", 40401)
	ts.ok("GET", "/subjects/s/versions/latest?deleted=true", "", string(mustJSON(subjectSchema{Subject: "s", ID: 2, Version: 3, Schema: compact(t, pv2)})))

	ts.ok("DELETE", "/subjects/s/versions/2?permanent=true", "", `2`)
	ts.ok("GET", "/subjects/s/versions?deleted=true", "", `[1,3]`)
	ts.ok("DELETE", "/subjects/s/versions/latest?permanent=true", "", `3`)
	ts.ok("DELETE", "/subjects/s?permanent=true", "", `[1]`)
	ts.ok("GET", "/subjects?deleted=true", "", `[]`)
	ts.fails("GET", "/schemas/ids/1", "", 40403)
	ts.fails("GET", "/schemas/ids/2", "", 40403)
	ts.fails("DELETE", "/subjects/s", "", 40401)
	ts.fails("DELETE", "/subjects/s?permanent=true", "", 40401)
	ts.fails("DELETE", "/subjects/s/versions/1", "", 40401)
	// The subject's config outlives its schemas.
	ts.ok("GET", "/config/s", "", `{"compatibilityLevel":"FULL","compatibility":"FULL"}`)
	// Ids are never reused: the next schema gets a new one, versions restart.
	ts.ok("POST", "/subjects/s/versions", schemaBody(pv1), `{"id":3}`)
	ts.ok("GET", "/subjects/s/versions", "", `[1]`)
}

func TestServerConfig(t *testing.T) {
	ts := newTestServer(t, newMemLog())
	ts.ok("GET", "/config", "", `{"compatibilityLevel":"BACKWARD","compatibility":"BACKWARD"}`)
	ts.ok("PUT", "/config", `{"compatibility":"FULL"}`, `{"compatibility":"FULL"}`)
	ts.ok("GET", "/config", "", `{"compatibilityLevel":"FULL","compatibility":"FULL"}`)
	ts.fails("PUT", "/config", `{"compatibility":"SIDEWAYS"}`, 42203)
	ts.fails("PUT", "/config", `{}`, 42203)
	ts.fails("PUT", "/config", `{"compatibility":`, 400)
	ts.fails("PUT", "/config", ``, 400)
	ts.fails("GET", "/config/s", "", 40408)
	ts.ok("GET", "/config/s?defaultToGlobal=true", "", `{"compatibilityLevel":"FULL","compatibility":"FULL"}`)

	// The subject's level decides: NONE lets an incompatible schema in.
	ts.ok("POST", "/subjects/s/versions", schemaBody(pv1), `{"id":1}`)
	ts.fails("POST", "/subjects/s/versions", schemaBody(pv3), 409)
	ts.ok("PUT", "/config/s", `{"compatibility":"NONE"}`, `{"compatibility":"NONE"}`)
	ts.ok("GET", "/config/s", "", `{"compatibilityLevel":"NONE","compatibility":"NONE"}`)
	ts.ok("POST", "/subjects/s/versions", schemaBody(pv3), `{"id":2}`)
	ts.ok("DELETE", "/config/s", "", `{"compatibilityLevel":"NONE","compatibility":"NONE"}`)
	ts.fails("DELETE", "/config/s", "", 40408)
	ts.ok("DELETE", "/config", "", `{"compatibilityLevel":"FULL","compatibility":"FULL"}`)
	ts.ok("GET", "/config", "", `{"compatibilityLevel":"BACKWARD","compatibility":"BACKWARD"}`)
	ts.ok("DELETE", "/config", "", `{"compatibilityLevel":"BACKWARD","compatibility":"BACKWARD"}`)

	// The server's default level.
	ts2 := newTestServer(t, newMemLog(), func(c *Config) { c.DefaultCompatibility = None })
	ts2.ok("GET", "/config", "", `{"compatibilityLevel":"NONE","compatibility":"NONE"}`)
	ts2.ok("POST", "/subjects/s/versions", schemaBody(pv1), `{"id":1}`)
	ts2.ok("POST", "/subjects/s/versions", schemaBody(pv3), `{"id":2}`)
}

func TestServerTransitive(t *testing.T) {
	// v3 reads v2's data (field a missing: default) but not v1's (int is not
	// a string): only the transitive mode refuses it.
	v1 := `{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}`
	v2 := `{"type":"record","name":"R","fields":[]}`
	v3 := `{"type":"record","name":"R","fields":[{"name":"a","type":"string","default":""}]}`
	for _, tc := range []struct {
		level string
		want  int // 0: accepted
	}{{"BACKWARD", 0}, {"BACKWARD_TRANSITIVE", 409}} {
		t.Run(tc.level, func(t *testing.T) {
			ts := newTestServer(t, newMemLog())
			ts.ok("PUT", "/config/s", `{"compatibility":"NONE"}`, `{"compatibility":"NONE"}`)
			ts.ok("POST", "/subjects/s/versions", schemaBody(v1), `{"id":1}`)
			ts.ok("POST", "/subjects/s/versions", schemaBody(v2), `{"id":2}`)
			ts.ok("PUT", "/config/s", `{"compatibility":"`+tc.level+`"}`, `{"compatibility":"`+tc.level+`"}`)
			ts.ok("POST", "/compatibility/subjects/s/versions/latest", schemaBody(v3), `{"is_compatible":true}`)
			ts.ok("POST", "/compatibility/subjects/s/versions", schemaBody(v3), fmt.Sprintf(`{"is_compatible":%v}`, tc.want == 0))
			if tc.want == 0 {
				ts.ok("POST", "/subjects/s/versions", schemaBody(v3), `{"id":3}`)
			} else {
				ts.fails("POST", "/subjects/s/versions", schemaBody(v3), tc.want)
			}
		})
	}
}

func TestServerCompatibilityEndpoint(t *testing.T) {
	ts := newTestServer(t, newMemLog())
	ts.ok("POST", "/subjects/s/versions", schemaBody(pv1), `{"id":1}`)
	ts.ok("POST", "/compatibility/subjects/s/versions/latest", schemaBody(pv2), `{"is_compatible":true}`)
	ts.ok("POST", "/compatibility/subjects/s/versions/1?verbose=true", schemaBody(pv2), `{"is_compatible":true,"messages":[]}`)
	ts.ok("POST", "/compatibility/subjects/s/versions/1", schemaBody(pv3), `{"is_compatible":false}`)
	ts.ok("POST", "/compatibility/subjects/s/versions", schemaBody(pv3), `{"is_compatible":false}`)
	_, body := ts.do("POST", "/compatibility/subjects/s/versions?verbose=true", schemaBody(pv3))
	var res struct {
		Is       bool     `json:"is_compatible"`
		Messages []string `json:"messages"`
	}
	if err := json.Unmarshal([]byte(body), &res); err != nil || res.Is || len(res.Messages) == 0 ||
		!strings.Contains(strings.Join(res.Messages, " "), "country") {
		t.Fatalf("verbose answer %s (%v)", body, err)
	}
	// A new subject: anything valid is compatible.
	ts.ok("POST", "/compatibility/subjects/new/versions", schemaBody(pv3), `{"is_compatible":true}`)
	ts.fails("POST", "/compatibility/subjects/new/versions/1", schemaBody(pv3), 40401)
	ts.fails("POST", "/compatibility/subjects/s/versions/2", schemaBody(pv2), 40402)
	ts.fails("POST", "/compatibility/subjects/s/versions/zero", schemaBody(pv2), 42202)
	ts.fails("POST", "/compatibility/subjects/s/versions/1", schemaBody(`{"type":"enum"}`), 42201)
	if n := ts.log.len(); n != 1 {
		t.Fatalf("compatibility checks wrote records: %d in the log", n)
	}
}

func TestServerModes(t *testing.T) {
	ts := newTestServer(t, newMemLog())
	ts.ok("POST", "/subjects/s/versions", schemaBody(pv1), `{"id":1}`)
	ts.ok("GET", "/mode", "", `{"mode":"READWRITE"}`)
	ts.fails("PUT", "/mode", `{"mode":"SOMETIMES"}`, 42204)
	ts.fails("PUT", "/mode", `{"mode":`, 400)
	for _, m := range []string{"READONLY", "READONLY_OVERRIDE"} {
		ts.ok("PUT", "/mode", `{"mode":"`+m+`"}`, `{"mode":"`+m+`"}`)
		ts.ok("GET", "/mode", "", `{"mode":"`+m+`"}`)
		ts.fails("POST", "/subjects/s/versions", schemaBody(pv2), 42205)
		ts.fails("DELETE", "/subjects/s", "", 42205)
		ts.fails("DELETE", "/subjects/s/versions/1", "", 42205)
		// Reads still work.
		ts.ok("GET", "/subjects/s/versions", "", `[1]`)
	}
	// A subject's own mode overrides the global one.
	ts.ok("PUT", "/mode/s", `{"mode":"READWRITE"}`, `{"mode":"READWRITE"}`)
	ts.ok("GET", "/mode/s", "", `{"mode":"READWRITE"}`)
	ts.ok("POST", "/subjects/s/versions", schemaBody(pv2), `{"id":2}`)
	ts.fails("POST", "/subjects/t/versions", schemaBody(pv2), 42205)
	ts.fails("GET", "/mode/t", "", 40409)
	ts.ok("GET", "/mode/t?defaultToGlobal=true", "", `{"mode":"READONLY_OVERRIDE"}`)
	ts.ok("DELETE", "/mode/s", "", `{"mode":"READWRITE"}`)
	ts.fails("DELETE", "/mode/s", "", 40409)
	ts.ok("DELETE", "/mode", "", `{"mode":"READONLY_OVERRIDE"}`)
	ts.ok("GET", "/mode", "", `{"mode":"READWRITE"}`)
	ts.ok("DELETE", "/mode", "", `{"mode":"READWRITE"}`)

	// IMPORT: only into an empty registry unless forced; ids and versions
	// given are kept, and compatibility is not checked.
	ts.fails("PUT", "/mode", `{"mode":"IMPORT"}`, 42205)
	imp := `{"type":"record","name":"Imported","fields":[]}`
	ts.ok("PUT", "/mode/imp", `{"mode":"IMPORT"}`, `{"mode":"IMPORT"}`)
	ts.ok("POST", "/subjects/imp/versions", `{"schema":`+jsonString(imp)+`,"id":100,"version":5}`, `{"id":100}`)
	ts.ok("POST", "/subjects/imp/versions", `{"schema":`+jsonString(imp)+`,"id":100,"version":5}`, `{"id":100}`)
	ts.ok("GET", "/subjects/imp/versions", "", `[5]`)
	ts.ok("GET", "/subjects/imp/versions/5", "", string(mustJSON(subjectSchema{Subject: "imp", ID: 100, Version: 5, Schema: imp})))
	ts.fails("POST", "/subjects/imp/versions", `{"schema":`+jsonString(pv3)+`,"id":101,"version":5}`, 42205)
	ts.fails("POST", "/subjects/imp/versions", `{"schema":`+jsonString(pv3)+`,"id":100}`, 42207)
	ts.fails("POST", "/subjects/imp/versions", `{"schema":`+jsonString(pv2)+`,"id":200}`, 42207) // pv2 is id 2
	ts.fails("POST", "/subjects/imp/versions", `{"schema":`+jsonString(pv1)+`,"id":300}`, 42207) // pv1 is id 1
	ts.ok("POST", "/subjects/imp/versions", schemaBody(pv3), `{"id":101}`)                       // incompatible, not checked
	ts.ok("GET", "/subjects/imp/versions", "", `[5,6]`)
	ts.ok("PUT", "/mode?force=true", `{"mode":"IMPORT"}`, `{"mode":"IMPORT"}`)
}

func jsonString(s string) string { return string(mustJSON(s)) }

func TestServerRequestLimits(t *testing.T) {
	ts := newTestServer(t, newMemLog(), func(c *Config) { c.MaxBodyBytes = 1024 })
	big := `{"type":"record","name":"R","doc":"` + strings.Repeat("x", 2000) + `","fields":[]}`
	msg := ts.fails("POST", "/subjects/s/versions", schemaBody(big), 413)
	if !strings.Contains(msg, "1024") {
		t.Errorf("413 message does not name the limit: %s", msg)
	}
	ts.fails("PUT", "/config", `{"compatibility":"`+strings.Repeat("F", 2000)+`"}`, 413)
	ts.ok("GET", "/subjects", "", `[]`)
	if n := ts.log.len(); n != 0 {
		t.Fatalf("%d records written", n)
	}

	// Content types.
	body := schemaBody(pv1)
	for ct, wantStatus := range map[string]int{
		"text/plain":                             415,
		"application/xml":                        415,
		"bogus;;":                                415,
		"application/json; charset=utf-8":        200,
		"application/vnd.schemaregistry+json":    200,
		"application/vnd.schemaregistry.v1+json": 200,
		"application/octet-stream":               200,
	} {
		status, got := ts.do("POST", "/subjects/ct/versions", body, "Content-Type", ct)
		if status != wantStatus || (status == 415 && !strings.Contains(got, `"error_code":415`)) {
			t.Errorf("Content-Type %q: %d %s, want %d", ct, status, got, wantStatus)
		}
	}
	r := httptest.NewRequest("POST", "/subjects/ct/versions", strings.NewReader(body)) // no Content-Type
	w := httptest.NewRecorder()
	ts.srv.ServeHTTP(w, r)
	if w.Code != 200 {
		t.Errorf("no Content-Type: %d %s", w.Code, w.Body)
	}
}

func TestServerAppendFailure(t *testing.T) {
	log := newMemLog()
	ts := newTestServer(t, log)
	ts.ok("POST", "/subjects/s/versions", schemaBody(pv1), `{"id":1}`)
	n := log.len()
	log.setFail(errors.New("disk on fire"))
	msg := ts.fails("POST", "/subjects/s/versions", schemaBody(pv2), 50001)
	if !strings.Contains(msg, "disk on fire") {
		t.Errorf("message %q", msg)
	}
	ts.fails("PUT", "/config", `{"compatibility":"NONE"}`, 50001)
	ts.fails("PUT", "/mode", `{"mode":"READONLY"}`, 50001)
	ts.fails("DELETE", "/subjects/s", "", 50001)
	ts.fails("DELETE", "/subjects/s/versions/1", "", 50001)
	// Nothing changed.
	ts.ok("GET", "/subjects/s/versions", "", `[1]`)
	ts.ok("GET", "/config", "", `{"compatibilityLevel":"BACKWARD","compatibility":"BACKWARD"}`)
	ts.ok("GET", "/mode", "", `{"mode":"READWRITE"}`)
	ts.fails("GET", "/schemas/ids/2", "", 40403)
	if log.len() != n {
		t.Fatalf("log grew by %d", log.len()-n)
	}
	// No id was used up.
	log.setFail(nil)
	ts.ok("POST", "/subjects/s/versions", schemaBody(pv2), `{"id":2}`)
}

func TestServerRestart(t *testing.T) {
	log := newMemLog()
	ts := newTestServer(t, log)
	ts.ok("POST", "/subjects/a/versions", schemaBody(pv1), `{"id":1}`)
	ts.ok("POST", "/subjects/a/versions", schemaBody(pv2), `{"id":2}`)
	ts.ok("PUT", "/config/b", `{"compatibility":"NONE"}`, `{"compatibility":"NONE"}`)
	ts.ok("POST", "/subjects/b/versions", schemaBody(`"string"`), `{"id":3}`)
	ts.ok("POST", "/subjects/b/versions", schemaBody(`"int"`), `{"id":4}`)
	ts.ok("POST", "/subjects/c/versions", schemaBody(`"long"`), `{"id":5}`)
	ts.ok("DELETE", "/subjects/a/versions/1", "", `1`)
	ts.ok("DELETE", "/subjects/c", "", `[1]`)
	ts.ok("DELETE", "/subjects/c?permanent=true", "", `[1]`)
	ts.ok("PUT", "/config", `{"compatibility":"FORWARD"}`, `{"compatibility":"FORWARD"}`)
	ts.ok("PUT", "/config/a", `{"compatibility":"FULL"}`, `{"compatibility":"FULL"}`)
	ts.ok("PUT", "/mode/b", `{"mode":"READONLY"}`, `{"mode":"READONLY"}`)
	gets := []string{
		"/subjects", "/subjects?deleted=true", "/subjects/a/versions", "/subjects/a/versions?deleted=true",
		"/subjects/a/versions/1?deleted=true", "/subjects/a/versions/2", "/subjects/b/versions",
		"/subjects/c/versions", "/schemas/ids/1", "/schemas/ids/4", "/schemas/ids/5",
		"/schemas/ids/1/versions?deleted=true", "/config", "/config/a", "/config/b", "/mode", "/mode/b",
	}
	before := map[string]string{}
	for _, p := range gets {
		status, body := ts.do("GET", p, "")
		before[p] = fmt.Sprint(status, " ", body)
	}
	ts2 := newTestServer(t, log)
	for _, p := range gets {
		status, body := ts2.do("GET", p, "")
		if got := fmt.Sprint(status, " ", body); got != before[p] {
			t.Errorf("GET %s after restart: %s, before: %s", p, got, before[p])
		}
	}
	if before["/subjects/c/versions"][:3] != "404" || before["/mode/b"] != `200 {"mode":"READONLY"}` {
		t.Fatalf("unexpected state before restart: %v", before)
	}
	// Ids continue after the largest ever used, the permanently deleted 5.
	ts2.ok("POST", "/subjects/d/versions", schemaBody(`"double"`), `{"id":6}`)
	ts2.fails("POST", "/subjects/b/versions", schemaBody(`"bytes"`), 42205)
	if err := ts2.srv.Close(); err != nil || !log.closed {
		t.Fatalf("Close: %v, log closed %v", err, log.closed)
	}
	if err := ts2.srv.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestNewErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := New(ctx, Config{}); err == nil {
		t.Error("New without a Log succeeded")
	}
	if _, err := New(ctx, Config{Log: newMemLog(), DefaultCompatibility: "SIDEWAYS"}); !errors.Is(err, ErrInvalidCompatibility) {
		t.Errorf("bad default level: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	log := newMemLog()
	_ = log.Append(ctx, []byte(`{"keytype":"NOOP","magic":0}`), nil)
	if _, err := New(cctx, Config{Log: log}); !errors.Is(err, context.Canceled) {
		t.Errorf("replay with a cancelled context: %v", err)
	}
}

func TestReplaySkipsBadRecords(t *testing.T) {
	log := newMemLog()
	ctx := context.Background()
	add := func(k, v string) {
		var value []byte
		if v != "" {
			value = []byte(v)
		}
		if err := log.Append(ctx, []byte(k), value); err != nil {
			t.Fatal(err)
		}
	}
	add(`{"keytype":"NOOP","magic":0}`, ``)
	add(`garbage`, `garbage`)
	add(`{"keytype":"SCHEMA","subject":"s","version":1,"magic":1}`, `{"subject":"s","version":1,"id":3,"schema":"\"string\"","deleted":false}`)
	add(`{"keytype":"SCHEMA","subject":"s","version":2,"magic":1}`, `{"subject":"s","version":2,"id":4,"schema":"{bad","deleted":false}`)
	add(`{"keytype":"SCHEMA","subject":"s","version":3,"magic":1}`, `{"subject":"s","version":3,"id":3,"schema":"\"int\"","deleted":false}`)
	add(`{"keytype":"SCHEMA","subject":"s","version":4,"magic":1}`, `{"subject":"t","version":4,"id":5,"schema":"\"int\"","deleted":false}`)
	add(`{"keytype":"SCHEMA","subject":"p","version":1,"magic":1}`, `{"subject":"p","version":1,"id":6,"schema":"syntax","schemaType":"PROTOBUF"}`)
	add(`{"keytype":"CONFIG","subject":null,"magic":0}`, `{"compatibilityLevel":"FULL"}`)
	add(`{"keytype":"CONFIG","subject":"s","magic":0}`, `{"compatibilityLevel":"bogus"}`)
	add(`{"keytype":"MODE","subject":"s","magic":0}`, `{"mode":"NAPPING"}`)
	add(`{"keytype":"DELETE_SUBJECT","subject":"s","magic":0}`, `{"subject":"s","version":1}`)
	ts := newTestServer(t, log)
	ts.ok("GET", "/subjects/s/versions", "", `[1]`)
	ts.ok("GET", "/subjects", "", `["s"]`)
	ts.ok("GET", "/config", "", `{"compatibilityLevel":"FULL","compatibility":"FULL"}`)
	ts.fails("GET", "/config/s", "", 40408)
	ts.fails("GET", "/mode/s", "", 40409)
	// The next id follows the largest accepted one.
	ts.ok("PUT", "/config", `{"compatibility":"NONE"}`, `{"compatibility":"NONE"}`)
	ts.ok("POST", "/subjects/s/versions", schemaBody(`"int"`), `{"id":4}`)
	ts.ok("GET", "/subjects/s/versions", "", `[1,2]`)
}

func TestServerConcurrentRegistrations(t *testing.T) {
	ts := newTestServer(t, newMemLog())
	const n = 8
	shared := `{"type":"record","name":"Shared","fields":[{"name":"x","type":"long"}]}`
	var wg sync.WaitGroup
	ids := make([][3]int, n)
	errs := make(chan error, 3*n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			distinct := fmt.Sprintf(`{"type":"record","name":"R%d","fields":[]}`, i)
			for j, req := range []struct{ subject, schema string }{
				{fmt.Sprintf("d-%d", i), distinct},
				{"shared", shared},
				{fmt.Sprintf("d-%d", i+n), shared},
			} {
				r := httptest.NewRequest("POST", "/subjects/"+req.subject+"/versions", strings.NewReader(schemaBody(req.schema)))
				w := httptest.NewRecorder()
				ts.srv.ServeHTTP(w, r)
				var out struct{ ID int }
				if err := json.Unmarshal(w.Body.Bytes(), &out); w.Code != 200 || err != nil {
					errs <- fmt.Errorf("%s: %d %s", req.subject, w.Code, w.Body)
					return
				}
				ids[i][j] = out.ID
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for i := range n {
		if ids[i][1] != ids[0][1] || ids[i][2] != ids[0][1] {
			t.Fatalf("the shared schema got ids %v", ids)
		}
		if seen[ids[i][0]] || ids[i][0] == ids[0][1] {
			t.Fatalf("a distinct schema's id repeats: %v", ids)
		}
		seen[ids[i][0]] = true
	}
	ts.ok("GET", "/subjects/shared/versions", "", `[1]`)
	var all []int
	for id := range seen {
		all = append(all, id)
	}
	all = append(all, ids[0][1])
	slices.Sort(all)
	for i, id := range all {
		if id != i+1 {
			t.Fatalf("ids %v are not 1..%d", all, n+1)
		}
	}
}
