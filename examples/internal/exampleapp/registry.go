package exampleapp

import (
	"context"
	"io"

	"github.com/eddy-streams/eddy/broker"
	"github.com/eddy-streams/eddy/registry"
)

// startRegistry serves eddy's schema registry for the demo on srv's HTTP
// listener (its schemas in topic registry.DefaultTopic on srv) and returns
// it, to close before srv, and its URL.
func startRegistry(ctx context.Context, srv *broker.Server) (io.Closer, string, error) {
	reg, err := registry.Mount(ctx, srv, registry.Config{})
	if err != nil {
		return nil, "", err
	}
	return reg, "http://" + srv.HTTPAddr(), nil
}
