package avro

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
)

// fakeRegistry is a test fake of a Confluent schema registry: an in-memory
// store of schemas with the three endpoints franz-go's sr client calls for
// the serde. It is also a Registry itself, for tests (fuzzing) that should
// not go through HTTP. It counts the calls it serves.
type fakeRegistry struct {
	mu       sync.Mutex
	schemas  []string         // id-1 -> schema text
	subjects map[string][]int // subject -> ids, in version order
	calls    map[string]int   // "byid", "register", "lookup" -> count
}

func newFakeRegistry() *fakeRegistry {
	return &fakeRegistry{subjects: map[string][]int{}, calls: map[string]int{}}
}

// serve starts an HTTP server for f on 127.0.0.1 and returns a Registry
// client for it, through franz-go's sr client.
func (f *fakeRegistry) serve(t testing.TB) Registry {
	t.Helper()
	srv := httptest.NewServer(f.handler())
	t.Cleanup(srv.Close)
	reg, err := NewRegistryClient(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

func (f *fakeRegistry) count(call string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[call]
}

func (f *fakeRegistry) SchemaByID(_ context.Context, id int) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["byid"]++
	if id < 1 || id > len(f.schemas) {
		return "", fmt.Errorf("fake: id %d: %w", id, ErrUnknownSchema)
	}
	return f.schemas[id-1], nil
}

func (f *fakeRegistry) Register(_ context.Context, subject, schema string) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["register"]++
	id := 0
	for i, s := range f.schemas {
		if s == schema {
			id = i + 1
		}
	}
	if id == 0 {
		f.schemas = append(f.schemas, schema)
		id = len(f.schemas)
	}
	for _, have := range f.subjects[subject] {
		if have == id {
			return id, nil
		}
	}
	f.subjects[subject] = append(f.subjects[subject], id)
	return id, nil
}

func (f *fakeRegistry) Lookup(_ context.Context, subject, schema string) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["lookup"]++
	for _, id := range f.subjects[subject] {
		if f.schemas[id-1] == schema {
			return id, nil
		}
	}
	return 0, fmt.Errorf("fake: subject %q: %w", subject, ErrUnknownSchema)
}

// handler serves GET /schemas/ids/{id}, POST /subjects/{s}/versions and
// POST /subjects/{s} with the Confluent JSON bodies and error codes.
func (f *fakeRegistry) handler() http.Handler {
	mux := http.NewServeMux()
	reply := func(w http.ResponseWriter, status int, v any) {
		w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	notFound := func(w http.ResponseWriter, code int, msg string) {
		reply(w, http.StatusNotFound, map[string]any{"error_code": code, "message": msg})
	}
	body := func(w http.ResponseWriter, r *http.Request) (string, bool) {
		var req struct {
			Schema string `json:"schema"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			reply(w, http.StatusUnprocessableEntity, map[string]any{"error_code": 42201, "message": err.Error()})
			return "", false
		}
		return req.Schema, true
	}
	mux.HandleFunc("GET /schemas/ids/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.Atoi(r.PathValue("id"))
		if err != nil {
			notFound(w, 40403, "Schema not found")
			return
		}
		s, err := f.SchemaByID(r.Context(), id)
		if err != nil {
			notFound(w, 40403, "Schema "+strconv.Itoa(id)+" not found")
			return
		}
		reply(w, http.StatusOK, map[string]any{"schema": s})
	})
	mux.HandleFunc("POST /subjects/{s}/versions", func(w http.ResponseWriter, r *http.Request) {
		schema, ok := body(w, r)
		if !ok {
			return
		}
		id, _ := f.Register(r.Context(), r.PathValue("s"), schema)
		reply(w, http.StatusOK, map[string]any{"id": id})
	})
	mux.HandleFunc("POST /subjects/{s}", func(w http.ResponseWriter, r *http.Request) {
		schema, ok := body(w, r)
		if !ok {
			return
		}
		subject := r.PathValue("s")
		id, err := f.Lookup(r.Context(), subject, schema)
		if err != nil {
			notFound(w, 40403, "Schema not found")
			return
		}
		reply(w, http.StatusOK, map[string]any{"subject": subject, "id": id, "version": 1, "schema": schema})
	})
	return mux
}
