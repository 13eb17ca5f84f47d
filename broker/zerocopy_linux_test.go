package broker

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestFetchRacesRetention deletes, by retention, the segment a fetch
// response is being sent from while the send is stalled on a full socket:
// the response still carries the segment's bytes, and the deleted file is
// closed once the send completes.
func TestFetchRacesRetention(t *testing.T) {
	s := startServer(t)
	cl := newClient(t, s, kgo.ProducerBatchCompression(kgo.NoCompression()))
	ctx := testCtx(t)
	cfg := map[string]*string{"segment.bytes": kmsg.StringPtr("65536")}
	if _, err := newAdmin(t, s).CreateTopic(ctx, 1, 1, cfg, "race"); err != nil {
		t.Fatal(err)
	}
	for i := range 8 {
		r := &kgo.Record{Topic: "race", Value: bytes.Repeat([]byte{byte(i)}, 30_000)}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	log := s.topics.get("race").partition(0).log
	bases := segmentBases(t, log.Dir())
	if len(bases) < 2 || bases[0] != 0 {
		t.Fatalf("segments %v", bases)
	}
	first := filepath.Join(log.Dir(), "00000000000000000000.log")
	want, err := log.Read(0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if len(want.Records) < 50_000 {
		t.Fatalf("first segment holds %d bytes", len(want.Records))
	}

	// Small socket buffers on both ends so the send stalls mid-range.
	d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		return errors.Join(err, serr)
	}}
	nc, err := d.DialContext(ctx, "tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	var server *net.TCPConn
	eventually(t, "the server side of the connection", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		for c := range s.conns {
			if c.nc.RemoteAddr().String() == nc.LocalAddr().String() {
				server = c.nc.(*net.TCPConn)
			}
		}
		return server != nil
	})
	if err := server.SetWriteBuffer(4096); err != nil {
		t.Fatal(err)
	}
	c := &rawConn{t: t, nc: nc}
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(12)
	req.MaxWaitMillis, req.MaxBytes = 0, 1<<20
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = "race"
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.PartitionMaxBytes = 1 << 20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	c.send(req, 5)

	// The size prefix arrives once the response is being written.
	var size [4]byte
	if _, err := io.ReadFull(nc, size[:]); err != nil {
		t.Fatal(err)
	}
	lcfg := log.Config()
	lcfg.RetentionBytes = 1
	log.SetConfig(lcfg)
	if err := log.Maintain(time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(first); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("retention did not delete the first segment: %v", err)
	}
	if n := deletedFDs(first); n != 1 {
		t.Fatalf("%d open descriptors of the deleted segment, want 1 (the stalled send's)", n)
	}

	frame := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(nc, frame); err != nil {
		t.Fatal(err)
	}
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	if err := resp.ReadFrom(frame[5:]); err != nil { // correlation id, header tags
		t.Fatal(err)
	}
	got := resp.Topics[0].Partitions[0].RecordBatches
	if !bytes.Equal(got, want.Records) {
		t.Fatalf("got %d record bytes, want the deleted segment's %d", len(got), len(want.Records))
	}
	eventually(t, "the deleted segment to be closed", func() bool { return deletedFDs(first) == 0 })

	// The connection still works.
	c.send(kmsg.NewPtrMetadataRequest(), 6)
	if corr := c.recv(kmsg.NewPtrMetadataResponse()); corr != 6 {
		t.Fatalf("correlation id %d", corr)
	}
}

// deletedFDs lists this process's open descriptors of path after it was
// unlinked (Linux).
func deletedFDs(path string) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && l == path+" (deleted)" {
			n++
		}
	}
	return n
}
