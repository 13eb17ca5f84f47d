package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"unicode"
	"unicode/utf8"
)

// The registry's modes, as the Confluent REST API spells them.
const (
	modeReadWrite        = "READWRITE"
	modeReadOnly         = "READONLY"
	modeReadOnlyOverride = "READONLY_OVERRIDE"
	modeImport           = "IMPORT"
)

func validMode(m string) bool {
	switch m {
	case modeReadWrite, modeReadOnly, modeReadOnlyOverride, modeImport:
		return true
	}
	return false
}

// Record key types of Confluent's _schemas layout. Only the first three
// change the state; the others are known and skipped.
const (
	keySchema = "SCHEMA"
	keyConfig = "CONFIG"
	keyMode   = "MODE"
)

// maxID bounds schema ids and version numbers: the Confluent wire format
// carries the id in 4 bytes, and clients parse both as 32-bit integers.
const maxID = 1<<31 - 1

// record is one decoded (or to-be-written) record of the log.
type record struct {
	keyType   string // keySchema, keyConfig or keyMode
	subject   string // "" is the global entry for CONFIG and MODE
	version   int    // SCHEMA only
	tombstone bool   // nil value: a permanent delete

	id      int    // SCHEMA
	schema  string // SCHEMA: the compact schema text
	deleted bool   // SCHEMA: soft-deleted

	level Compatibility // CONFIG
	mode  string        // MODE
}

type schemaKey struct {
	KeyType string `json:"keytype"`
	Subject string `json:"subject"`
	Version int    `json:"version"`
	Magic   int    `json:"magic"`
}

type subjectKey struct {
	KeyType string  `json:"keytype"`
	Subject *string `json:"subject"`
	Magic   int     `json:"magic"`
}

type anyKey struct {
	KeyType string  `json:"keytype"`
	Subject *string `json:"subject"`
	Version *int    `json:"version"`
}

type schemaValue struct {
	Subject    string            `json:"subject"`
	Version    int               `json:"version"`
	ID         int               `json:"id"`
	Schema     string            `json:"schema"`
	Deleted    bool              `json:"deleted"`
	SchemaType string            `json:"schemaType,omitempty"`
	References []json.RawMessage `json:"references,omitempty"`
}

type configValue struct {
	CompatibilityLevel string `json:"compatibilityLevel"`
}

type modeValue struct {
	Mode string `json:"mode"`
}

// encode returns the record's key and value in Confluent's _schemas layout;
// the value is nil for a tombstone. Keys are byte-for-byte what Confluent
// writes, so that compaction pairs a tombstone with its record.
func (rec record) encode() (key, value []byte) {
	var k, v any
	switch rec.keyType {
	case keySchema:
		k = schemaKey{KeyType: keySchema, Subject: rec.subject, Version: rec.version, Magic: 1}
		v = schemaValue{Subject: rec.subject, Version: rec.version, ID: rec.id, Schema: rec.schema, Deleted: rec.deleted}
	case keyConfig, keyMode:
		sk := subjectKey{KeyType: rec.keyType}
		if rec.subject != "" {
			s := rec.subject
			sk.Subject = &s
		}
		k = sk
		if rec.keyType == keyConfig {
			v = configValue{CompatibilityLevel: string(rec.level)}
		} else {
			v = modeValue{Mode: rec.mode}
		}
	default:
		panic("registry: encode of unknown record type " + rec.keyType)
	}
	key = mustJSON(k)
	if !rec.tombstone {
		value = mustJSON(v)
	}
	return key, value
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("registry: " + err.Error()) // plain structs of strings and ints
	}
	return b
}

// errSkip marks a record of a key type that does not change the state
// (NOOP, DELETE_SUBJECT, CLEAR_SUBJECT, ...).
var errSkip = errors.New("record type not used by the registry")

// decodeRecord decodes one record of the log. It returns errSkip for key
// types the registry ignores and a descriptive error for anything it cannot
// use. A SCHEMA record's schema must be a valid Avro schema.
func decodeRecord(key, value []byte) (record, error) {
	var k anyKey
	if err := json.Unmarshal(key, &k); err != nil {
		return record{}, fmt.Errorf("key is not a registry key: %w", err)
	}
	rec := record{keyType: k.KeyType, tombstone: value == nil}
	if k.Subject != nil {
		rec.subject = *k.Subject
	}
	switch k.KeyType {
	case keySchema:
		if k.Version == nil || *k.Version < 1 || *k.Version > maxID {
			return record{}, errors.New("SCHEMA key without a valid version")
		}
		rec.version = *k.Version
		if err := validSubject(rec.subject); err != nil {
			return record{}, err
		}
		if rec.tombstone {
			return rec, nil
		}
		var v schemaValue
		if err := json.Unmarshal(value, &v); err != nil {
			return record{}, fmt.Errorf("SCHEMA value: %w", err)
		}
		if v.Subject != rec.subject || v.Version != rec.version {
			return record{}, fmt.Errorf("SCHEMA value for %q version %d under key %q version %d",
				v.Subject, v.Version, rec.subject, rec.version)
		}
		if v.SchemaType != "" && v.SchemaType != "AVRO" {
			return record{}, fmt.Errorf("schema type %q is not supported", v.SchemaType)
		}
		if len(v.References) > 0 {
			return record{}, errors.New("schema references are not supported")
		}
		if v.ID < 1 || v.ID > maxID {
			return record{}, fmt.Errorf("invalid schema id %d", v.ID)
		}
		text, err := compactSchema(v.Schema)
		if err != nil {
			return record{}, err
		}
		rec.id, rec.schema, rec.deleted = v.ID, text, v.Deleted
		return rec, nil
	case keyConfig, keyMode:
		if k.Subject != nil {
			if err := validSubject(rec.subject); err != nil {
				return record{}, err
			}
		}
		if rec.tombstone {
			return rec, nil
		}
		if k.KeyType == keyConfig {
			var v configValue
			if err := json.Unmarshal(value, &v); err != nil {
				return record{}, fmt.Errorf("CONFIG value: %w", err)
			}
			level, err := ParseCompatibility(v.CompatibilityLevel)
			if err != nil {
				return record{}, err
			}
			rec.level = level
			return rec, nil
		}
		var v modeValue
		if err := json.Unmarshal(value, &v); err != nil {
			return record{}, fmt.Errorf("MODE value: %w", err)
		}
		if !validMode(v.Mode) {
			return record{}, fmt.Errorf("invalid mode %q", v.Mode)
		}
		rec.mode = v.Mode
		return rec, nil
	}
	return record{}, errSkip
}

// compactSchema returns the stored form of a schema text, json.Compact of
// it, after checking that it is a valid Avro schema. Two schema texts are
// the same schema for the registry when their stored forms are equal.
func compactSchema(text string) (string, error) {
	if text == "" {
		return "", fmt.Errorf("%w: empty schema", ErrInvalidSchema)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, []byte(text)); err != nil {
		return "", fmt.Errorf("%w: schema is not valid JSON: %w", ErrInvalidSchema, err)
	}
	if _, err := parse(buf.String()); err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalidSchema, err)
	}
	return buf.String(), nil
}

// validSubject refuses subject names the registry does not serve: empty
// ones and ones that are not UTF-8 or hold control characters.
func validSubject(s string) error {
	if s == "" {
		return errors.New("subject name is empty")
	}
	if !utf8.ValidString(s) {
		return errors.New("subject name is not valid UTF-8")
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return fmt.Errorf("subject name %q holds a control character", s)
		}
	}
	return nil
}

// version is one version of a subject.
type version struct {
	id      int
	deleted bool // soft-deleted
}

// schemaEntry is one schema id: its text and how many subject versions use
// it. An id no version uses any more (all permanently deleted) is
// forgotten.
type schemaEntry struct {
	schema string
	refs   int
}

// state is the registry's in-memory state: a function of the records
// applied to it, in order. It is not safe for concurrent use; the Server
// guards it.
type state struct {
	subjects map[string]map[int]version
	ids      map[int]*schemaEntry
	byText   map[string]int // stored schema text → its (smallest) id
	maxID    int            // the largest id ever applied, also of since deleted ones

	configs map[string]Compatibility // "" = global
	modes   map[string]string        // "" = global
}

func newState() *state {
	return &state{
		subjects: map[string]map[int]version{},
		ids:      map[int]*schemaEntry{},
		byText:   map[string]int{},
		configs:  map[string]Compatibility{},
		modes:    map[string]string{},
	}
}

// applyRaw decodes a record of the log and applies it. It returns errSkip
// for records the registry ignores and another error for records it cannot
// use; neither changes the state.
func (st *state) applyRaw(key, value []byte) error {
	rec, err := decodeRecord(key, value)
	if err != nil {
		return err
	}
	if err := st.conflict(rec); err != nil {
		return err
	}
	st.apply(rec)
	return nil
}

// conflict reports whether rec contradicts the state: a SCHEMA record giving
// an id in use a different schema text.
func (st *state) conflict(rec record) error {
	if rec.keyType != keySchema || rec.tombstone {
		return nil
	}
	e := st.ids[rec.id]
	if e == nil || e.schema == rec.schema {
		return nil
	}
	if old, ok := st.subjects[rec.subject][rec.version]; ok && old.id == rec.id && e.refs == 1 {
		return nil // the record replaces the id's only use
	}
	return fmt.Errorf("schema id %d is already used by a different schema", rec.id)
}

// apply changes the state by one record that decodeRecord accepted and
// conflict did not refuse.
func (st *state) apply(rec record) {
	switch rec.keyType {
	case keySchema:
		versions := st.subjects[rec.subject]
		old, had := versions[rec.version]
		if rec.tombstone {
			if had {
				delete(versions, rec.version)
				if len(versions) == 0 {
					delete(st.subjects, rec.subject)
				}
				st.unref(old.id)
			}
			return
		}
		if versions == nil {
			versions = map[int]version{}
			st.subjects[rec.subject] = versions
		}
		versions[rec.version] = version{id: rec.id, deleted: rec.deleted}
		e := st.ids[rec.id]
		if e == nil {
			e = &schemaEntry{schema: rec.schema}
			st.ids[rec.id] = e
		} else if e.schema != rec.schema { // conflict allowed it: the only use is replaced
			st.dropText(rec.id, e.schema)
			e.schema = rec.schema
		}
		if cur, ok := st.byText[rec.schema]; !ok || rec.id < cur {
			st.byText[rec.schema] = rec.id
		}
		e.refs++
		st.maxID = max(st.maxID, rec.id)
		if had {
			st.unref(old.id)
		}
	case keyConfig:
		if rec.tombstone {
			delete(st.configs, rec.subject)
		} else {
			st.configs[rec.subject] = rec.level
		}
	case keyMode:
		if rec.tombstone {
			delete(st.modes, rec.subject)
		} else {
			st.modes[rec.subject] = rec.mode
		}
	}
}

// unref drops one use of id, forgetting the id at the last.
func (st *state) unref(id int) {
	e := st.ids[id]
	e.refs--
	if e.refs > 0 {
		return
	}
	delete(st.ids, id)
	st.dropText(id, e.schema)
}

// dropText unmaps text from id, mapping it to the smallest other id with the
// same text if there is one.
func (st *state) dropText(id int, text string) {
	if st.byText[text] != id {
		return
	}
	delete(st.byText, text)
	for other, e := range st.ids {
		if other != id && e.schema == text {
			if cur, ok := st.byText[text]; !ok || other < cur {
				st.byText[text] = other
			}
		}
	}
}

// versions returns the subject's versions in order: the live ones, and the
// soft-deleted ones too if deleted.
func (st *state) versions(subject string, deleted bool) []int {
	var vs []int
	for v, ver := range st.subjects[subject] {
		if deleted || !ver.deleted {
			vs = append(vs, v)
		}
	}
	slices.Sort(vs)
	return vs
}

// nextVersion is the version a new schema of subject gets: one more than
// the largest version present, soft-deleted ones included.
func (st *state) nextVersion(subject string) int {
	n := 0
	for v := range st.subjects[subject] {
		n = max(n, v)
	}
	return n + 1
}

// schemaOf returns the text of schema id.
func (st *state) schemaOf(id int) string { return st.ids[id].schema }

// findIn returns the latest version of subject holding the schema text (a
// live one, or any if deleted).
func (st *state) findIn(subject, text string, deleted bool) (int, version, bool) {
	best, found := 0, version{}
	for v, ver := range st.subjects[subject] {
		if (deleted || !ver.deleted) && v > best && st.ids[ver.id].schema == text {
			best, found = v, ver
		}
	}
	return best, found, best > 0
}

// compatibility returns the level that applies to subject ("" = the global
// one), falling back to def.
func (st *state) compatibility(subject string, def Compatibility) Compatibility {
	if c, ok := st.configs[subject]; ok && subject != "" {
		return c
	}
	if c, ok := st.configs[""]; ok {
		return c
	}
	return def
}

// mode returns the mode that applies to subject ("" = the global one).
func (st *state) mode(subject string) string {
	if m, ok := st.modes[subject]; ok && subject != "" {
		return m
	}
	if m, ok := st.modes[""]; ok {
		return m
	}
	return modeReadWrite
}
