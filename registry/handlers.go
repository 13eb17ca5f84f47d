package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// contentType is the media type of every response.
const contentType = "application/vnd.schemaregistry.v1+json"

// appendTimeout bounds one Log.Append. The append does not follow the
// request's context: a client that goes away must not leave a record in the
// log that the server did not apply.
const appendTimeout = 30 * time.Second

// apiError is an error answer: HTTP status, Confluent error code, message.
type apiError struct {
	status int
	code   int
	msg    string
}

// errorf returns the error with Confluent code code. The HTTP status is the
// code's first three digits (40401 → 404); codes of three digits are their
// own status (409, 413, 415).
func errorf(code int, format string, args ...any) *apiError {
	status := code
	for status >= 1000 {
		status /= 10
	}
	return &apiError{status: status, code: code, msg: fmt.Sprintf(format, args...)}
}

// The Confluent error codes the server answers with.
const (
	codeBadRequest         = 400
	codeIncompatible       = 409 // Confluent's INCOMPATIBLE_SCHEMA, what clients map
	codeTooLarge           = 413
	codeUnsupportedMedia   = 415
	codeSubjectNotFound    = 40401
	codeVersionNotFound    = 40402
	codeSchemaNotFound     = 40403
	codeSubjectSoftDeleted = 40404
	codeSubjectNotSoftDel  = 40405
	codeVersionSoftDeleted = 40406
	codeVersionNotSoftDel  = 40407
	codeConfigNotSet       = 40408
	codeModeNotSet         = 40409
	codeInvalidSchema      = 42201
	codeInvalidVersion     = 42202
	codeInvalidCompat      = 42203
	codeInvalidMode        = 42204
	codeNotPermitted       = 42205
	codeIDMismatch         = 42207
	codeInvalidSubject     = 42208
	codeStore              = 50001
)

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil { // only raw schema texts could fail, and they are valid JSON
		status, b = http.StatusInternalServerError, mustJSON(map[string]any{"error_code": 50000, "message": err.Error()})
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func writeError(w http.ResponseWriter, e *apiError) {
	writeJSON(w, e.status, map[string]any{"error_code": e.code, "message": e.msg})
}

// handler is one endpoint: it returns the response body or an error.
type handler func(r *http.Request) (any, *apiError)

// acceptedTypes are the request content types the server reads bodies of.
var acceptedTypes = []string{
	"application/vnd.schemaregistry.v1+json",
	"application/vnd.schemaregistry+json",
	"application/json",
	"application/octet-stream",
}

func (s *Server) handle(pattern string, h handler) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost || r.Method == http.MethodPut {
			if ct := r.Header.Get("Content-Type"); ct != "" {
				mt, _, err := mime.ParseMediaType(ct)
				if err != nil || !slices.Contains(acceptedTypes, mt) {
					writeError(w, errorf(codeUnsupportedMedia, "Content-Type %q is not supported; use %s", ct, contentType))
					return
				}
			}
			r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
		}
		body, e := h(r)
		if e != nil {
			writeError(w, e)
			return
		}
		writeJSON(w, http.StatusOK, body)
	})
}

func (s *Server) routes() {
	s.handle("GET /{$}", func(*http.Request) (any, *apiError) { return struct{}{}, nil })
	s.handle("GET /schemas/types", func(*http.Request) (any, *apiError) { return []string{"AVRO"}, nil })
	s.handle("GET /contexts", func(*http.Request) (any, *apiError) { return []string{"."}, nil })

	s.handle("GET /subjects", s.getSubjects)
	s.handle("POST /subjects/{subject}", s.lookupSchema)
	s.handle("DELETE /subjects/{subject}", s.deleteSubject)
	s.handle("GET /subjects/{subject}/versions", s.getVersions)
	s.handle("POST /subjects/{subject}/versions", s.register)
	s.handle("GET /subjects/{subject}/versions/{version}", s.getVersion)
	s.handle("GET /subjects/{subject}/versions/{version}/schema", s.getVersionSchema)
	s.handle("GET /subjects/{subject}/versions/{version}/referencedby", s.getReferencedBy)
	s.handle("DELETE /subjects/{subject}/versions/{version}", s.deleteVersion)

	s.handle("GET /schemas/ids/{id}", s.getSchemaByID)
	s.handle("GET /schemas/ids/{id}/schema", s.getSchemaTextByID)
	s.handle("GET /schemas/ids/{id}/versions", s.getIDVersions)
	s.handle("GET /schemas/ids/{id}/subjects", s.getIDSubjects)

	s.handle("GET /config", s.getConfig)
	s.handle("PUT /config", s.putConfig)
	s.handle("DELETE /config", s.deleteConfig)
	s.handle("GET /config/{subject}", s.getConfig)
	s.handle("PUT /config/{subject}", s.putConfig)
	s.handle("DELETE /config/{subject}", s.deleteConfig)

	s.handle("POST /compatibility/subjects/{subject}/versions", s.checkCompatibility)
	s.handle("POST /compatibility/subjects/{subject}/versions/{version}", s.checkCompatibility)

	s.handle("GET /mode", s.getMode)
	s.handle("PUT /mode", s.putMode)
	s.handle("DELETE /mode", s.deleteMode)
	s.handle("GET /mode/{subject}", s.getMode)
	s.handle("PUT /mode/{subject}", s.putMode)
	s.handle("DELETE /mode/{subject}", s.deleteMode)
}

// readBody decodes the JSON request body into v. A body that is empty or
// not JSON is answered with badCode.
func readBody(r *http.Request, v any, badCode int) *apiError {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return errorf(codeTooLarge, "request body is larger than the limit of %d bytes", tooLarge.Limit)
		}
		return errorf(codeBadRequest, "reading the request body: %v", err)
	}
	if len(b) == 0 {
		return errorf(badCode, "the request body is empty")
	}
	if err := json.Unmarshal(b, v); err != nil {
		return errorf(badCode, "the request body is not valid JSON for this request: %v", err)
	}
	return nil
}

// flag reports whether the query parameter name is true.
func flag(r *http.Request, name string) bool {
	b, _ := strconv.ParseBool(r.URL.Query().Get(name))
	return b
}

// subjectParam returns the path's subject, refusing invalid names.
func subjectParam(r *http.Request) (string, *apiError) {
	subject := r.PathValue("subject")
	if err := validSubject(subject); err != nil {
		return "", errorf(codeInvalidSubject, "Invalid subject: %v", err)
	}
	return subject, nil
}

// latest stands for the "latest" version (also spelled -1).
const latest = -1

// versionParam parses the path's version: a positive number, "latest" or -1.
func versionParam(r *http.Request) (int, *apiError) {
	raw := r.PathValue("version")
	if raw == "latest" {
		return latest, nil
	}
	v, err := strconv.Atoi(raw)
	if err != nil || v == 0 || v < latest || v > maxID {
		return 0, errorf(codeInvalidVersion,
			"The specified version '%s' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\"", raw)
	}
	return v, nil
}

// resolveVersion finds version v (or the latest) of subject among the live
// versions, or among all if deleted. The caller holds mu or writeMu.
func (s *Server) resolveVersion(subject string, v int, deleted bool) (int, version, *apiError) {
	vs := s.st.versions(subject, deleted)
	if len(vs) == 0 {
		return 0, version{}, subjectNotFound(subject)
	}
	if v == latest {
		v = vs[len(vs)-1]
	} else if !slices.Contains(vs, v) {
		return 0, version{}, errorf(codeVersionNotFound, "Version %d not found.", v)
	}
	return v, s.st.subjects[subject][v], nil
}

func subjectNotFound(subject string) *apiError {
	return errorf(codeSubjectNotFound, "Subject '%s' not found.", subject)
}

// schemaRequest is the body of registration, lookup and compatibility
// requests.
type schemaRequest struct {
	Schema     string            `json:"schema"`
	SchemaType string            `json:"schemaType"`
	References []json.RawMessage `json:"references"`
	ID         int               `json:"id"`
	Version    int               `json:"version"`
}

// readSchema reads a schema request and returns it with the schema's stored
// form, refusing other types than AVRO, references and invalid schemas.
func readSchema(r *http.Request) (schemaRequest, string, *apiError) {
	var req schemaRequest
	if e := readBody(r, &req, codeInvalidSchema); e != nil {
		return req, "", e
	}
	if req.SchemaType != "" && req.SchemaType != "AVRO" {
		return req, "", errorf(codeInvalidSchema, "Invalid schema: schema type %s is not supported; this registry serves AVRO only", req.SchemaType)
	}
	if len(req.References) > 0 {
		return req, "", errorf(codeInvalidSchema, "Invalid schema: schema references are not supported")
	}
	text, err := compactSchema(req.Schema)
	if err != nil {
		return req, "", errorf(codeInvalidSchema, "Invalid schema: %v", strings.TrimPrefix(err.Error(), "registry: invalid schema: "))
	}
	return req, text, nil
}

type subjectSchema struct {
	Subject string `json:"subject"`
	ID      int    `json:"id"`
	Version int    `json:"version"`
	Schema  string `json:"schema"`
}

type subjectVersion struct {
	Subject string `json:"subject"`
	Version int    `json:"version"`
}

// commit appends recs to the log one by one, applying each once it is
// durable. The caller holds writeMu. A failed append is answered with
// 50001; the records before it stay applied (they are in the log).
func (s *Server) commit(r *http.Request, recs ...record) *apiError {
	for _, rec := range recs {
		key, value := rec.encode()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), appendTimeout)
		err := s.cfg.Log.Append(ctx, key, value)
		cancel()
		if err != nil {
			s.log.Error("registry: appending to the log failed", "key", string(key), "error", err)
			return errorf(codeStore, "Error while writing to the schema log: %v", err)
		}
		s.mu.Lock()
		s.st.apply(rec)
		s.mu.Unlock()
	}
	return nil
}

func (s *Server) getSubjects(r *http.Request) (any, *apiError) {
	deleted, prefix := flag(r, "deleted"), r.URL.Query().Get("subjectPrefix")
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []string{}
	for subject := range s.st.subjects {
		if strings.HasPrefix(subject, prefix) && len(s.st.versions(subject, deleted)) > 0 {
			out = append(out, subject)
		}
	}
	slices.Sort(out)
	return out, nil
}

func (s *Server) getVersions(r *http.Request) (any, *apiError) {
	subject := r.PathValue("subject")
	s.mu.RLock()
	defer s.mu.RUnlock()
	vs := s.st.versions(subject, flag(r, "deleted"))
	if len(vs) == 0 {
		return nil, subjectNotFound(subject)
	}
	return vs, nil
}

// findVersion resolves the path's subject and version for a read.
func (s *Server) findVersion(r *http.Request) (subjectSchema, *apiError) {
	subject := r.PathValue("subject")
	v, e := versionParam(r)
	if e != nil {
		return subjectSchema{}, e
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, ver, e := s.resolveVersion(subject, v, flag(r, "deleted"))
	if e != nil {
		return subjectSchema{}, e
	}
	return subjectSchema{Subject: subject, ID: ver.id, Version: v, Schema: s.st.schemaOf(ver.id)}, nil
}

func (s *Server) getVersion(r *http.Request) (any, *apiError) {
	ss, e := s.findVersion(r)
	if e != nil {
		return nil, e
	}
	return ss, nil
}

func (s *Server) getVersionSchema(r *http.Request) (any, *apiError) {
	ss, e := s.findVersion(r)
	if e != nil {
		return nil, e
	}
	return json.RawMessage(ss.Schema), nil
}

// getReferencedBy answers []: schema references are not supported, so no
// schema refers to another.
func (s *Server) getReferencedBy(r *http.Request) (any, *apiError) {
	if _, e := s.findVersion(r); e != nil {
		return nil, e
	}
	return []int{}, nil
}

// register is POST /subjects/{subject}/versions.
func (s *Server) register(r *http.Request) (any, *apiError) {
	subject, e := subjectParam(r)
	if e != nil {
		return nil, e
	}
	if e := s.writable(subject); e != nil {
		return nil, e
	}
	req, text, e := readSchema(r)
	if e != nil {
		return nil, e
	}

	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	st := s.st
	mode := st.mode(subject)
	if e := s.writable(subject); e != nil {
		return nil, e
	}
	importing := mode == modeImport
	if !importing && (req.ID > 0 || req.Version > 0) {
		return nil, errorf(codeNotPermitted, "Operation not permitted: a schema id or version may only be given in IMPORT mode; subject '%s' is in mode %s", subject, mode)
	}
	if req.ID > maxID || req.Version > maxID {
		return nil, errorf(codeInvalidSchema, "Invalid schema: id and version must be at most 2^31-1")
	}

	if req.Version > 0 {
		if old, ok := st.subjects[subject][req.Version]; ok {
			if st.schemaOf(old.id) == text && (req.ID <= 0 || req.ID == old.id) {
				return map[string]int{"id": old.id}, nil
			}
			return nil, errorf(codeNotPermitted, "Operation not permitted: version %d of subject '%s' already exists with a different schema or id", req.Version, subject)
		}
	} else if _, ver, ok := st.findIn(subject, text, false); ok {
		if req.ID > 0 && req.ID != ver.id {
			return nil, errorf(codeIDMismatch, "Schema already registered under subject '%s' with id %d, not %d", subject, ver.id, req.ID)
		}
		return map[string]int{"id": ver.id}, nil
	}

	if !importing {
		level := st.compatibility(subject, s.cfg.DefaultCompatibility)
		msgs, err := Check(level, text, s.liveSchemas(subject))
		if err != nil {
			s.log.Error("registry: compatibility check failed", "subject", subject, "error", err)
			return nil, errorf(codeStore, "Compatibility check failed: %v", err)
		}
		if len(msgs) > 0 {
			return nil, errorf(codeIncompatible, "Schema being registered is incompatible with an earlier schema for subject \"%s\", details: [%s]", subject, strings.Join(msgs, ", "))
		}
	}

	id, known := st.byText[text]
	if req.ID > 0 {
		if e := st.ids[req.ID]; e != nil && e.schema != text {
			return nil, errorf(codeIDMismatch, "Schema id %d is already used by a different schema", req.ID)
		}
		if known && id != req.ID {
			return nil, errorf(codeIDMismatch, "The schema is already registered with id %d, not %d", id, req.ID)
		}
		id = req.ID
	} else if !known {
		if st.maxID >= maxID {
			return nil, errorf(codeStore, "Schema ids are exhausted")
		}
		id = st.maxID + 1
	}
	v := req.Version
	if v <= 0 {
		v = st.nextVersion(subject)
		if v > maxID {
			return nil, errorf(codeStore, "Versions of subject '%s' are exhausted", subject)
		}
	}
	if e := s.commit(r, record{keyType: keySchema, subject: subject, version: v, id: id, schema: text}); e != nil {
		return nil, e
	}
	s.log.Debug("registry: schema registered", "subject", subject, "version", v, "id", id)
	return map[string]int{"id": id}, nil
}

// writable refuses writes to subject's schemas in the read-only modes.
func (s *Server) writable(subject string) *apiError {
	s.mu.RLock()
	mode := s.st.mode(subject)
	s.mu.RUnlock()
	if mode == modeReadOnly || mode == modeReadOnlyOverride {
		return errorf(codeNotPermitted, "Subject '%s' is in read-only mode", subject)
	}
	return nil
}

// liveSchemas returns the texts of subject's live versions, oldest first.
func (s *Server) liveSchemas(subject string) []string {
	var texts []string
	for _, v := range s.st.versions(subject, false) {
		texts = append(texts, s.st.schemaOf(s.st.subjects[subject][v].id))
	}
	return texts
}

// lookupSchema is POST /subjects/{subject}.
func (s *Server) lookupSchema(r *http.Request) (any, *apiError) {
	subject := r.PathValue("subject")
	_, text, e := readSchema(r)
	if e != nil {
		return nil, e
	}
	deleted := flag(r, "deleted")
	s.mu.RLock()
	defer s.mu.RUnlock()
	if len(s.st.versions(subject, deleted)) == 0 {
		return nil, subjectNotFound(subject)
	}
	v, ver, ok := s.st.findIn(subject, text, false)
	if !ok && deleted {
		v, ver, ok = s.st.findIn(subject, text, true)
	}
	if !ok {
		return nil, errorf(codeSchemaNotFound, "Schema not found under subject '%s'", subject)
	}
	return subjectSchema{Subject: subject, ID: ver.id, Version: v, Schema: text}, nil
}

// deleteSubject is DELETE /subjects/{subject}[?permanent=true].
func (s *Server) deleteSubject(r *http.Request) (any, *apiError) {
	subject := r.PathValue("subject")
	if e := s.writable(subject); e != nil {
		return nil, e
	}
	permanent := flag(r, "permanent")
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	all := s.st.versions(subject, true)
	if len(all) == 0 {
		return nil, subjectNotFound(subject)
	}
	live := s.st.versions(subject, false)
	var recs []record
	if permanent {
		if len(live) > 0 {
			return nil, errorf(codeSubjectNotSoftDel, "Subject '%s' was not deleted first before being permanently deleted", subject)
		}
		for _, v := range all {
			recs = append(recs, record{keyType: keySchema, subject: subject, version: v, tombstone: true})
		}
	} else {
		if len(live) == 0 {
			return nil, errorf(codeSubjectSoftDeleted, "Subject '%s' was soft deleted. Set permanent=true to delete permanently", subject)
		}
		for _, v := range live {
			recs = append(recs, s.softDeleted(subject, v))
		}
		all = live
	}
	if e := s.commit(r, recs...); e != nil {
		return nil, e
	}
	return all, nil
}

func (s *Server) softDeleted(subject string, v int) record {
	id := s.st.subjects[subject][v].id
	return record{keyType: keySchema, subject: subject, version: v, id: id, schema: s.st.schemaOf(id), deleted: true}
}

// deleteVersion is DELETE /subjects/{subject}/versions/{version}[?permanent=true].
func (s *Server) deleteVersion(r *http.Request) (any, *apiError) {
	subject := r.PathValue("subject")
	v, e := versionParam(r)
	if e != nil {
		return nil, e
	}
	if e := s.writable(subject); e != nil {
		return nil, e
	}
	permanent := flag(r, "permanent")
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if len(s.st.versions(subject, true)) == 0 {
		return nil, subjectNotFound(subject)
	}
	if !permanent && v != latest {
		if ver, ok := s.st.subjects[subject][v]; ok && ver.deleted {
			return nil, errorf(codeVersionSoftDeleted, "Subject '%s' Version %d was soft deleted. Set permanent=true to delete permanently", subject, v)
		}
	}
	// Soft deletes find the version among the live ones, permanent ones
	// among all ("latest" is then the highest present).
	v, ver, e := s.resolveVersion(subject, v, permanent)
	if e != nil {
		return nil, e
	}
	rec := record{keyType: keySchema, subject: subject, version: v, tombstone: true}
	if !permanent {
		rec = s.softDeleted(subject, v)
	} else if !ver.deleted {
		return nil, errorf(codeVersionNotSoftDel, "Subject '%s' Version %d was not deleted first before being permanently deleted", subject, v)
	}
	if e := s.commit(r, rec); e != nil {
		return nil, e
	}
	return v, nil
}

// idParam parses the path's schema id; a malformed one is an unknown one.
func idParam(r *http.Request) (int, *apiError) {
	raw := r.PathValue("id")
	id, err := strconv.Atoi(raw)
	if err != nil || id < 1 || id > maxID {
		return 0, errorf(codeSchemaNotFound, "Schema %s not found", raw)
	}
	return id, nil
}

// schemaByID returns the text of id. Ids used only by soft-deleted
// versions are served too: consumers still read data written with them.
// The caller holds mu.
func (s *Server) schemaByID(r *http.Request) (int, string, *apiError) {
	id, e := idParam(r)
	if e != nil {
		return 0, "", e
	}
	entry := s.st.ids[id]
	if entry == nil {
		return 0, "", errorf(codeSchemaNotFound, "Schema %d not found", id)
	}
	return id, entry.schema, nil
}

func (s *Server) getSchemaByID(r *http.Request) (any, *apiError) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, text, e := s.schemaByID(r)
	if e != nil {
		return nil, e
	}
	return map[string]string{"schema": text}, nil
}

func (s *Server) getSchemaTextByID(r *http.Request) (any, *apiError) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, text, e := s.schemaByID(r)
	if e != nil {
		return nil, e
	}
	return json.RawMessage(text), nil
}

// idUses returns the subject versions using the path's id, by subject then
// version: the live ones, and the soft-deleted ones too with ?deleted=true.
func (s *Server) idUses(r *http.Request) ([]subjectVersion, *apiError) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	id, _, e := s.schemaByID(r)
	if e != nil {
		return nil, e
	}
	deleted := flag(r, "deleted")
	out := []subjectVersion{}
	for subject, vs := range s.st.subjects {
		for v, ver := range vs {
			if ver.id == id && (deleted || !ver.deleted) {
				out = append(out, subjectVersion{Subject: subject, Version: v})
			}
		}
	}
	slices.SortFunc(out, func(a, b subjectVersion) int {
		if c := strings.Compare(a.Subject, b.Subject); c != 0 {
			return c
		}
		return a.Version - b.Version
	})
	return out, nil
}

func (s *Server) getIDVersions(r *http.Request) (any, *apiError) {
	uses, e := s.idUses(r)
	if e != nil {
		return nil, e
	}
	return uses, nil
}

func (s *Server) getIDSubjects(r *http.Request) (any, *apiError) {
	uses, e := s.idUses(r)
	if e != nil {
		return nil, e
	}
	out := []string{}
	for _, u := range uses {
		if len(out) == 0 || out[len(out)-1] != u.Subject {
			out = append(out, u.Subject)
		}
	}
	return out, nil
}

// configBody is the compatibility level in answers: Confluent's GET field
// compatibilityLevel, and also compatibility, which PUT uses and some
// clients (hamba/avro's) read on GET too.
func configBody(level Compatibility) map[string]string {
	return map[string]string{"compatibilityLevel": string(level), "compatibility": string(level)}
}

// getConfig is GET /config and GET /config/{subject}[?defaultToGlobal=true].
func (s *Server) getConfig(r *http.Request) (any, *apiError) {
	subject := r.PathValue("subject")
	s.mu.RLock()
	defer s.mu.RUnlock()
	if subject != "" && !flag(r, "defaultToGlobal") {
		level, ok := s.st.configs[subject]
		if !ok {
			return nil, errorf(codeConfigNotSet, "Subject '%s' does not have subject-level compatibility configured", subject)
		}
		return configBody(level), nil
	}
	return configBody(s.st.compatibility(subject, s.cfg.DefaultCompatibility)), nil
}

// putConfig is PUT /config and PUT /config/{subject}.
func (s *Server) putConfig(r *http.Request) (any, *apiError) {
	subject := r.PathValue("subject")
	if subject != "" {
		if _, e := subjectParam(r); e != nil {
			return nil, e
		}
	}
	var req struct {
		Compatibility string `json:"compatibility"`
	}
	if e := readBody(r, &req, codeBadRequest); e != nil {
		return nil, e
	}
	level, err := ParseCompatibility(req.Compatibility)
	if err != nil {
		return nil, errorf(codeInvalidCompat, "Invalid compatibility level %q; valid values are NONE, BACKWARD, BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE, FULL, FULL_TRANSITIVE", req.Compatibility)
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if e := s.commit(r, record{keyType: keyConfig, subject: subject, level: level}); e != nil {
		return nil, e
	}
	return map[string]string{"compatibility": string(level)}, nil
}

// deleteConfig is DELETE /config (back to the server's default) and
// DELETE /config/{subject} (back to the global level). Both answer the level
// in force before; a subject without its own level is 40408.
func (s *Server) deleteConfig(r *http.Request) (any, *apiError) {
	subject := r.PathValue("subject")
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	prev, ok := s.st.configs[subject]
	if !ok {
		if subject != "" {
			return nil, errorf(codeConfigNotSet, "Subject '%s' does not have subject-level compatibility configured", subject)
		}
		return configBody(s.cfg.DefaultCompatibility), nil
	}
	if e := s.commit(r, record{keyType: keyConfig, subject: subject, tombstone: true}); e != nil {
		return nil, e
	}
	return configBody(prev), nil
}

// checkCompatibility is POST /compatibility/subjects/{subject}/versions[/{version}][?verbose=true].
func (s *Server) checkCompatibility(r *http.Request) (any, *apiError) {
	subject := r.PathValue("subject")
	withVersion := r.PathValue("version") != ""
	v := 0
	if withVersion {
		var e *apiError
		if v, e = versionParam(r); e != nil {
			return nil, e
		}
	}
	_, text, e := readSchema(r)
	if e != nil {
		return nil, e
	}
	s.mu.RLock()
	level := s.st.compatibility(subject, s.cfg.DefaultCompatibility)
	var previous []string
	if withVersion {
		_, ver, e := s.resolveVersion(subject, v, false)
		if e != nil {
			s.mu.RUnlock()
			return nil, e
		}
		previous = []string{s.st.schemaOf(ver.id)}
	} else {
		previous = s.liveSchemas(subject)
	}
	s.mu.RUnlock()
	msgs, err := Check(level, text, previous)
	if err != nil {
		return nil, errorf(codeInvalidSchema, "Invalid schema: %v", err)
	}
	out := map[string]any{"is_compatible": len(msgs) == 0}
	if flag(r, "verbose") {
		if msgs == nil {
			msgs = []string{}
		}
		out["messages"] = msgs
	}
	return out, nil
}

// getMode is GET /mode and GET /mode/{subject}[?defaultToGlobal=true].
func (s *Server) getMode(r *http.Request) (any, *apiError) {
	subject := r.PathValue("subject")
	s.mu.RLock()
	defer s.mu.RUnlock()
	if subject != "" && !flag(r, "defaultToGlobal") {
		m, ok := s.st.modes[subject]
		if !ok {
			return nil, errorf(codeModeNotSet, "Subject '%s' does not have subject-level mode configured", subject)
		}
		return map[string]string{"mode": m}, nil
	}
	return map[string]string{"mode": s.st.mode(subject)}, nil
}

// putMode is PUT /mode and PUT /mode/{subject}[?force=true]. IMPORT mode
// may only be entered where no schemas are registered (the registry, or the
// subject), unless force=true.
func (s *Server) putMode(r *http.Request) (any, *apiError) {
	subject := r.PathValue("subject")
	if subject != "" {
		if _, e := subjectParam(r); e != nil {
			return nil, e
		}
	}
	var req struct {
		Mode string `json:"mode"`
	}
	if e := readBody(r, &req, codeBadRequest); e != nil {
		return nil, e
	}
	if !validMode(req.Mode) {
		return nil, errorf(codeInvalidMode, "Invalid mode %q; valid values are READWRITE, READONLY, READONLY_OVERRIDE, IMPORT", req.Mode)
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if req.Mode == modeImport && !flag(r, "force") {
		empty := len(s.st.subjects) == 0
		if subject != "" {
			empty = len(s.st.subjects[subject]) == 0
		}
		if !empty {
			return nil, errorf(codeNotPermitted, "Cannot import since found existing subjects; set force=true to import anyway")
		}
	}
	if e := s.commit(r, record{keyType: keyMode, subject: subject, mode: req.Mode}); e != nil {
		return nil, e
	}
	return map[string]string{"mode": req.Mode}, nil
}

// deleteMode is DELETE /mode (back to READWRITE) and DELETE /mode/{subject}
// (back to the global mode). Both answer the mode in force before; a
// subject without its own mode is 40409.
func (s *Server) deleteMode(r *http.Request) (any, *apiError) {
	subject := r.PathValue("subject")
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	prev, ok := s.st.modes[subject]
	if !ok {
		if subject != "" {
			return nil, errorf(codeModeNotSet, "Subject '%s' does not have subject-level mode configured", subject)
		}
		return map[string]string{"mode": modeReadWrite}, nil
	}
	if e := s.commit(r, record{keyType: keyMode, subject: subject, tombstone: true}); e != nil {
		return nil, e
	}
	return map[string]string{"mode": prev}, nil
}
