package avro

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/twmb/franz-go/pkg/sr"
)

// Registry is the part of a Confluent-compatible schema registry that the
// Avro serde needs. Implementations must be safe for concurrent use.
//
// When the registry does not know the schema id (SchemaByID) or the
// schema under the subject (Lookup), the error must wrap [ErrUnknownSchema];
// any other error (network, authorization, server failure) must not, so
// callers can tell a bad record from an unavailable registry.
type Registry interface {
	// SchemaByID returns the text of the schema registered under id.
	SchemaByID(ctx context.Context, id int) (string, error)
	// Register registers schema under subject, or finds it if it is
	// already registered there, and returns its id.
	Register(ctx context.Context, subject, schema string) (int, error)
	// Lookup returns the id of schema if it is registered under subject.
	Lookup(ctx context.Context, subject, schema string) (int, error)
}

// srRegistry implements Registry over franz-go's schema registry client.
type srRegistry struct{ cl *sr.Client }

// NewRegistryClient returns a Registry that talks to the Confluent-compatible
// schema registry (Confluent Schema Registry, Redpanda, Karapace, Apicurio
// in its Confluent mode, or eddy's own) at the given base URLs, tried in
// order. For TLS, authentication or other settings, build an *sr.Client
// and use [NewRegistry].
func NewRegistryClient(urls ...string) (Registry, error) {
	if len(urls) == 0 {
		return nil, errors.New("avro: registry client: no URLs")
	}
	cl, err := sr.NewClient(sr.URLs(urls...))
	if err != nil {
		return nil, fmt.Errorf("avro: registry client: %w", err)
	}
	return srRegistry{cl: cl}, nil
}

// NewRegistry returns a Registry backed by a franz-go schema registry
// client.
func NewRegistry(cl *sr.Client) Registry { return srRegistry{cl: cl} }

// SchemaByID fetches GET /schemas/ids/{id}. Only Avro schemas without
// references are accepted.
func (r srRegistry) SchemaByID(ctx context.Context, id int) (string, error) {
	s, err := r.cl.SchemaByID(ctx, id)
	if err != nil {
		return "", srError(fmt.Sprintf("schema id %d", id), err)
	}
	if s.Type != sr.TypeAvro {
		return "", fmt.Errorf("avro: schema id %d has type %s, not AVRO", id, s.Type)
	}
	if len(s.References) > 0 {
		return "", fmt.Errorf("avro: schema id %d uses schema references, which are not supported", id)
	}
	return s.Schema, nil
}

// Register posts to /subjects/{subject}/versions.
func (r srRegistry) Register(ctx context.Context, subject, schema string) (int, error) {
	id, err := r.cl.RegisterSchema(ctx, subject, sr.Schema{Schema: schema}, -1, -1)
	if err != nil {
		return 0, srError(fmt.Sprintf("register under subject %q", subject), err)
	}
	return id, nil
}

// Lookup posts to /subjects/{subject}.
func (r srRegistry) Lookup(ctx context.Context, subject, schema string) (int, error) {
	ss, err := r.cl.LookupSchema(ctx, subject, sr.Schema{Schema: schema})
	if err != nil {
		return 0, srError(fmt.Sprintf("lookup under subject %q", subject), err)
	}
	return ss.ID, nil
}

// srError maps a registry 404 (subject, version or schema not found) to
// ErrUnknownSchema and keeps the registry's message.
func srError(what string, err error) error {
	var re *sr.ResponseError
	if errors.As(err, &re) && re.StatusCode == http.StatusNotFound {
		return fmt.Errorf("avro: registry: %s: %w (%d %s)", what, ErrUnknownSchema, re.ErrorCode, re.Error())
	}
	return fmt.Errorf("avro: registry: %s: %w", what, err)
}
