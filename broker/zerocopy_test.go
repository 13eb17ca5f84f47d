package broker

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/eddy-streams/eddy/broker/storage"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// assembleFrame inserts recs[i] at each splice of f, as the writer does.
func assembleFrame(f outFrame, recs [][]byte) []byte {
	b := *f.buf
	var out []byte
	prev := 0
	for i, sp := range f.splices {
		out = append(out, b[prev:sp.at]...)
		out = append(out, recs[i]...)
		prev = sp.at
	}
	return append(out, b[prev:]...)
}

// TestEncodeFetchSplices checks the placeholder encoding: for every
// version, the frame built from placeholders, length prefixes and the
// record bytes spliced in is byte for byte the frame kmsg encodes with the
// records inline, including record sets whose compact length needs more
// bytes than the placeholder's and fields that hold 0x00, 0xff and
// int32(1) patterns.
func TestEncodeFetchSplices(t *testing.T) {
	recs := [][]byte{
		bytes.Repeat([]byte{0xff}, 300),
		{0, 0, 0, 1, 2},
		bytes.Repeat([]byte{0, 1}, 40_000), // compact length of 3 bytes
	}
	for v := int16(0); v <= 16; v++ {
		build := func(inline bool, ph []byte) *kmsg.FetchResponse {
			resp := kmsg.NewPtrFetchResponse()
			resp.SetVersion(v)
			k := 0
			for ti, name := range []string{"a", "topic-b"} {
				rt := kmsg.NewFetchResponseTopic()
				rt.Topic = name
				rt.TopicID = [16]byte{0xff, 0, 0, 0, 1, byte(ti)}
				for p := range int32(3) {
					rp := kmsg.NewFetchResponseTopicPartition()
					rp.Partition, rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset = p, 1, 0xff, 2
					rp.RecordBatches = noRecords
					if (ti+int(p))%2 == 0 && k < len(recs) {
						if inline {
							rp.RecordBatches = recs[k]
						} else {
							rp.RecordBatches = ph
						}
						k++
					}
					rt.Partitions = append(rt.Partitions, rp)
				}
				resp.Topics = append(resp.Topics, rt)
			}
			return resp
		}
		r := &request{key: 1, version: v, corr: 0x01ff}
		wantp := encodeResponse(r, build(true, nil))
		want := slices.Clone(*wantp)
		putBuf(wantp)

		fr := &fetchResponse{ph: []byte{0}}
		fr.FetchResponse = build(false, fr.ph)
		for _, b := range recs {
			fr.ranges = append(fr.ranges, storage.FileRange{Size: int64(len(b))})
		}
		f, err := encodeFetch(r, fr)
		if err != nil {
			t.Fatalf("v%d: %v", v, err)
		}
		if len(f.splices) != len(recs) {
			t.Fatalf("v%d: %d splices, want %d", v, len(f.splices), len(recs))
		}
		if got := assembleFrame(f, recs); !bytes.Equal(got, want) {
			t.Fatalf("v%d: spliced frame (%d bytes) differs from the inline encoding (%d bytes)", v, len(got), len(want))
		}
		f.release()
	}

	// A placeholder count that does not match the ranges is an error.
	for _, sizes := range [][]int64{{1}, {1, 2, 3}} {
		a := []byte{0, 0, 0, 9, 0, 0, 0, 1, 0, 7, 0, 0, 0, 1, 0}
		b := []byte{0, 0, 0, 9, 0, 0, 0, 1, 0xff, 7, 0, 0, 0, 1, 0xff}
		if _, _, err := spliceFrame(nil, a, b, sizes, false); err == nil {
			t.Fatalf("%d ranges for 2 placeholders: no error", len(sizes))
		}
	}
	a := []byte{0, 0, 0, 9, 3, 0}
	if _, _, err := spliceFrame(nil, a, []byte{0, 0, 0, 9, 3, 0xff}, []int64{5}, true); err == nil {
		t.Fatal("bad compact length prefix: no error")
	}
}

// segmentBases lists the base offsets of a partition's segments.
func segmentBases(t *testing.T, dir string) []int64 {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var bases []int64
	for _, e := range ents {
		if name, ok := strings.CutSuffix(e.Name(), ".log"); ok {
			var b int64
			if _, err := fmt.Sscan(name, &b); err == nil {
				bases = append(bases, b)
			}
		}
	}
	slices.Sort(bases)
	return bases
}

// segmentOf returns the base of the segment holding offset.
func segmentOf(bases []int64, offset int64) int64 {
	i, found := slices.BinarySearch(bases, offset)
	if found {
		return bases[i]
	}
	return bases[i-1]
}

// TestFetchZeroCopyMatchesRead fetches from several partitions, each read
// landing in a different segment, at non-flexible and flexible versions,
// with two fetches pipelined on one connection, and checks every record set
// against Log.Read.
func TestFetchZeroCopyMatchesRead(t *testing.T) {
	s := startServer(t)
	cl := newClient(t, s, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchCompression(kgo.NoCompression()))
	ctx := testCtx(t)
	cfg := map[string]*string{"segment.bytes": kmsg.StringPtr("4096"), "index.interval.bytes": kmsg.StringPtr("512")}
	if _, err := newAdmin(t, s).CreateTopic(ctx, 3, 1, cfg, "zc"); err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		var recs []*kgo.Record
		for p := range int32(3) {
			recs = append(recs, &kgo.Record{Topic: "zc", Partition: p, Value: bytes.Repeat([]byte{byte(i)}, 100+(i*37+int(p)*101)%500)})
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	tp := s.topics.get("zc")
	type fetchAt struct {
		p        int32
		offset   int64
		maxBytes int32
	}
	at := []fetchAt{{0, 0, 1}, {1, 17, 1500}, {2, 37, 1 << 20}}
	segs := map[int64]bool{}
	for _, a := range at {
		bases := segmentBases(t, tp.partition(a.p).log.Dir())
		if len(bases) < 3 {
			t.Fatalf("partition %d has %d segments, want several", a.p, len(bases))
		}
		segs[segmentOf(bases, a.offset)] = true
	}
	if len(segs) != len(at) {
		t.Fatalf("the reads share segments: %v", segs)
	}

	for _, v := range []int16{4, 7, 11, 12, 13, 16} {
		c := dialRaw(t, s)
		reqs := make([]*kmsg.FetchRequest, 2)
		for i := range reqs {
			req := kmsg.NewPtrFetchRequest()
			req.SetVersion(v)
			req.MaxWaitMillis, req.MaxBytes = 0, 1<<30
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic, rt.TopicID = "zc", tp.id
			for _, a := range at {
				rp := kmsg.NewFetchRequestTopicPartition()
				rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = a.p, a.offset+int64(i), a.maxBytes
				rt.Partitions = append(rt.Partitions, rp)
			}
			req.Topics = append(req.Topics, rt)
			reqs[i] = req
			c.send(req, int32(100+i))
		}
		for i, req := range reqs {
			resp := req.ResponseKind().(*kmsg.FetchResponse)
			if corr := c.recv(resp); corr != int32(100+i) {
				t.Fatalf("v%d: response %d has correlation id %d", v, i, corr)
			}
			if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != len(at) {
				t.Fatalf("v%d: response shape %+v", v, resp)
			}
			for j, rp := range resp.Topics[0].Partitions {
				a := at[j]
				want, err := tp.partition(a.p).log.Read(a.offset+int64(i), int(a.maxBytes))
				if err != nil {
					t.Fatal(err)
				}
				if rp.ErrorCode != 0 || rp.Partition != a.p || rp.HighWatermark != want.HighWatermark {
					t.Fatalf("v%d: partition %+v", v, rp)
				}
				if len(want.Records) == 0 || !bytes.Equal(rp.RecordBatches, want.Records) {
					t.Fatalf("v%d: partition %d at %d: %d record bytes, Log.Read has %d", v, a.p, a.offset+int64(i), len(rp.RecordBatches), len(want.Records))
				}
			}
		}
	}
}
