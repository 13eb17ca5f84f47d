package interop

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const kcatTimeout = 60 * time.Second

// parseKcat parses lines printed with -f '%p %o %k %s\n'.
func parseKcat(t *testing.T, out []byte) []rec {
	t.Helper()
	var rs []rec
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 4 {
			t.Fatalf("unexpected kcat line %q", sc.Text())
		}
		p, err1 := strconv.ParseInt(f[0], 10, 32)
		o, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("unexpected kcat line %q", sc.Text())
		}
		rs = append(rs, rec{Partition: int32(p), Offset: o, Key: f[2], Value: f[3]})
	}
	return rs
}

const kcatFormat = "%p %o %k %s\\n"

// TestKcatMetadata lists metadata with kcat -L and checks the broker it
// advertises and the topic's partitions.
func TestKcatMetadata(t *testing.T) {
	kcat := kcatPath(t)
	c := startCluster(t)
	topic := createTopic(t, c.Addr(), 4, nil)
	out := runCmd(t, kcatTimeout, nil, kcat, "-b", c.Addr(), "-L", "-J", "-t", topic)
	var md struct {
		Brokers []struct {
			ID   int32  `json:"id"`
			Name string `json:"name"`
		} `json:"brokers"`
		Topics []struct {
			Topic      string `json:"topic"`
			Error      string `json:"error"`
			Partitions []struct {
				Partition int32 `json:"partition"`
				Leader    int32 `json:"leader"`
			} `json:"partitions"`
		} `json:"topics"`
	}
	if err := json.Unmarshal(out, &md); err != nil {
		t.Fatalf("kcat -L -J output %q: %v", out, err)
	}
	if len(md.Brokers) != 1 || md.Brokers[0].Name != c.Addr() {
		t.Fatalf("kcat sees brokers %+v, want one at %s", md.Brokers, c.Addr())
	}
	if len(md.Topics) != 1 || md.Topics[0].Topic != topic || md.Topics[0].Error != "" {
		t.Fatalf("kcat sees topics %+v, want %s", md.Topics, topic)
	}
	seen := map[int32]bool{}
	for _, p := range md.Topics[0].Partitions {
		if p.Leader != md.Brokers[0].ID {
			t.Fatalf("partition %d leader %d, want %d", p.Partition, p.Leader, md.Brokers[0].ID)
		}
		seen[p.Partition] = true
	}
	if len(seen) != 4 {
		t.Fatalf("kcat sees partitions %+v, want 0..3", md.Topics[0].Partitions)
	}
}

// TestKcatProduceCompression produces with kcat -P -z for every codec and
// checks the records (read back by franz-go) and the stored codec.
func TestKcatProduceCompression(t *testing.T) {
	kcat := kcatPath(t)
	c := startCluster(t)
	for _, cc := range []struct {
		name string
		id   int8
	}{{"none", 0}, {"gzip", 1}, {"snappy", 2}, {"lz4", 3}, {"zstd", 4}} {
		t.Run(cc.name, func(t *testing.T) {
			const partitions, n = 3, 400
			topic := createTopic(t, c.Addr(), partitions, nil)
			want := testRecords("kcat"+cc.name, n)
			var in bytes.Buffer
			for _, r := range want {
				fmt.Fprintf(&in, "%s:%s\n", r.Key, r.Value)
			}
			runCmd(t, kcatTimeout, in.Bytes(), kcat, "-b", c.Addr(), "-t", topic, "-P", "-K", ":",
				"-z", cc.name, "-X", "acks=all", "-X", "linger.ms=20")
			got := consumeAll(t, c.Addr(), topic, n)
			checkOffsetsContiguous(t, got)
			checkSameValues(t, got, want, false)
			// librdkafka's default partitioner (consistent_random) hashes keys.
			byKey := map[string]int32{}
			for _, r := range got {
				if p, ok := byKey[r.Key]; ok && p != r.Partition {
					t.Fatalf("key %q landed on partitions %d and %d", r.Key, p, r.Partition)
				}
				byKey[r.Key] = r.Partition
			}
			for i, s := range storedCodecs(t, c.Addr(), topic, partitions) {
				if s != cc.id {
					t.Fatalf("stored batch %d has codec %d; kcat produced with %s (%d)", i, s, cc.name, cc.id)
				}
			}
		})
	}
}

// TestKcatConsume reads with kcat -C -e what franz-go produced.
func TestKcatConsume(t *testing.T) {
	kcat := kcatPath(t)
	c := startCluster(t)
	topic := createTopic(t, c.Addr(), 3, nil)
	want := produceFranz(t, c.Addr(), topic, testRecords("kcatc", 500))
	out := runCmd(t, kcatTimeout, nil, kcat, "-b", c.Addr(), "-t", topic, "-C", "-e", "-q",
		"-o", "beginning", "-f", kcatFormat)
	checkSameRecords(t, parseKcat(t, out), want)

	// -o with an absolute offset on one partition.
	out = runCmd(t, kcatTimeout, nil, kcat, "-b", c.Addr(), "-t", topic, "-C", "-e", "-q",
		"-p", "1", "-o", "5", "-f", kcatFormat)
	var wantP1 []rec
	for _, r := range want {
		if r.Partition == 1 && r.Offset >= 5 {
			wantP1 = append(wantP1, r)
		}
	}
	checkSameRecords(t, parseKcat(t, out), wantP1)
}

// TestKcatBalancedConsumer runs two kcat -G members of one group; together
// they consume every record, and the group commits the end offsets.
func TestKcatBalancedConsumer(t *testing.T) {
	kcat := kcatPath(t)
	c := startCluster(t)
	const partitions = 4
	topic := createTopic(t, c.Addr(), partitions, nil)
	group := "g-" + topic
	want := produceFranz(t, c.Addr(), topic, testRecords("kcatg", 400))

	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		outs [][]byte
		errs []string
	)
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), kcatTimeout)
			defer cancel()
			cmd := exec.CommandContext(ctx, kcat, "-b", c.Addr(), "-G", group, "-e", "-q", "-f", kcatFormat,
				"-X", "auto.offset.reset=earliest", "-X", "session.timeout.ms=10000", topic)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Sprintf("kcat -G: %v\n%s", err, tail(stderr.Bytes())))
				return
			}
			outs = append(outs, stdout.Bytes())
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatal(strings.Join(errs, "\n"))
	}
	var got []rec
	for _, out := range outs {
		got = append(got, parseKcat(t, out)...)
	}
	checkSameValues(t, got, want, true)
	for _, r := range got {
		found := false
		for _, w := range want {
			if w == r {
				found = true
				break
			}
		}
		if !found {
			t.Fatalf("kcat -G read %v, which is not at that offset", r)
		}
	}
	waitCommittedAtEnd(t, c.Addr(), group, topic)
}
