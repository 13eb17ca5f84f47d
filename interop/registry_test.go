package interop

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/registry"
)

// pyStep is one line of testdata/pyregistry.py's output.
type pyStep struct {
	Step   string          `json:"step"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		HTTP int `json:"http"`
		Code int `json:"code"`
	} `json:"error"`
}

// TestPythonSchemaRegistryClient drives eddy's schema registry, its schemas
// kept in a compacted topic of the target cluster, with Confluent's own
// client (confluent_kafka.schema_registry): register, evolve, check
// compatibility, look up, configure, delete, and the error codes the
// client surfaces for an incompatible and an invalid schema and for things
// not found.
func TestPythonSchemaRegistryClient(t *testing.T) {
	py := pythonWith(t, "confluent_kafka.schema_registry")
	c := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	log, err := registry.NewKafkaLog(ctx, []string{c.Addr()}, registry.DefaultTopic)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := registry.New(ctx, registry.Config{Log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)

	out := runCmd(t, 2*time.Minute, nil, py, "testdata/pyregistry.py", hs.URL, "page-views-value")
	steps := map[string]pyStep{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var s pyStep
		if err := json.Unmarshal([]byte(line), &s); err != nil {
			t.Fatalf("bad output line %q: %v", line, err)
		}
		steps[s.Step] = s
	}
	result := func(step string, want any) {
		t.Helper()
		s, ok := steps[step]
		switch {
		case !ok:
			t.Errorf("%s: no output", step)
		case s.Error != nil:
			t.Errorf("%s: error %+v, want %v", step, *s.Error, want)
		default:
			var got, w any
			wb, _ := json.Marshal(want)
			_ = json.Unmarshal(wb, &w)
			if err := json.Unmarshal(s.Result, &got); err != nil || !reflect.DeepEqual(got, w) {
				t.Errorf("%s: got %s, want %s", step, s.Result, wb)
			}
		}
	}
	failed := func(step string, http, code int) {
		t.Helper()
		s, ok := steps[step]
		switch {
		case !ok:
			t.Errorf("%s: no output", step)
		case s.Error == nil:
			t.Errorf("%s: succeeded with %s, want error %d/%d", step, s.Result, http, code)
		case s.Error.HTTP != http || s.Error.Code != code:
			t.Errorf("%s: error %d/%d, want %d/%d", step, s.Error.HTTP, s.Error.Code, http, code)
		}
	}
	v1 := map[string]any{"type": "record", "name": "PageView", "namespace": "shop", "fields": []any{
		map[string]any{"name": "user", "type": "string"}, map[string]any{"name": "page", "type": "string"}}}
	v2 := map[string]any{"type": "record", "name": "PageView", "namespace": "shop", "fields": []any{
		map[string]any{"name": "user", "type": "string"}, map[string]any{"name": "page", "type": "string"},
		map[string]any{"name": "referrer", "type": "string", "default": ""}}}

	result("register-v1", 1)
	result("register-v1-again", 1)
	result("compatible-v2", true)
	result("register-v2", 2)
	result("compatible-v3", false)
	failed("register-v3", 409, 409)
	failed("register-invalid", 422, 42201)
	result("latest", map[string]any{"id": 2, "subject": "page-views-value", "version": 2, "schema": v2})
	result("version-1", map[string]any{"id": 1, "subject": "page-views-value", "version": 1, "schema": v1})
	result("lookup-v2", map[string]any{"id": 2, "subject": "page-views-value", "version": 2, "schema": v2})
	result("schema-by-id-1", v1)
	result("subjects", []string{"page-views-value"})
	result("versions", []int{1, 2})
	result("get-compatibility", "FULL")
	result("global-compatibility", "BACKWARD")
	result("compatible-v3-full", false)
	result("delete-version-2", 2)
	result("versions-after-delete", []int{1})
	result("delete-subject-permanent", []int{1})
	failed("delete-subject-again", 404, 40401)
	failed("latest-after-delete", 404, 40401)
	failed("unknown-id", 404, 40403)
	if t.Failed() {
		t.Logf("client output:\n%s", out)
	}
}
