package registry

import (
	"context"
	"errors"

	"github.com/eddy-streams/eddy/broker"
)

// Mount starts a registry on the started broker srv and serves it at "/"
// on srv's HTTP listener, beside /metrics. Without cfg.Log, the registry
// keeps its records in topic [DefaultTopic] on srv itself (a Log from
// [NewKafkaLog] on srv.Addr(), closed if Mount fails); so schema ids and
// versions survive a restart on the same data directory.
//
// Close the returned Server before closing srv. Mount can be called once
// per broker: a second one would mount "/" twice, which panics.
func Mount(ctx context.Context, srv *broker.Server, cfg Config) (*Server, error) {
	if srv == nil || srv.Addr() == "" {
		return nil, errors.New("registry: mount: the broker is not started")
	}
	if srv.HTTPAddr() == "" {
		return nil, errors.New("registry: mount: the broker has no HTTP listener")
	}
	owned := cfg.Log == nil
	if owned {
		l, err := NewKafkaLog(ctx, []string{srv.Addr()}, DefaultTopic)
		if err != nil {
			return nil, err
		}
		cfg.Log = l
	}
	s, err := New(ctx, cfg)
	if err != nil {
		if owned {
			cfg.Log.Close()
		}
		return nil, err
	}
	srv.Handle("/", s)
	return s, nil
}
