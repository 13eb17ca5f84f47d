package avro

import (
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

// TestExternalRegistryByURL runs the serde against a registry it reaches
// only by URL and did not write: franz-go's srfake, a third-party
// implementation of the Confluent REST API. Auto-registration, the subject
// strategies, evolution and an unknown id behave as against eddy's own.
func TestExternalRegistryByURL(t *testing.T) {
	ext := srfake.New(srfake.WithGlobalCompat(sr.CompatBackward))
	t.Cleanup(ext.Close)
	reg, err := NewRegistryClient(ext.URL())
	if err != nil {
		t.Fatal(err)
	}

	// v1 writer, auto-registered under the TopicName subject.
	w1 := mustSerde[userV1T](t, reg, userV1, AutoRegister())
	b1, err := w1.Serialize("users", userV1T{A: "ann", B: 7})
	if err != nil {
		t.Fatal(err)
	}
	got, ok := ext.GetSchema("users-value", 1)
	if !ok {
		t.Fatal("users-value v1 not registered in the external registry")
	}
	if id := int(b1[1])<<24 | int(b1[2])<<16 | int(b1[3])<<8 | int(b1[4]); id != got.ID {
		t.Fatalf("record carries id %d, the registry gave %d", id, got.ID)
	}

	// v2 (a field with a default) evolves the subject; a v2 reader reads
	// v1 records with the default, a v1 reader reads v2 records.
	w2 := mustSerde[userV2T](t, reg, userV2, AutoRegister())
	b2, err := w2.Serialize("users", userV2T{A: "bob", B: 8, C: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ext.GetSchema("users-value", 2); !ok {
		t.Fatal("users-value v2 not registered")
	}
	r2 := mustSerde[userV2T](t, reg, userV2)
	if v, err := r2.Deserialize("users", b1); err != nil || v != (userV2T{A: "ann", B: 7, C: "none"}) {
		t.Fatalf("v2 reader on a v1 record: %+v, %v", v, err)
	}
	r1 := mustSerde[userV1T](t, reg, userV1)
	if v, err := r1.Deserialize("users", b2); err != nil || v != (userV1T{A: "bob", B: 8}) {
		t.Fatalf("v1 reader on a v2 record: %+v, %v", v, err)
	}

	// RecordName registers under the record's full name.
	rn := mustSerde[userV1T](t, reg, userV1, AutoRegister(), SubjectStrategy(RecordName))
	if _, err := rn.Serialize("other-topic", userV1T{A: "c"}); err != nil {
		t.Fatal(err)
	}
	if !ext.SubjectExists("com.example.User") {
		t.Fatal("RecordName did not register com.example.User")
	}

	// Without auto-registration an unregistered subject is an error.
	plain := mustSerde[userV1T](t, reg, userV1)
	if _, err := plain.Serialize("nobody", userV1T{A: "d"}); !errors.Is(err, ErrUnknownSchema) {
		t.Fatalf("unregistered subject: %v, want ErrUnknownSchema", err)
	}

	// An id the registry does not know.
	bad := append([]byte{0, 0, 0, 0x30, 0x39}, b1[5:]...)
	if _, err := r1.Deserialize("users", bad); !errors.Is(err, ErrUnknownSchema) {
		t.Fatalf("unknown id: %v, want ErrUnknownSchema", err)
	}
}
