package crash

import (
	"context"
	"encoding/binary"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// diskBatch is one record batch as found in a segment file.
type diskBatch struct {
	pos, end   int64 // byte range in the file
	base, last int64 // first and last offset
}

// scanSegment splits a .log file into batches by their length fields. It
// stops at a zero or impossible length (trailing space, if any).
func scanSegment(data []byte) []diskBatch {
	var out []diskBatch
	pos := int64(0)
	for int64(len(data))-pos >= 61 {
		h := data[pos:]
		n := int64(int32(binary.BigEndian.Uint32(h[8:12])))
		if n < 49 || pos+12+n > int64(len(data)) || h[16] != 2 {
			break
		}
		base := int64(binary.BigEndian.Uint64(h[0:8]))
		last := base + int64(int32(binary.BigEndian.Uint32(h[23:27])))
		out = append(out, diskBatch{pos: pos, end: pos + 12 + n, base: base, last: last})
		pos += 12 + n
	}
	return out
}

// partitionDir finds the directory of partition 0 of topic under dataDir.
func partitionDir(t *testing.T, dataDir, topic string) string {
	t.Helper()
	var found []string
	filepath.WalkDir(dataDir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && d.Name() == topic+"-0" {
			found = append(found, p)
		}
		return nil
	})
	if len(found) != 1 {
		t.Fatalf("found %d directories named %s-0 under %s: %v", len(found), topic, dataDir, found)
	}
	return found[0]
}

// segments lists the .log files of a partition directory by base offset.
func segments(t *testing.T, dir string) []string {
	t.Helper()
	logs, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(logs) // 20-digit zero-padded base offsets sort numerically
	return logs
}

// corruption is what one round did to the tail.
type corruption struct {
	mode    string
	file    string
	pos     int64
	wantEnd int64 // log end offset the broker must recover to
}

// corruptTail damages the last non-empty segment of the partition and
// returns the offset the valid prefix ends at. Modes: "cut" truncates the
// file at a random position; "flip" XORs one byte at a random position
// inside a batch's CRC-protected range or length field; "zero" zeroes
// everything from a random position on (a torn page).
func corruptTail(t *testing.T, rng *rand.Rand, dir string, logEnd int64) corruption {
	t.Helper()
	logs := segments(t, dir)
	var file string
	var data []byte
	for i := len(logs) - 1; i >= 0; i-- {
		d, err := os.ReadFile(logs[i])
		if err != nil {
			t.Fatal(err)
		}
		if len(scanSegment(d)) > 0 {
			file, data = logs[i], d
			break
		}
	}
	if file == "" {
		t.Fatalf("no segment with batches in %s", dir)
	}
	batches := scanSegment(data)
	lastB := batches[len(batches)-1]
	if lastB.last+1 != logEnd {
		t.Fatalf("after kill -9, %s ends at offset %d but %d records were acknowledged", filepath.Base(file), lastB.last+1, logEnd)
	}
	dataEnd := lastB.end
	orig := append([]byte(nil), data...)
	c := corruption{mode: []string{"cut", "flip", "zero"}[rng.IntN(3)], file: filepath.Base(file)}
	c.pos = rng.Int64N(dataEnd)
	switch c.mode {
	case "cut":
		data = data[:c.pos]
	case "flip":
		// baseOffset and partitionLeaderEpoch are outside the CRC by
		// design; move a hit there into the protected part of the batch.
		for _, b := range batches {
			if c.pos >= b.pos && c.pos < b.end {
				if rel := c.pos - b.pos; rel < 8 || (rel >= 12 && rel < 16) {
					c.pos = b.pos + 16 + rng.Int64N(b.end-b.pos-16)
				}
				break
			}
		}
		data[c.pos] ^= byte(1 + rng.IntN(255))
	case "zero":
		for i := c.pos; i < int64(len(data)); i++ {
			data[i] = 0
		}
	}
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	// The valid prefix ends at the first batch that changed or is incomplete.
	c.wantEnd = logEnd
	for _, b := range batches {
		if b.end > int64(len(data)) || string(data[b.pos:b.end]) != string(orig[b.pos:b.end]) {
			c.wantEnd = b.base
			break
		}
	}
	return c
}

// TestTornTail produces, kills the broker, damages the tail of the last
// segment, restarts, and checks the broker serves exactly the valid prefix
// and appends new writes right after it — for several seeded rounds on the
// same data dir.
func TestTornTail(t *testing.T) {
	rng := seededRand(t)
	rounds := profile(8, 300)
	const topic = "torn"
	b := newBroker(t)
	b.start()
	segBytes := "65536"
	createTopic(t, b.addr, topic, 1, map[string]*string{"segment.bytes": &segBytes})

	var model []string // offset -> value
	letters := "abcdefghijklmnopqrstuvwxyz0123456789"
	for round := 1; round <= rounds; round++ {
		codecs := []kgo.CompressionCodec{kgo.NoCompression(), kgo.GzipCompression(), kgo.ZstdCompression(), kgo.Lz4Compression()}
		var clients []*kgo.Client
		for _, cc := range codecs {
			clients = append(clients, newClient(t, b.addr, kgo.DefaultProduceTopic(topic),
				kgo.ProducerBatchCompression(cc), kgo.ProducerLinger(0)))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		nb := 20 + rng.IntN(60)
		for i := 0; i < nb; i++ {
			var recs []*kgo.Record
			for j := 1 + rng.IntN(30); j > 0; j-- {
				var sb strings.Builder
				fmt.Fprintf(&sb, "%d-%d-", round, len(model)+len(recs))
				for k := 20 + rng.IntN(400); k > 0; k-- {
					sb.WriteByte(letters[rng.IntN(len(letters))])
				}
				recs = append(recs, &kgo.Record{Value: []byte(sb.String())})
			}
			if err := clients[rng.IntN(len(clients))].ProduceSync(ctx, recs...).FirstErr(); err != nil {
				t.Fatalf("round %d: produce: %v", round, err)
			}
			for _, r := range recs {
				if r.Offset != int64(len(model)) {
					t.Fatalf("round %d: record acknowledged at offset %d, want %d (right after the recovered prefix)", round, r.Offset, len(model))
				}
				model = append(model, string(r.Value))
			}
		}
		cancel()
		for _, cl := range clients {
			cl.Close()
		}

		b.kill()
		dir := partitionDir(t, b.dataDir, topic)
		c := corruptTail(t, rng, dir, int64(len(model)))
		t.Logf("round %d: %d records; %s %s at byte %d; valid prefix ends at offset %d", round, len(model), c.mode, c.file, c.pos, c.wantEnd)
		b.start()
		// Read the whole log every 25th round, else its last 5000 records
		// (the long profile's log grows to tens of MB).
		from := int64(0)
		if round%25 != 0 {
			from = max(0, c.wantEnd-5000)
		}
		verifyPrefix(t, b.addr, topic, model[:c.wantEnd], from)
		model = model[:c.wantEnd]
	}

	// A clean stop and start keeps exactly the same log.
	b.stop()
	b.start()
	verifyPrefix(t, b.addr, topic, model, 0)
	b.stop()
}

// verifyPrefix checks the partition spans exactly [0, len(want)) and holds
// want[from:] at offsets from on.
func verifyPrefix(t *testing.T, addr, topic string, want []string, from int64) {
	t.Helper()
	starts, ends := listOffsets(t, addr, topic)
	if starts[0] != 0 || ends[0] != int64(len(want)) {
		t.Fatalf("after restart the log spans [%d, %d), want [0, %d)", starts[0], ends[0], len(want))
	}
	readPartition(t, addr, topic, 0, from, int64(len(want)), 60*time.Second, func(r *kgo.Record) {
		if string(r.Value) != want[r.Offset] {
			t.Fatalf("offset %d holds %.40q..., want %.40q...", r.Offset, r.Value, want[r.Offset])
		}
	})
}
