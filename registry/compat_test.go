package registry

import (
	"errors"
	"strings"
	"testing"

	"github.com/hamba/avro/v2"
)

// Schemas of one subject, "User", in the shapes Confluent's docs use to
// explain each mode.
const (
	userV1 = `{"type":"record","name":"User","namespace":"eddy.test","fields":[
		{"name":"id","type":"int"}]}`
	// userWithDefault adds a field with a default to userV1.
	userWithDefault = `{"type":"record","name":"User","namespace":"eddy.test","fields":[
		{"name":"id","type":"int"},
		{"name":"email","type":"string","default":""}]}`
	// userNoDefault adds a field without a default to userV1.
	userNoDefault = `{"type":"record","name":"User","namespace":"eddy.test","fields":[
		{"name":"id","type":"int"},
		{"name":"email","type":"string"}]}`
	// userIDLong promotes id from int to long.
	userIDLong = `{"type":"record","name":"User","namespace":"eddy.test","fields":[
		{"name":"id","type":"long"}]}`
	userEmpty = `{"type":"record","name":"User","namespace":"eddy.test","fields":[]}`
	// userRenamed has the same shape as userV1 under another record name.
	userRenamed = `{"type":"record","name":"Account","namespace":"eddy.test","fields":[
		{"name":"id","type":"int"}]}`
)

func TestParseCompatibility(t *testing.T) {
	for _, name := range []string{"NONE", "BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD",
		"FORWARD_TRANSITIVE", "FULL", "FULL_TRANSITIVE"} {
		c, err := ParseCompatibility(name)
		if err != nil || c.String() != name {
			t.Errorf("ParseCompatibility(%q) = %q, %v", name, c, err)
		}
	}
	for _, name := range []string{"", "backward", "Full", "BACKWARDS", " NONE", "FULL_TRANSITIVE "} {
		c, err := ParseCompatibility(name)
		if !errors.Is(err, ErrInvalidCompatibility) || c != "" {
			t.Errorf("ParseCompatibility(%q) = %q, %v; want ErrInvalidCompatibility", name, c, err)
		}
	}
	if DefaultCompatibility != Backward {
		t.Errorf("default is %s, want BACKWARD", DefaultCompatibility)
	}
}

func TestCheck(t *testing.T) {
	all := []Compatibility{None, Backward, BackwardTransitive, Forward, ForwardTransitive, Full, FullTransitive}
	cases := []struct {
		name      string
		candidate string
		previous  []string
		// compatible lists the modes under which candidate is accepted;
		// it is rejected under all the others.
		compatible []Compatibility
	}{
		{
			name:       "no previous schema: everything is compatible",
			candidate:  userNoDefault,
			compatible: all,
		},
		{
			name:       "identical schema is compatible under every mode",
			candidate:  userV1,
			previous:   []string{userV1},
			compatible: all,
		},
		{
			name:       "adding a field with a default is backward and forward compatible",
			candidate:  userWithDefault,
			previous:   []string{userV1},
			compatible: all,
		},
		{
			name:       "adding a field without a default is forward but not backward compatible",
			candidate:  userNoDefault,
			previous:   []string{userV1},
			compatible: []Compatibility{None, Forward, ForwardTransitive},
		},
		{
			name:       "removing a field without a default is backward but not forward compatible",
			candidate:  userV1,
			previous:   []string{userNoDefault},
			compatible: []Compatibility{None, Backward, BackwardTransitive},
		},
		{
			name:       "removing a field with a default is fully compatible",
			candidate:  userV1,
			previous:   []string{userWithDefault},
			compatible: all,
		},
		{
			name:       "promoting int to long is backward compatible",
			candidate:  userIDLong,
			previous:   []string{userV1},
			compatible: []Compatibility{None, Backward, BackwardTransitive},
		},
		{
			name:       "narrowing long to int is not backward compatible",
			candidate:  userV1,
			previous:   []string{userIDLong},
			compatible: []Compatibility{None, Forward, ForwardTransitive},
		},
		{
			name:       "renaming the record is incompatible both ways",
			candidate:  userRenamed,
			previous:   []string{userV1},
			compatible: []Compatibility{None},
		},
		{
			name:       "changing a primitive type is incompatible both ways",
			candidate:  `"string"`,
			previous:   []string{`"int"`},
			compatible: []Compatibility{None},
		},
		{
			// v1 {id, email:string} → v2 {id} drops email (backward
			// compatible) → v3 {id, email:int with a default} re-adds it
			// with another type. Against v2 both directions hold: v3 fills
			// email from its default and v2 ignores it. Against v1, email
			// is a string one way and an int the other: neither side can
			// read the other's data.
			name:       "v3 compatible with v2 but not v1 passes non-transitive modes and fails transitive ones",
			candidate:  `{"type":"record","name":"User","namespace":"eddy.test","fields":[{"name":"id","type":"int"},{"name":"email","type":"int","default":0}]}`,
			previous:   []string{userNoDefault, userV1},
			compatible: []Compatibility{None, Backward, Forward, Full},
		},
		{
			name:      "full transitive: each direction fails against a different old schema",
			candidate: userWithDefault,
			previous:  []string{userIDLong, userV1},
			// userWithDefault.id is an int: it cannot read v1's longs
			// (backward fails vs v1) but v1 can read its ints (forward holds).
			compatible: []Compatibility{None, Backward, Forward, Full, ForwardTransitive},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, mode := range all {
				msgs, err := Check(mode, tc.candidate, tc.previous)
				if err != nil {
					t.Fatalf("%s: unexpected error %v", mode, err)
				}
				want := contains(tc.compatible, mode)
				if got := len(msgs) == 0; got != want {
					t.Errorf("%s: compatible = %v, want %v; messages %q", mode, got, want, msgs)
				}
				if len(msgs) > 0 && msgs[len(msgs)-1] != "{compatibility: '"+string(mode)+"'}" {
					t.Errorf("%s: last message %q does not name the mode", mode, msgs[len(msgs)-1])
				}
			}
		})
	}
}

func contains(list []Compatibility, c Compatibility) bool {
	for _, x := range list {
		if x == c {
			return true
		}
	}
	return false
}

func TestCheckMessages(t *testing.T) {
	msgs, err := Check(Full, userNoDefault, []string{userV1})
	if err != nil {
		t.Fatal(err)
	}
	// Backward fails (email has no default, v1 data lacks it); forward holds.
	if len(msgs) != 3 {
		t.Fatalf("messages %q, want description, oldSchema, compatibility", msgs)
	}
	if !strings.Contains(msgs[0], "the new schema cannot read data written with the old schema") ||
		!strings.Contains(msgs[0], "email") {
		t.Errorf("description %q does not say the new schema cannot read old data for field email", msgs[0])
	}
	if msgs[1] != "{oldSchema: '"+userV1+"'}" {
		t.Errorf("oldSchema message %q", msgs[1])
	}

	msgs, err = Check(Forward, userV1, []string{userNoDefault})
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 3 || !strings.Contains(msgs[0], "the old schema cannot read data written with the new schema") {
		t.Errorf("forward messages %q", msgs)
	}

	// Transitive: one description and one oldSchema per failing schema,
	// newest first.
	msgs, err = Check(BackwardTransitive, userV1, []string{userIDLong, userRenamed})
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 5 || msgs[1] != "{oldSchema: '"+userRenamed+"'}" || msgs[3] != "{oldSchema: '"+userIDLong+"'}" {
		t.Errorf("transitive messages %q", msgs)
	}
}

func TestCheckInvalid(t *testing.T) {
	cases := []struct {
		name      string
		mode      Compatibility
		candidate string
		previous  []string
		want      error
	}{
		{"candidate is not JSON", Backward, `{"type":`, nil, ErrInvalidSchema},
		{"candidate is a bare word", Backward, `int`, nil, ErrInvalidSchema},
		{"candidate has an unknown type", None, `{"type":"integer"}`, nil, ErrInvalidSchema},
		{"record without fields", Backward, `{"type":"record","name":"R"}`, nil, ErrInvalidSchema},
		{"duplicate field", Backward, `{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"a","type":"int"}]}`, nil, ErrInvalidSchema},
		{"reference to an undefined name", Backward, `{"type":"array","items":"eddy.test.User"}`, nil, ErrInvalidSchema},
		{"invalid last previous schema", Backward, userV1, []string{"{"}, ErrInvalidSchema},
		{"invalid old previous schema, transitive", BackwardTransitive, userV1, []string{"{", userV1}, ErrInvalidSchema},
		{"unknown mode", "backward", userV1, nil, ErrInvalidCompatibility},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			msgs, err := Check(tc.mode, tc.candidate, tc.previous)
			if !errors.Is(err, tc.want) || msgs != nil {
				t.Errorf("Check = %q, %v; want error wrapping %v", msgs, err, tc.want)
			}
		})
	}
	// Non-transitive modes never look at older schemas.
	if msgs, err := Check(Backward, userV1, []string{"{", userV1}); err != nil || len(msgs) != 0 {
		t.Errorf("Backward with an invalid older schema = %q, %v; want compatible", msgs, err)
	}
}

// TestParseIsolated proves each schema is parsed on its own: hamba's
// avro.Parse keeps every named type in a global cache, where v1 and v2 of the
// same record name would collide or leak into each other.
func TestParseIsolated(t *testing.T) {
	// Put v2 of eddy.test.User into hamba's global cache.
	if _, err := avro.Parse(userNoDefault); err != nil {
		t.Fatal(err)
	}
	v1, err := parse(userV1)
	if err != nil {
		t.Fatal(err)
	}
	v2, err := parse(userNoDefault)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(v1.(*avro.RecordSchema).Fields()); n != 1 {
		t.Errorf("v1 has %d fields, want 1", n)
	}
	if n := len(v2.(*avro.RecordSchema).Fields()); n != 2 {
		t.Errorf("v2 has %d fields, want 2", n)
	}
	// A bare reference resolves through the global cache, not through ours.
	ref := `{"type":"array","items":"eddy.test.User"}`
	if _, err := avro.Parse(ref); err != nil {
		t.Fatalf("global parse of the reference: %v (the test premise is wrong)", err)
	}
	if _, err := parse(ref); err == nil {
		t.Error("parse resolved a name defined by another schema")
	}
}

// FuzzCheck feeds arbitrary schema texts to Check: it must return messages
// or an error, never panic.
// FuzzCheck's seeds are also checked in under testdata/fuzz/FuzzCheck.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{userV1, userWithDefault, userNoDefault, userIDLong, userEmpty, userRenamed,
		`"int"`, `["null","string"]`, `{"type":"enum","name":"E","symbols":["A","B"],"default":"A"}`,
		`{"type":"fixed","name":"F","size":4}`, `{"type":"map","values":"long"}`,
		`{"type":"record","name":"L","fields":[{"name":"next","type":["null","L"]}]}`, `{`} {
		f.Add(s, userV1)
	}
	f.Fuzz(func(t *testing.T, candidate, previous string) {
		msgs, err := Check(FullTransitive, candidate, []string{previous, userV1})
		if err != nil && msgs != nil {
			t.Fatalf("both messages and error: %q, %v", msgs, err)
		}
	})
}
