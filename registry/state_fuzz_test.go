package registry

import (
	"fmt"
	"reflect"
	"testing"
)

// fuzzBaseline is the state FuzzApply applies its input on top of.
var fuzzBaseline = [][2]string{
	{`{"keytype":"SCHEMA","subject":"s","version":1,"magic":1}`, `{"subject":"s","version":1,"id":1,"schema":"\"string\"","deleted":false}`},
	{`{"keytype":"SCHEMA","subject":"s","version":2,"magic":1}`, `{"subject":"s","version":2,"id":2,"schema":"{\"type\":\"record\",\"name\":\"R\",\"fields\":[]}","deleted":true}`},
	{`{"keytype":"SCHEMA","subject":"t","version":1,"magic":1}`, `{"subject":"t","version":1,"id":1,"schema":"\"string\"","deleted":false}`},
	{`{"keytype":"CONFIG","subject":null,"magic":0}`, `{"compatibilityLevel":"FULL"}`},
	{`{"keytype":"MODE","subject":"s","magic":0}`, `{"mode":"READONLY"}`},
}

// FuzzApply feeds arbitrary records to the decoder and the state: no
// panics, a decoded record survives an encode/decode round trip, and the
// state stays consistent whatever is applied, as a record, as a tombstone
// and again. An empty value stands for a tombstone.
func FuzzApply(f *testing.F) {
	f.Add([]byte(fuzzBaseline[0][0]), []byte(fuzzBaseline[0][1]))
	f.Fuzz(func(t *testing.T, key, value []byte) {
		if len(value) == 0 {
			value = nil
		}
		st := newState()
		for _, r := range fuzzBaseline {
			if err := st.applyRaw([]byte(r[0]), []byte(r[1])); err != nil {
				t.Fatalf("baseline record %s: %v", r[0], err)
			}
		}
		if err := consistent(st); err != nil {
			t.Fatalf("baseline: %v", err)
		}

		if rec, err := decodeRecord(key, value); err == nil {
			k, v := rec.encode()
			again, err := decodeRecord(k, v)
			if err != nil || !reflect.DeepEqual(rec, again) {
				t.Fatalf("round trip of %+v: %+v, %v", rec, again, err)
			}
		}
		for _, v := range [][]byte{value, nil, value} {
			_ = st.applyRaw(key, v)
			if err := consistent(st); err != nil {
				t.Fatalf("after %q = %q: %v", key, v, err)
			}
		}
	})
}

// consistent checks the state's invariants: every version's id is known,
// every id's use count is right and no id is unused, byText maps each text
// to its smallest id, maxID bounds the ids, levels and modes are valid.
func consistent(st *state) error {
	uses := map[int]int{}
	for subject, vs := range st.subjects {
		if len(vs) == 0 {
			return fmt.Errorf("subject %q without versions", subject)
		}
		if validSubject(subject) != nil {
			return fmt.Errorf("invalid subject %q", subject)
		}
		for v, ver := range vs {
			if v < 1 || v > maxID {
				return fmt.Errorf("subject %q version %d", subject, v)
			}
			if st.ids[ver.id] == nil {
				return fmt.Errorf("subject %q version %d: unknown id %d", subject, v, ver.id)
			}
			uses[ver.id]++
		}
	}
	smallest := map[string]int{}
	for id, e := range st.ids {
		if e.refs != uses[id] || e.refs < 1 {
			return fmt.Errorf("id %d: refs %d, used %d times", id, e.refs, uses[id])
		}
		if id > st.maxID || id < 1 {
			return fmt.Errorf("id %d out of range (max %d)", id, st.maxID)
		}
		if cur, ok := smallest[e.schema]; !ok || id < cur {
			smallest[e.schema] = id
		}
		if _, err := parse(e.schema); err != nil {
			return fmt.Errorf("id %d: invalid schema: %v", id, err)
		}
	}
	if !reflect.DeepEqual(smallest, st.byText) {
		return fmt.Errorf("byText %v, want %v", st.byText, smallest)
	}
	for s, c := range st.configs {
		if !c.valid() {
			return fmt.Errorf("config %q: %q", s, c)
		}
	}
	for s, m := range st.modes {
		if !validMode(m) {
			return fmt.Errorf("mode %q: %q", s, m)
		}
	}
	return nil
}
