package registry

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// fuzzRoutes are the request targets FuzzRequest picks from: every
// endpoint that reads a body or a path value.
var fuzzRoutes = []struct{ method, path string }{
	{"POST", "/subjects/s/versions"},
	{"POST", "/subjects/s"},
	{"POST", "/compatibility/subjects/s/versions"},
	{"POST", "/compatibility/subjects/s/versions/latest"},
	{"PUT", "/config"},
	{"PUT", "/config/s"},
	{"PUT", "/mode/s"},
	{"DELETE", "/subjects/s/versions/1"},
	{"GET", "/schemas/ids/1"},
}

// FuzzRequest sends an arbitrary body (and path suffix) to each endpoint
// of a registry holding a few schemas: no panic, never a 5xx (the log
// does not fail here), every answer a JSON error body or a success, and
// the state still consistent and equal to a replay of its log.
func FuzzRequest(f *testing.F) {
	f.Add(uint8(0), "", `{"schema":"{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":\"int\",\"default\":0}]}"}`)
	f.Add(uint8(1), "", `{"schema":"\"string\""}`)
	f.Add(uint8(4), "", `{"compatibility":"NONE"}`)
	f.Add(uint8(6), "", `{"mode":"IMPORT"}`)
	f.Add(uint8(0), "", `{"schema":"\"long\"","id":99,"version":5}`)
	f.Add(uint8(2), "", `{"schema":"{\"type\":\"array\",\"items\":\"null\"}"}`)
	f.Add(uint8(7), "%2F..", ``)
	f.Add(uint8(8), "9999999999999", ``)
	f.Fuzz(func(t *testing.T, route uint8, suffix, body string) {
		log := newMemLog()
		ts := newTestServer(t, log)
		ts.ok("POST", "/subjects/s/versions", schemaBody(`{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}`), `{"id":1}`)
		ts.ok("POST", "/subjects/t/versions", schemaBody(`"string"`), `{"id":2}`)

		rt := fuzzRoutes[int(route)%len(fuzzRoutes)]
		path := rt.path
		if strings.ContainsAny(suffix, " \r\n\t#?") || !strings.HasPrefix(path+suffix, "/") {
			suffix = ""
		}
		r := httptest.NewRequest(rt.method, "/", strings.NewReader(body))
		r.URL.RawPath, r.URL.Path = "", path+suffix
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		ts.srv.ServeHTTP(w, r)
		if w.Code >= 500 {
			t.Fatalf("%s %s %q: %d %s", rt.method, path+suffix, body, w.Code, w.Body)
		}
		if w.Code != http.StatusOK && !strings.Contains(w.Body.String(), `"error_code"`) {
			t.Fatalf("%s %s: %d without an error body: %s", rt.method, path+suffix, w.Code, w.Body)
		}
		if err := consistent(ts.srv.st); err != nil {
			t.Fatalf("after %s %s %q: %v", rt.method, path+suffix, body, err)
		}
		replayed := newTestServer(t, log)
		for _, p := range []string{"/subjects?deleted=true", "/subjects/s/versions?deleted=true", "/schemas/ids/1", "/schemas/ids/3", "/config", "/mode/s"} {
			s1, b1 := ts.do("GET", p, "")
			s2, b2 := replayed.do("GET", p, "")
			if s1 != s2 || b1 != b2 {
				t.Fatalf("GET %s after %s %s %q: served %d %s, replayed %d %s", p, rt.method, path+suffix, body, s1, b1, s2, b2)
			}
		}
	})
}
