package crash

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestCommittedOffsetsSurviveKill9 commits offsets for many groups (each
// commit acknowledged), kills the broker with SIGKILL, and checks after the
// restart that every group still has exactly its last commit.
func TestCommittedOffsetsSurviveKill9(t *testing.T) {
	const topic, partitions = "commits", 4
	groups := profile(20, 200)
	b := newBroker(t)
	b.start()
	createTopic(t, b.addr, topic, partitions, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for i := 0; i < 400; i++ {
		recs = append(recs, &kgo.Record{Partition: int32(i % partitions), Value: []byte("x")})
	}
	pcl := newClient(t, b.addr, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	err := pcl.ProduceSync(ctx, recs...).FirstErr()
	pcl.Close()
	if err != nil {
		t.Fatal(err)
	}
	cl := newClient(t, b.addr)
	adm := kadm.NewClient(cl)
	want := map[string]kadm.Offsets{}
	for g := 0; g < groups; g++ {
		group := fmt.Sprintf("group-%d", g)
		// Several commits per group; the last one must win.
		for round := 0; round < 3; round++ {
			offs := kadm.Offsets{}
			for p := int32(0); p < partitions; p++ {
				offs.AddOffset(topic, p, int64((g*7+round*13+int(p)*3)%100), -1)
			}
			resp, err := adm.CommitOffsets(ctx, group, offs)
			if err != nil {
				t.Fatalf("commit %s: %v", group, err)
			}
			if err := resp.Error(); err != nil {
				t.Fatalf("commit %s: %v", group, err)
			}
			want[group] = offs
		}
	}
	cl.Close()
	b.kill()
	b.start()

	cl2 := newClient(t, b.addr)
	defer cl2.Close()
	adm2 := kadm.NewClient(cl2)
	for group, offs := range want {
		got, err := adm2.FetchOffsets(ctx, group)
		if err != nil {
			t.Fatalf("fetch offsets %s after kill -9: %v", group, err)
		}
		if err := got.Error(); err != nil {
			t.Fatalf("fetch offsets %s after kill -9: %v", group, err)
		}
		offs.Each(func(o kadm.Offset) {
			r, ok := got.Lookup(o.Topic, o.Partition)
			if !ok || r.At != o.At {
				t.Fatalf("group %s %s/%d: committed %d before kill -9, %d (found %v) after", group, o.Topic, o.Partition, o.At, r.At, ok)
			}
		})
	}
	b.stop()
}
