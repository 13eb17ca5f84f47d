package broker

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// checkAlive asserts a fresh client still gets answers.
func checkAlive(t *testing.T, s *Server) {
	t.Helper()
	c := dialRaw(t, s)
	req := kmsg.NewPtrApiVersionsRequest()
	c.send(req, 7)
	resp := req.ResponseKind()
	if corr := c.recv(resp); corr != 7 {
		t.Fatalf("correlation id %d", corr)
	}
}

func TestBadFramesCloseOnlyThatConnection(t *testing.T) {
	s := startServer(t, func(c *Config) { c.MaxRequestBytes = 4096 })
	bystander := dialRaw(t, s)
	cases := map[string][]byte{
		"garbage body":      append([]byte{0, 0, 0, 6}, 0xde, 0xad, 0xbe, 0xef, 0x00, 0x01),
		"short header":      {0, 0, 0, 2, 0, 3},
		"negative size":     {0xff, 0xff, 0xff, 0xf0},
		"oversized":         binary.BigEndian.AppendUint32(nil, 4097),
		"unknown api key":   frame(kbin.AppendNullableString(kbin.AppendInt32(kbin.AppendInt16(kbin.AppendInt16(nil, 999), 0), 1), nil)),
		"unsupported ver":   frame(kbin.AppendNullableString(kbin.AppendInt32(kbin.AppendInt16(kbin.AppendInt16(nil, 3), 99), 1), nil)),
		"truncated request": frame(kbin.AppendArrayLen(kbin.AppendNullableString(kbin.AppendInt32(kbin.AppendInt16(kbin.AppendInt16(nil, 3), 1), 1), nil), 5)),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			c := dialRaw(t, s)
			if _, err := c.nc.Write(b); err != nil {
				t.Fatal(err)
			}
			c.expectClosed()
			checkAlive(t, s)
		})
	}
	// The connection opened before the bad frames is untouched.
	req := kmsg.NewPtrMetadataRequest()
	bystander.send(req, 1)
	bystander.recv(req.ResponseKind())
}

// frame prefixes b with its size.
func frame(b []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...)
}

func TestApiVersions(t *testing.T) {
	s := startServer(t)
	for _, v := range []int16{0, 1, 2, 3, 4} {
		c := dialRaw(t, s)
		req := kmsg.NewPtrApiVersionsRequest()
		req.Version = v
		req.ClientSoftwareName, req.ClientSoftwareVersion = "raw", "1"
		c.send(req, 42)
		resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
		if corr := c.recv(resp); corr != 42 || resp.ErrorCode != 0 {
			t.Fatalf("v%d: corr %d code %d", v, corr, resp.ErrorCode)
		}
		got := map[int16][2]int16{}
		for _, k := range resp.ApiKeys {
			got[k.ApiKey] = [2]int16{k.MinVersion, k.MaxVersion}
		}
		for _, want := range coreAPIs {
			if got[want.key] != [2]int16{want.min, want.max} {
				t.Fatalf("v%d: key %d advertised %v", v, want.key, got[want.key])
			}
		}
		for _, k := range []int16{17, 36} { // SASL: not advertised yet
			if _, ok := got[k]; ok {
				t.Fatalf("key %d advertised", k)
			}
		}
	}
	// KIP-511: an unknown version gets a v0 answer with UNSUPPORTED_VERSION
	// and the key list.
	c := dialRaw(t, s)
	hdr := kbin.AppendNullableString(kbin.AppendInt32(kbin.AppendInt16(kbin.AppendInt16(nil, 18), 77), 9), nil)
	hdr = append(hdr, 0, 1, 2, 3) // a body from the future
	if _, err := c.nc.Write(frame(hdr)); err != nil {
		t.Fatal(err)
	}
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 0
	if corr := c.recv(resp); corr != 9 || resp.ErrorCode != kerr.UnsupportedVersion.Code || len(resp.ApiKeys) == 0 {
		t.Fatalf("unknown version: corr %d code %d keys %d", corr, resp.ErrorCode, len(resp.ApiKeys))
	}
	// The connection stays usable.
	req := kmsg.NewPtrApiVersionsRequest()
	c.send(req, 10)
	c.recv(req.ResponseKind())
}

func TestPipelinedRequestsAnsweredInOrder(t *testing.T) {
	s := startServer(t)
	c := dialRaw(t, s)
	var buf []byte
	f := kmsg.NewRequestFormatter()
	reqs := []kmsg.Request{kmsg.NewPtrMetadataRequest(), kmsg.NewPtrApiVersionsRequest(), kmsg.NewPtrDescribeClusterRequest(), kmsg.NewPtrMetadataRequest()}
	reqs[3].SetVersion(4)
	for i, r := range reqs {
		if r.GetVersion() == 0 && r.Key() != 18 {
			r.SetVersion(r.MaxVersion())
			if lo, hi, _ := s.apis.versions(r.Key()); r.GetVersion() > hi {
				r.SetVersion(max(lo, hi))
			}
		}
		buf = append(buf, f.AppendRequest(nil, r, int32(100+i))...) // AppendRequest sizes from dst[0]
	}
	if _, err := c.nc.Write(buf); err != nil {
		t.Fatal(err)
	}
	for i, r := range reqs {
		resp := r.ResponseKind()
		if corr := c.recv(resp); corr != int32(100+i) {
			t.Fatalf("response %d has correlation id %d", i, corr)
		}
	}
}

func TestMetricsEndpoint(t *testing.T) {
	s := startServer(t)
	cl := newClient(t, s)
	produceN(t, cl, "metered", 10)
	consumeN(t, s, "metered", 10)
	resp, err := http.Get("http://" + s.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	body := string(b)
	for _, want := range []string{
		`eddy_requests_total{api="Produce",error="NONE"}`,
		`eddy_request_duration_seconds_bucket{api="Fetch"`,
		`eddy_records_in_total{topic="metered"} 10`,
		`eddy_records_out_total{topic="metered"} 10`,
		`eddy_bytes_in_total{topic="metered"}`,
		`eddy_log_end_offset{partition="0",topic="metered"} 10`,
		`eddy_log_size_bytes{partition="0",topic="metered"}`,
		`eddy_connections_open`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestReadFrameBodyGrows(t *testing.T) {
	want := make([]byte, 3*frameChunk+17)
	for i := range want {
		want[i] = byte(i)
	}
	got, err := readFrameBody(bytes.NewReader(want), len(want))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("err %v, equal %v", err, bytes.Equal(got, want))
	}
	if _, err := readFrameBody(bytes.NewReader(want[:10]), 2*frameChunk); err == nil {
		t.Fatal("short body accepted")
	}
}

func TestManyConnections(t *testing.T) {
	s := startServer(t)
	cl := newClient(t, s)
	produceN(t, cl, "many", 10)
	cl.Close()
	openConns := func() int {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.conns)
	}
	eventually(t, "client connections closed", func() bool { return openConns() == 0 })
	const n = 200
	conns := make([]*rawConn, n)
	for i := range conns {
		conns[i] = dialRaw(t, s)
	}
	errs := make(chan error, n)
	for i, c := range conns {
		go func() {
			md := kmsg.NewPtrMetadataRequest()
			md.Version = 12
			md.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("many")}}
			f := kmsg.NewRequestFormatter()
			fr := kmsg.NewPtrFetchRequest()
			fr.Version = 11
			fr.MaxWaitMillis = 50
			fr.MinBytes = 1 << 20 // never reached: waits MaxWaitMillis
			fr.Topics = []kmsg.FetchRequestTopic{{Topic: "many", Partitions: []kmsg.FetchRequestTopicPartition{{FetchOffset: 0, PartitionMaxBytes: 1 << 20}}}}
			buf := append(f.AppendRequest(nil, md, int32(i)), f.AppendRequest(nil, fr, int32(i+n))...)
			if _, err := c.nc.Write(buf); err != nil {
				errs <- err
				return
			}
			for _, want := range []int32{int32(i), int32(i + n)} {
				frame, err := c.readFrame()
				if err != nil {
					errs <- err
					return
				}
				if got := int32(binary.BigEndian.Uint32(frame)); got != want {
					errs <- fmt.Errorf("conn %d: correlation id %d, want %d", i, got, want)
					return
				}
			}
			errs <- nil
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range conns {
		c.nc.Close()
	}
	eventually(t, "connections closed", func() bool { return openConns() == 0 })
}

// TestIdleConnectionClosed checks connections.max.idle.ms: a connection
// with nothing in flight is closed once idle for ConnectionsMaxIdle, while
// one whose long-poll fetch outlasts that limit is not.
func TestIdleConnectionClosed(t *testing.T) {
	s := startServer(t, func(c *Config) {
		c.ConnectionsMaxIdle = 300 * time.Millisecond
		c.MaintenanceInterval = 50 * time.Millisecond
	})
	ctx := testCtx(t)
	if _, err := newAdmin(t, s).CreateTopic(ctx, 1, 1, nil, "idle"); err != nil {
		t.Fatal(err)
	}

	// Busy: a fetch waiting 1.5 s, five times the idle limit, gets its answer.
	busy := dialRaw(t, s)
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(11)
	req.MaxWaitMillis, req.MinBytes, req.MaxBytes = 1500, 1, 1<<20
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = "idle"
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.PartitionMaxBytes = 1 << 20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	busy.send(req, 7)
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	if corr := busy.recv(resp); corr != 7 {
		t.Fatalf("long-poll fetch answered with correlation id %d", corr)
	}

	// Idle: after one request, nothing; the broker closes it.
	idle := dialRaw(t, s)
	av := kmsg.NewPtrApiVersionsRequest()
	idle.send(av, 1)
	idle.recv(av.ResponseKind())
	idle.expectClosed()
}
