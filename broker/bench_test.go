package broker

import (
	"context"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// benchTarget starts the system under test and returns its seed address
// with a topic of 6 partitions named "bench".
type benchTarget func(b *testing.B) string

var benchTargets = map[string]benchTarget{
	"eddy": func(b *testing.B) string {
		s := startServer(b, func(c *Config) { c.HTTP = "" })
		cl := newClient(b, s)
		if _, err := kadm.NewClient(cl).CreateTopic(context.Background(), 6, 1, nil, "bench"); err != nil {
			b.Fatal(err)
		}
		return s.Addr()
	},
	"kfake": func(b *testing.B) string {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(6, "bench"))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(c.Close)
		return c.ListenAddrs()[0]
	},
}

// produceBench produces n 100-byte records (acks=all, idempotence as the
// broker allows) and waits for every acknowledgement.
func produceBench(b *testing.B, addr string, n int) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("bench"),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()), kgo.ProducerBatchMaxBytes(1<<20),
		kgo.MaxBufferedRecords(1<<20))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	value := make([]byte, 100)
	var (
		once     sync.Once
		firstErr error
	)
	cb := func(_ *kgo.Record, err error) {
		if err != nil {
			once.Do(func() { firstErr = err })
		}
	}
	ctx := context.Background()
	for range n {
		cl.Produce(ctx, &kgo.Record{Value: value}, cb)
	}
	if err := cl.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	if firstErr != nil {
		b.Fatal(firstErr)
	}
}

// BenchmarkProduce measures produce throughput of 100-byte records to 6
// partitions with acks=all against eddy and against kfake.
func BenchmarkProduce(b *testing.B) {
	for _, name := range []string{"eddy", "kfake"} {
		b.Run(name, func(b *testing.B) {
			addr := benchTargets[name](b)
			b.SetBytes(100)
			b.ResetTimer()
			produceBench(b, addr, b.N)
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rec/s")
		})
	}
}

// BenchmarkConsume measures consume throughput of b.N 100-byte records
// produced beforehand.
func BenchmarkConsume(b *testing.B) {
	for _, name := range []string{"eddy", "kfake"} {
		b.Run(name, func(b *testing.B) {
			addr := benchTargets[name](b)
			produceBench(b, addr, b.N)
			cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics("bench"),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			if err != nil {
				b.Fatal(err)
			}
			defer cl.Close()
			b.SetBytes(100)
			b.ResetTimer()
			got := 0
			ctx := context.Background()
			for got < b.N {
				fs := cl.PollFetches(ctx)
				fs.EachError(func(_ string, _ int32, err error) { b.Fatal(err) })
				got += fs.NumRecords()
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rec/s")
		})
	}
}
