package chaos

import (
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// rec is a data record read read_committed.
type rec struct {
	topic      string
	partition  int32
	offset     int64
	key, value []byte
}

// readCommitted reads every committed data record of topics, from the
// start of each partition to its last stable offset, in partition and
// offset order.
func readCommitted(ctx context.Context, addr string, adm *kadm.Client, topics ...string) (map[string][]rec, error) {
	start, _, lso, err := listOffsets(ctx, adm, topics...)
	if err != nil {
		return nil, err
	}
	ranges := map[string]map[int32][2]int64{}
	for _, topic := range topics {
		ranges[topic] = map[int32][2]int64{}
		for p, s := range start[topic] {
			ranges[topic][p] = [2]int64{s, lso[topic][p]}
		}
	}
	return readRanges(ctx, addr, ranges)
}

// readRanges reads the committed data records in the offset ranges [from,
// to) of the partitions in ranges, where to is at most the last stable
// offset, and returns them in partition and offset order. It reads with
// read_committed and keeps control records so that it knows when it
// reached the end of a range even when the range ends with a transaction
// marker (the record just before the last stable offset is always
// delivered: it is a committed data record or a marker, as aborted records
// are followed by their marker).
func readRanges(ctx context.Context, addr string, ranges map[string]map[int32][2]int64) (map[string][]rec, error) {
	from := map[string]map[int32]kgo.Offset{}
	pending := 0
	for topic, ps := range ranges {
		for p, r := range ps {
			if r[0] < r[1] {
				if from[topic] == nil {
					from[topic] = map[int32]kgo.Offset{}
				}
				from[topic][p] = kgo.NewOffset().At(r[0])
				pending++
			}
		}
	}
	out := map[string][]rec{}
	if pending == 0 {
		return out, nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumePartitions(from),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords(),
		kgo.FetchMaxWait(200*time.Millisecond), kgo.FetchMaxBytes(32<<20))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	done := map[string]map[int32]bool{}
	for pending > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("read %v read_committed: %d partitions not read to the end: %w", ranges, pending, err)
		}
		for _, e := range fs.Errors() {
			return nil, fmt.Errorf("fetch %s/%d: %w", e.Topic, e.Partition, e.Err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			end := ranges[r.Topic][r.Partition][1]
			if r.Offset >= end || done[r.Topic][r.Partition] {
				return
			}
			if !r.Attrs.IsControl() {
				out[r.Topic] = append(out[r.Topic], rec{topic: r.Topic, partition: r.Partition, offset: r.Offset,
					key: r.Key, value: r.Value})
			}
			if r.Offset == end-1 {
				if done[r.Topic] == nil {
					done[r.Topic] = map[int32]bool{}
				}
				done[r.Topic][r.Partition] = true
				pending--
			}
		})
	}
	for _, rs := range out {
		slices.SortStableFunc(rs, func(a, b rec) int {
			if a.partition != b.partition {
				return int(a.partition - b.partition)
			}
			return int(a.offset - b.offset)
		})
	}
	return out, nil
}

// violation is one broken rule found by the verifier.
type violation struct {
	// kind is the rule: repeated, went-back, final, missing, unexpected,
	// duplicate, lost, content, partitions, decode.
	kind string
	msg  string
}

func (v violation) String() string { return v.kind + ": " + v.msg }

// violations collects what the verifier finds.
type violations []violation

func (vs *violations) add(kind, format string, args ...any) {
	*vs = append(*vs, violation{kind: kind, msg: fmt.Sprintf(format, args...)})
}

// kinds counts the violations per kind.
func (vs violations) kinds() map[string]int {
	m := map[string]int{}
	for _, v := range vs {
		m[v.kind]++
	}
	return m
}

// report prints at most max violations, one a line.
func (vs violations) report(max int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d violations %v", len(vs), vs.kinds())
	for i, v := range vs {
		if i == max {
			fmt.Fprintf(&b, "\n  ... and %d more", len(vs)-max)
			break
		}
		fmt.Fprintf(&b, "\n  %s", v)
	}
	return b.String()
}

// countUpdate is one record of a changelog stream of counts, decoded.
type countUpdate struct {
	key string // the counted key (a word, a customer, a customer's hour)
	n   int64
}

// int64Count decodes a count keyed by the record key with an 8-byte
// big-endian value (serde.Int64).
func int64Count(r rec) (countUpdate, error) {
	if len(r.value) != 8 {
		return countUpdate{}, fmt.Errorf("value of %d bytes, want 8", len(r.value))
	}
	return countUpdate{key: string(r.key), n: int64(binary.BigEndian.Uint64(r.value))}, nil
}

// checkCounts checks a stream of count updates (one record per update of a
// key's count): every key stays in one partition; per key the committed
// values strictly increase (no value repeated, none going back); the last
// value of each key is want's and no other key appears.
func checkCounts(vs *violations, topic string, recs []rec, decode func(rec) (countUpdate, error), want map[string]int64) {
	type last struct {
		partition int32
		offset    int64
		n         int64
	}
	seen := map[string]*last{}
	for _, r := range recs {
		u, err := decode(r)
		if err != nil {
			vs.add("decode", "%s partition %d offset %d key %q: %v", topic, r.partition, r.offset, r.key, err)
			continue
		}
		l := seen[u.key]
		switch {
		case l == nil:
			seen[u.key] = &last{r.partition, r.offset, u.n}
			continue
		case l.partition != r.partition:
			vs.add("partitions", "%s key %q: in partition %d (offset %d) and %d (offset %d)",
				topic, u.key, l.partition, l.offset, r.partition, r.offset)
		case u.n == l.n:
			vs.add("repeated", "%s key %q partition %d: value %d at offset %d repeats offset %d",
				topic, u.key, r.partition, u.n, r.offset, l.offset)
		case u.n < l.n:
			vs.add("went-back", "%s key %q partition %d: value %d at offset %d after %d at offset %d",
				topic, u.key, r.partition, u.n, r.offset, l.n, l.offset)
		}
		*l = last{r.partition, r.offset, u.n}
	}
	for _, k := range sortedKeys(want) {
		l := seen[k]
		switch {
		case l == nil:
			vs.add("missing", "%s key %q: no record, want final value %d", topic, k, want[k])
		case l.n != want[k]:
			vs.add("final", "%s key %q partition %d: final value %d at offset %d, want %d", topic, k, l.partition, l.n, l.offset, want[k])
		}
	}
	for _, k := range sortedKeys(seen) {
		if _, ok := want[k]; !ok {
			vs.add("unexpected", "%s key %q: final value %d at partition %d offset %d, want no record",
				topic, k, seen[k].n, seen[k].partition, seen[k].offset)
		}
	}
}

// checkOnce checks a stream of records that each stand for one input
// record identified by an id: each id appears as often as want says
// (exactly once for an id read once from the input) and no other id
// appears; content checks each record of an id.
func checkOnce(vs *violations, topic string, recs []rec, id func(rec) (string, error), want map[string]int, content func(id string, r rec) error) {
	type where struct {
		partition int32
		offset    int64
	}
	got := map[string][]where{}
	for _, r := range recs {
		k, err := id(r)
		if err != nil {
			vs.add("decode", "%s partition %d offset %d: %v", topic, r.partition, r.offset, err)
			continue
		}
		got[k] = append(got[k], where{r.partition, r.offset})
		if want[k] == 0 {
			continue
		}
		if err := content(k, r); err != nil {
			vs.add("content", "%s id %q partition %d offset %d: %v", topic, k, r.partition, r.offset, err)
		}
	}
	for _, k := range sortedKeys(want) {
		switch n := len(got[k]); {
		case n == 0:
			vs.add("lost", "%s id %q: not in the output, want %d", topic, k, want[k])
		case n > want[k]:
			vs.add("duplicate", "%s id %q: %d records at (partition, offset) %v, want %d", topic, k, n, got[k], want[k])
		case n < want[k]:
			vs.add("lost", "%s id %q: %d records at %v, want %d", topic, k, n, got[k], want[k])
		}
	}
	for _, k := range sortedKeys(got) {
		if want[k] == 0 {
			vs.add("unexpected", "%s id %q: %d records at (partition, offset) %v, want none", topic, k, len(got[k]), got[k])
		}
	}
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// ---------------------------------------------------------------------------
// Tests of the verifier's rules on made-up output: they show that each rule
// catches what it is for.

func countRecs(partition int32, kv ...any) []rec {
	var out []rec
	for i := 0; i < len(kv); i += 2 {
		v := make([]byte, 8)
		binary.BigEndian.PutUint64(v, uint64(kv[i+1].(int)))
		out = append(out, rec{partition: partition, offset: int64(len(out)), key: []byte(kv[i].(string)), value: v})
	}
	return out
}

func TestCheckCounts(t *testing.T) {
	want := map[string]int64{"a": 3, "b": 2}
	for _, tc := range []struct {
		name string
		recs []rec
		want map[string]int // violation kinds
	}{
		{"good", countRecs(0, "a", 1, "b", 1, "a", 3, "b", 2), map[string]int{}},
		{"good with gaps in the values", countRecs(1, "a", 2, "a", 3, "b", 2), map[string]int{}},
		{"repeated", countRecs(0, "a", 1, "a", 2, "a", 2, "a", 3, "b", 2), map[string]int{"repeated": 1}},
		{"went back", countRecs(0, "a", 2, "a", 1, "a", 3, "b", 2), map[string]int{"went-back": 1}},
		{"overcounted", countRecs(0, "a", 1, "a", 2, "a", 3, "a", 4, "b", 2), map[string]int{"final": 1}},
		{"undercounted", countRecs(0, "a", 3, "b", 1), map[string]int{"final": 1}},
		{"missing", countRecs(0, "a", 3), map[string]int{"missing": 1}},
		{"unexpected", countRecs(0, "a", 3, "b", 2, "c", 1), map[string]int{"unexpected": 1}},
		{"two partitions", append(countRecs(0, "a", 3, "b", 1), countRecs(2, "b", 2)...), map[string]int{"partitions": 1}},
		{"bad value", []rec{{key: []byte("a"), value: []byte{1}}}, map[string]int{"decode": 1, "missing": 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var vs violations
			checkCounts(&vs, "counts", tc.recs, int64Count, want)
			if got := vs.kinds(); !maps.Equal(got, tc.want) {
				t.Errorf("violations %v, want kinds %v", vs.report(10), tc.want)
			}
		})
	}
}

func TestCheckOnce(t *testing.T) {
	want := map[string]int{"o1": 1, "o2": 1, "o3": 2}
	mk := func(ids ...string) []rec {
		var out []rec
		for i, id := range ids {
			out = append(out, rec{offset: int64(i), key: []byte(id), value: []byte("v-" + id)})
		}
		return out
	}
	id := func(r rec) (string, error) {
		if len(r.key) == 0 {
			return "", fmt.Errorf("no key")
		}
		return string(r.key), nil
	}
	content := func(id string, r rec) error {
		if string(r.value) != "v-"+id {
			return fmt.Errorf("value %q", r.value)
		}
		return nil
	}
	bad := mk("o1", "o2", "o3", "o3")
	bad[1].value = []byte("v-o1")
	for _, tc := range []struct {
		name string
		recs []rec
		want map[string]int
	}{
		{"good", mk("o3", "o1", "o2", "o3"), map[string]int{}},
		{"duplicate", mk("o1", "o2", "o1", "o3", "o3"), map[string]int{"duplicate": 1}},
		{"lost", mk("o1", "o3", "o3"), map[string]int{"lost": 1}},
		{"lost one of two", mk("o1", "o2", "o3"), map[string]int{"lost": 1}},
		{"unexpected", mk("o1", "o2", "o3", "o3", "o9"), map[string]int{"unexpected": 1}},
		{"content", bad, map[string]int{"content": 1}},
		{"undecodable", append(mk("o1", "o2", "o3", "o3"), rec{}), map[string]int{"decode": 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var vs violations
			checkOnce(&vs, "out", tc.recs, id, want, content)
			if got := vs.kinds(); !maps.Equal(got, tc.want) {
				t.Errorf("violations %v, want kinds %v", vs.report(10), tc.want)
			}
		})
	}
}
