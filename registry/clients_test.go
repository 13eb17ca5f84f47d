package registry

import (
	"context"
	"errors"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	hregistry "github.com/hamba/avro/v2/registry"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/eddy-streams/eddy/serde/avro"
)

// startHTTP serves a registry on a memLog over HTTP on 127.0.0.1.
func startHTTP(t *testing.T) string {
	t.Helper()
	ts := newTestServer(t, newMemLog())
	hs := httptest.NewServer(ts.srv)
	t.Cleanup(hs.Close)
	return hs.URL
}

func clientCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestHambaClient drives the server with hamba/avro's registry client.
func TestHambaClient(t *testing.T) {
	ctx := clientCtx(t)
	url := startHTTP(t)
	cl, err := hregistry.NewClient(url)
	if err != nil {
		t.Fatal(err)
	}
	id1, _, err := cl.CreateSchema(ctx, "pv-value", pv1)
	if err != nil || id1 != 1 {
		t.Fatalf("CreateSchema v1: %d %v", id1, err)
	}
	if ok, err := cl.IsCompatible(ctx, "pv-value", pv2); err != nil || !ok {
		t.Fatalf("IsCompatible v2: %v %v", ok, err)
	}
	id2, _, err := cl.CreateSchema(ctx, "pv-value", pv2)
	if err != nil || id2 != 2 {
		t.Fatalf("CreateSchema v2: %d %v", id2, err)
	}
	if id, _, err := cl.IsRegistered(ctx, "pv-value", pv1); err != nil || id != id1 {
		t.Fatalf("IsRegistered v1: %d %v", id, err)
	}
	latest, err := cl.GetLatestSchemaInfo(ctx, "pv-value")
	if err != nil || latest.ID != id2 || latest.Version != 2 || latest.Schema.String() != mustParse(t, pv2).String() {
		t.Fatalf("GetLatestSchemaInfo: %+v %v", latest, err)
	}
	if s, err := cl.GetSchemaByVersion(ctx, "pv-value", 1); err != nil || s.Fingerprint() != mustParse(t, pv1).Fingerprint() {
		t.Fatalf("GetSchemaByVersion 1: %v %v", s, err)
	}
	if s, err := cl.GetSchema(ctx, id2); err != nil || s.Fingerprint() != mustParse(t, pv2).Fingerprint() {
		t.Fatalf("GetSchema %d: %v %v", id2, s, err)
	}
	if subjects, err := cl.GetSubjects(ctx); err != nil || !slices.Equal(subjects, []string{"pv-value"}) {
		t.Fatalf("GetSubjects: %v %v", subjects, err)
	}
	if vs, err := cl.GetVersions(ctx, "pv-value"); err != nil || !slices.Equal(vs, []int{1, 2}) {
		t.Fatalf("GetVersions: %v %v", vs, err)
	}

	// An incompatible schema: 409; an invalid one: 42201.
	if ok, err := cl.IsCompatible(ctx, "pv-value", pv3); err != nil || ok {
		t.Fatalf("IsCompatible v3: %v %v", ok, err)
	}
	_, _, err = cl.CreateSchema(ctx, "pv-value", pv3)
	var he hregistry.Error
	if !errors.As(err, &he) || he.Code != 409 || he.StatusCode != 409 {
		t.Fatalf("CreateSchema v3: %#v", err)
	}
	_, _, err = cl.CreateSchema(ctx, "pv-value", `{"type":"record","name":"X"}`)
	if !errors.As(err, &he) || he.Code != 42201 || he.StatusCode != 422 {
		t.Fatalf("CreateSchema invalid: %#v", err)
	}
	_, err = cl.GetLatestSchema(ctx, "nope")
	if !errors.As(err, &he) || he.Code != 40401 {
		t.Fatalf("GetLatestSchema of an unknown subject: %#v", err)
	}

	// Compatibility levels.
	if err := cl.SetCompatibilityLevel(ctx, "pv-value", hregistry.FullCL); err != nil {
		t.Fatal(err)
	}
	if lvl, err := cl.GetCompatibilityLevel(ctx, "pv-value"); err != nil || lvl != hregistry.FullCL {
		t.Fatalf("GetCompatibilityLevel: %q %v", lvl, err)
	}
	if err := cl.SetGlobalCompatibilityLevel(ctx, hregistry.NoneCL); err != nil {
		t.Fatal(err)
	}
	if lvl, err := cl.GetGlobalCompatibilityLevel(ctx); err != nil || lvl != hregistry.NoneCL {
		t.Fatalf("GetGlobalCompatibilityLevel: %q %v", lvl, err)
	}

	// Soft delete: versions listed, subject gone, schemas still served by id.
	if vs, err := cl.DeleteSubject(ctx, "pv-value"); err != nil || !slices.Equal(vs, []int{1, 2}) {
		t.Fatalf("DeleteSubject: %v %v", vs, err)
	}
	if subjects, err := cl.GetSubjects(ctx); err != nil || len(subjects) != 0 {
		t.Fatalf("GetSubjects after delete: %v %v", subjects, err)
	}
	// A fresh client: the first one caches schemas by id.
	cl2, _ := hregistry.NewClient(url)
	if _, err := cl2.GetSchema(ctx, id1); err != nil {
		t.Fatalf("GetSchema of a soft-deleted schema: %v", err)
	}
}

func mustParse(t *testing.T, text string) interface {
	String() string
	Fingerprint() [32]byte
} {
	t.Helper()
	s, err := parse(text)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestFranzClient drives the server with franz-go's pkg/sr client.
func TestFranzClient(t *testing.T) {
	ctx := clientCtx(t)
	cl, err := sr.NewClient(sr.URLs(startHTTP(t)))
	if err != nil {
		t.Fatal(err)
	}
	if types, err := cl.SupportedTypes(ctx); err != nil || !slices.Equal(types, []sr.SchemaType{sr.TypeAvro}) {
		t.Fatalf("SupportedTypes: %v %v", types, err)
	}
	ss1, err := cl.CreateSchema(ctx, "pv-value", sr.Schema{Schema: pv1})
	if err != nil || ss1.ID != 1 || ss1.Version != 1 || ss1.Subject != "pv-value" {
		t.Fatalf("CreateSchema v1: %+v %v", ss1, err)
	}
	res, err := cl.CheckCompatibility(ctx, "pv-value", -1, sr.Schema{Schema: pv2})
	if err != nil || !res.Is {
		t.Fatalf("CheckCompatibility v2: %+v %v", res, err)
	}
	ss2, err := cl.CreateSchema(ctx, "pv-value", sr.Schema{Schema: pv2})
	if err != nil || ss2.ID != 2 || ss2.Version != 2 {
		t.Fatalf("CreateSchema v2: %+v %v", ss2, err)
	}
	got, err := cl.SchemaByVersion(ctx, "pv-value", -1)
	if err != nil || got.ID != 2 || got.Version != 2 || got.Schema.Schema != compact(t, pv2) || got.Type != sr.TypeAvro {
		t.Fatalf("SchemaByVersion latest: %+v %v", got, err)
	}
	found, err := cl.LookupSchema(ctx, "pv-value", sr.Schema{Schema: pv1})
	if err != nil || found.ID != 1 || found.Version != 1 {
		t.Fatalf("LookupSchema v1: %+v %v", found, err)
	}
	byID, err := cl.SchemaByID(ctx, 2)
	if err != nil || byID.Schema != compact(t, pv2) {
		t.Fatalf("SchemaByID: %+v %v", byID, err)
	}
	if text, err := cl.SchemaTextByID(ctx, 1); err != nil || text != compact(t, pv1) {
		t.Fatalf("SchemaTextByID: %q %v", text, err)
	}
	if subjects, err := cl.SubjectsByID(ctx, 1); err != nil || !slices.Equal(subjects, []string{"pv-value"}) {
		t.Fatalf("SubjectsByID: %v %v", subjects, err)
	}
	if subjects, err := cl.Subjects(ctx); err != nil || !slices.Equal(subjects, []string{"pv-value"}) {
		t.Fatalf("Subjects: %v %v", subjects, err)
	}
	if vs, err := cl.SubjectVersions(ctx, "pv-value"); err != nil || !slices.Equal(vs, []int{1, 2}) {
		t.Fatalf("SubjectVersions: %v %v", vs, err)
	}
	if all, err := cl.Schemas(ctx, "pv-value"); err != nil || len(all) != 2 {
		t.Fatalf("Schemas: %v %v", all, err)
	}

	// Errors map to the client's typed errors.
	schemaError := func(err error) *sr.Error {
		var re *sr.ResponseError
		if !errors.As(err, &re) {
			t.Fatalf("not a *sr.ResponseError: %#v", err)
		}
		return re.SchemaError()
	}
	_, err = cl.CreateSchema(ctx, "pv-value", sr.Schema{Schema: pv3})
	if e := schemaError(err); e != sr.ErrIncompatibleSchema {
		t.Fatalf("CreateSchema v3: %v (%v)", e, err)
	}
	_, err = cl.CreateSchema(ctx, "pv-value", sr.Schema{Schema: `{"type":"fixed","name":"F"}`})
	if e := schemaError(err); e != sr.ErrInvalidSchema {
		t.Fatalf("CreateSchema invalid: %v (%v)", e, err)
	}
	_, err = cl.CreateSchema(ctx, "pv-value", sr.Schema{Schema: `{}`, Type: sr.TypeJSON})
	if e := schemaError(err); e != sr.ErrInvalidSchema {
		t.Fatalf("CreateSchema JSON: %v (%v)", e, err)
	}
	_, err = cl.SchemaByVersion(ctx, "pv-value", 9)
	if e := schemaError(err); e != sr.ErrVersionNotFound {
		t.Fatalf("SchemaByVersion 9: %v", e)
	}
	_, err = cl.LookupSchema(ctx, "pv-value", sr.Schema{Schema: pv3})
	if e := schemaError(err); e != sr.ErrSchemaNotFound {
		t.Fatalf("LookupSchema v3: %v", e)
	}
	res, err = cl.CheckCompatibility(ctx, "pv-value", -2, sr.Schema{Schema: pv3})
	if err != nil || res.Is {
		t.Fatalf("CheckCompatibility v3: %+v %v", res, err)
	}

	// Compatibility levels and modes.
	for _, r := range cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatFull}, "pv-value") {
		if r.Err != nil || r.Level != sr.CompatFull {
			t.Fatalf("SetCompatibility: %+v", r)
		}
	}
	for _, r := range cl.Compatibility(ctx, "pv-value", sr.GlobalSubject) {
		want := map[string]sr.CompatibilityLevel{"pv-value": sr.CompatFull, "": sr.CompatBackward}[r.Subject]
		if r.Err != nil || r.Level != want {
			t.Fatalf("Compatibility: %+v", r)
		}
	}
	for _, r := range cl.ResetCompatibility(ctx, "pv-value") {
		if r.Err != nil || r.Level != sr.CompatFull {
			t.Fatalf("ResetCompatibility: %+v", r)
		}
	}
	for _, r := range cl.SetMode(ctx, sr.ModeReadOnly, "pv-value") {
		if r.Err != nil || r.Mode != sr.ModeReadOnly {
			t.Fatalf("SetMode: %+v", r)
		}
	}
	_, err = cl.CreateSchema(ctx, "pv-value", sr.Schema{Schema: pv2})
	if e := schemaError(err); e != sr.ErrOperationNotPermitted {
		// Even re-registering an existing schema is refused.
		t.Fatalf("CreateSchema in READONLY: %v", e)
	}
	for _, r := range cl.ResetMode(ctx, "pv-value") {
		if r.Err != nil || r.Mode != sr.ModeReadOnly {
			t.Fatalf("ResetMode: %+v", r)
		}
	}
	if r := cl.Mode(ctx); r[0].Err != nil || r[0].Mode != sr.ModeReadWrite {
		t.Fatalf("Mode: %+v", r)
	}

	// Delete one version, then the subject, soft then permanently.
	if err := cl.DeleteSchema(ctx, "pv-value", 2, sr.SoftDelete); err != nil {
		t.Fatal(err)
	}
	if err := cl.DeleteSchema(ctx, "pv-value", 2, sr.HardDelete); err != nil {
		t.Fatal(err)
	}
	_, err = cl.DeleteSubject(ctx, "pv-value", sr.HardDelete)
	if e := schemaError(err); e != sr.ErrSubjectNotSoftDeleted {
		t.Fatalf("hard delete of a live subject: %v", e)
	}
	if vs, err := cl.DeleteSubject(ctx, "pv-value", sr.SoftDelete); err != nil || !slices.Equal(vs, []int{1}) {
		t.Fatalf("soft DeleteSubject: %v %v", vs, err)
	}
	_, err = cl.DeleteSubject(ctx, "pv-value", sr.SoftDelete)
	if e := schemaError(err); e != sr.ErrSubjectSoftDeleted {
		t.Fatalf("second soft delete: %v", e)
	}
	if _, err := cl.SchemaByID(ctx, 1); err != nil {
		t.Fatalf("SchemaByID of a soft-deleted schema: %v", err)
	}
	if vs, err := cl.DeleteSubject(ctx, "pv-value", sr.HardDelete); err != nil || !slices.Equal(vs, []int{1}) {
		t.Fatalf("hard DeleteSubject: %v %v", vs, err)
	}
	_, err = cl.SchemaByID(ctx, 1)
	if e := schemaError(err); e != sr.ErrSchemaNotFound {
		t.Fatalf("SchemaByID after the hard delete: %v", e)
	}
	_, err = cl.SubjectVersions(ctx, "pv-value")
	if e := schemaError(err); e != sr.ErrSubjectNotFound {
		t.Fatalf("SubjectVersions after the hard delete: %v", e)
	}
}

// TestAvroSerdeThroughServer round-trips records with eddy's Avro serde,
// registering its schemas on the server, across a schema evolution.
func TestAvroSerdeThroughServer(t *testing.T) {
	url := startHTTP(t)
	reg, err := avro.NewRegistryClient(url)
	if err != nil {
		t.Fatal(err)
	}
	type view1 struct {
		User string `avro:"user"`
	}
	type view2 struct {
		User     string `avro:"user"`
		Referrer string `avro:"referrer"`
	}
	s1, err := avro.Serde[view1](reg, pv1, avro.AutoRegister())
	if err != nil {
		t.Fatal(err)
	}
	b1, err := s1.Serialize("pageviews", view1{User: "ann"})
	if err != nil {
		t.Fatal(err)
	}
	if b1[0] != 0 || b1[4] != 1 {
		t.Fatalf("wire header % x, want magic 0 and schema id 1", b1[:5])
	}
	s2, err := avro.Serde[view2](reg, pv2, avro.AutoRegister())
	if err != nil {
		t.Fatal(err)
	}
	// v2 reads v1 data, filling the default.
	if v, err := s2.Deserialize("pageviews", b1); err != nil || v != (view2{User: "ann"}) {
		t.Fatalf("v2 reading v1: %+v %v", v, err)
	}
	b2, err := s2.Serialize("pageviews", view2{User: "bob", Referrer: "search"})
	if err != nil {
		t.Fatal(err)
	}
	if b2[4] != 2 {
		t.Fatalf("v2 records carry schema id %d, want 2", b2[4])
	}
	if v, err := s1.Deserialize("pageviews", b2); err != nil || v != (view1{User: "bob"}) {
		t.Fatalf("v1 reading v2: %+v %v", v, err)
	}
	// An incompatible schema cannot auto-register.
	s3, err := avro.Serde[view2](reg, pv3, avro.AutoRegister())
	if err == nil {
		_, err = s3.Serialize("pageviews", view2{User: "cy"})
	}
	if err == nil {
		t.Fatal("an incompatible schema registered")
	}
	cl, _ := sr.NewClient(sr.URLs(url))
	if vs, err := cl.SubjectVersions(context.Background(), "pageviews-value"); err != nil || !slices.Equal(vs, []int{1, 2}) {
		t.Fatalf("versions of pageviews-value: %v %v", vs, err)
	}
}
