package broker

import (
	"encoding/binary"
	"errors"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// seedFrames are valid request frames (without the size prefix).
func seedFrames() [][]byte {
	var out [][]byte
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("fuzz"))
	add := func(r kmsg.Request, v int16) {
		r.SetVersion(v)
		out = append(out, f.AppendRequest(nil, r, 1)[4:])
	}
	add(kmsg.NewPtrApiVersionsRequest(), 0)
	add(kmsg.NewPtrApiVersionsRequest(), 3)
	md := kmsg.NewPtrMetadataRequest()
	md.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("t")}}
	add(md, 12)
	add(md, 1)
	pr := kmsg.NewPtrProduceRequest()
	pr.Acks = -1
	pr.Topics = []kmsg.ProduceRequestTopic{{Topic: "t", Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: make([]byte, 70)}}}}
	add(pr, 9)
	add(pr, 3)
	fr := kmsg.NewPtrFetchRequest()
	fr.Topics = []kmsg.FetchRequestTopic{{Topic: "t", Partitions: []kmsg.FetchRequestTopicPartition{{FetchOffset: 5, PartitionMaxBytes: 1 << 20}}}}
	add(fr, 16)
	add(fr, 4)
	ct := kmsg.NewPtrCreateTopicsRequest()
	ct.Topics = []kmsg.CreateTopicsRequestTopic{{Topic: "t", NumPartitions: 3, ReplicationFactor: 1,
		Configs: []kmsg.CreateTopicsRequestTopicConfig{{Name: "retention.ms", Value: kmsg.StringPtr("1")}}}}
	add(ct, 7)
	add(kmsg.NewPtrFindCoordinatorRequest(), 4)
	jg := kmsg.NewPtrJoinGroupRequest()
	jg.Group, jg.ProtocolType = "g", "consumer"
	jg.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte{0, 1}}}
	add(jg, 9)
	return out
}

func FuzzRequestFrame(f *testing.F) {
	for _, b := range seedFrames() {
		f.Add(b)
	}
	apis := newAPITable(coreAPIs, groupAPIs)
	f.Fuzz(func(t *testing.T, frame []byte) {
		r, err := parseRequest(frame, apis)
		if err != nil {
			if !errors.Is(err, errMalformed) {
				t.Fatalf("error does not wrap errMalformed: %v", err)
			}
			return
		}
		if r.unsupportedApiVersions {
			return
		}
		// A decoded request re-encodes without panicking.
		_ = r.req.AppendTo(nil)
	})
}

func TestSeedFramesParse(t *testing.T) {
	apis := newAPITable(coreAPIs, groupAPIs)
	for i, b := range seedFrames() {
		if _, err := parseRequest(b, apis); err != nil {
			t.Fatalf("seed %d: %v", i, err)
		}
	}
}

// FuzzCountRecords walks batch headers of arbitrary bytes: it must never
// panic and never count past the input.
func FuzzCountRecords(f *testing.F) {
	batch := make([]byte, 61+8)
	binary.BigEndian.PutUint32(batch[8:], uint32(len(batch)-12))
	binary.BigEndian.PutUint32(batch[57:], 3)
	f.Add(batch)
	f.Add(append(slices.Clone(batch), batch...))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = countRecords(b)
	})
}

func TestCountRecords(t *testing.T) {
	batch := make([]byte, 61+8)
	binary.BigEndian.PutUint32(batch[8:], uint32(len(batch)-12))
	binary.BigEndian.PutUint32(batch[57:], 3)
	if n := countRecords(append(slices.Clone(batch), batch...)); n != 6 {
		t.Fatalf("two batches of 3: %d", n)
	}
	if n := countRecords(batch[:60]); n != 0 {
		t.Fatalf("short input: %d", n)
	}
}
