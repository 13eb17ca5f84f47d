package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestProduceConsumeFormats(t *testing.T) {
	topic := newTopic(t)
	mustRun(t, "", "topic", "create", topic, "-p", "1")
	_, errOut, err := run(t, "k1:v1\nk2:v:2\nnokey\r\n\nlast:x", "produce", topic, "--key-delim", ":", "-H", "h1=a", "-H", "h2=b", "-z", "zstd")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errOut, "produced 5 records to "+topic) {
		t.Fatalf("produce report: %q", errOut)
	}
	out := mustRun(t, "", "consume", topic, "-e", "--format", `%t|%p|%o|%k|%v|%h|%K|%S\n`)
	want := []string{
		topic + "|0|0|k1|v1|h1=a,h2=b|2|2",
		topic + "|0|1|k2|v:2|h1=a,h2=b|2|3",
		topic + "|0|2||nokey|h1=a,h2=b|0|5",
		topic + "|0|3|||h1=a,h2=b|0|0",
		topic + "|0|4|last|x|h1=a,h2=b|4|1",
	}
	if got := strings.Split(strings.TrimSuffix(out, "\n"), "\n"); !slices.Equal(got, want) {
		t.Fatalf("consume output:\n%s\nwant:\n%s", out, strings.Join(want, "\n"))
	}

	// Timestamps: %T prints Unix ms close to now.
	out = mustRun(t, "", "consume", topic, "-e", "-c", "1", "-f", `%T`)
	var ts int64
	if _, err := fmt.Sscan(out, &ts); err != nil || time.Since(time.UnixMilli(ts)).Abs() > time.Minute {
		t.Fatalf("%%T printed %q", out)
	}
	// Literal percent and tab escapes.
	if out := mustRun(t, "", "consume", topic, "-e", "-c", "1", "-f", `%%\t%o\n`); out != "%\t0\n" {
		t.Fatalf("escapes: %q", out)
	}
	if _, _, err := run(t, "", "consume", topic, "-e", "-f", "%x"); err == nil {
		t.Fatal("unknown verb accepted")
	}
}

func TestConsumeOffsets(t *testing.T) {
	topic := newTopic(t)
	mustRun(t, "", "topic", "create", topic, "-p", "2")
	var in strings.Builder
	for i := range 10 {
		fmt.Fprintf(&in, "v%d\n", i)
	}
	mustRun(t, in.String(), "produce", topic, "--partition", "0")
	mustRun(t, "a\nb\n", "produce", topic, "--partition", "1")

	cases := []struct {
		args []string
		want string
	}{
		{[]string{"-o", "start", "-p", "0"}, "v0 v1 v2 v3 v4 v5 v6 v7 v8 v9"},
		{[]string{"-o", "7", "-p", "0"}, "v7 v8 v9"},
		{[]string{"-o", "-2", "-p", "0"}, "v8 v9"},
		{[]string{"-o", "end"}, ""},
		{[]string{"-o", "3", "-p", "0", "-c", "2"}, "v3 v4"},
		{[]string{"-p", "1"}, "a b"},
		{[]string{"-o", "@0", "-p", "1"}, "a b"},
		{[]string{"-o", fmt.Sprintf("@%d", time.Now().Add(time.Hour).UnixMilli())}, ""},
	}
	for _, c := range cases {
		args := append([]string{"consume", topic, "-e", "-f", `%v `}, c.args...)
		out := strings.TrimSpace(mustRun(t, "", args...))
		if out != c.want {
			t.Errorf("%v: got %q, want %q", c.args, out, c.want)
		}
	}
	// Both partitions, no --partition: all 12 records.
	out := mustRun(t, "", "consume", topic, "-e", "-f", `%p:%v\n`)
	if n := strings.Count(out, "\n"); n != 12 {
		t.Fatalf("consumed %d records from both partitions, want 12:\n%s", n, out)
	}
	for _, bad := range []string{"x", "@y", "@-1"} {
		if _, _, err := run(t, "", "consume", topic, "-e", "-o", bad); err == nil {
			t.Errorf("--offset %q accepted", bad)
		}
	}
}

// TestConsumeFollow checks that without --exit-at-end the consumer keeps
// following new records and stops at --count.
func TestConsumeFollow(t *testing.T) {
	topic := newTopic(t)
	mustRun(t, "", "topic", "create", topic, "-p", "1")
	type result struct {
		out string
		err error
	}
	done := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, _, err := runCtx(ctx, "", "consume", topic, "-o", "end", "-c", "3")
		done <- result{out, err}
	}()
	// Keep producing until the follower has seen three records produced
	// after it started; "end" may be resolved after some of them.
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; ; i++ {
		select {
		case r := <-done:
			if r.err != nil {
				t.Fatal(r.err)
			}
			if n := strings.Count(r.out, "\n"); n != 3 {
				t.Fatalf("follow printed %d lines, want 3: %q", n, r.out)
			}
			return
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("follower did not finish")
		}
		mustRun(t, fmt.Sprintf("r%d\n", i), "produce", topic)
		select {
		case r := <-done:
			done <- r
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func TestConsumeInterrupt(t *testing.T) {
	topic := newTopic(t)
	mustRun(t, "", "topic", "create", topic, "-p", "1")
	mustRun(t, "x\n", "produce", topic)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, _, err := runCtx(ctx, "", "consume", topic)
		done <- err
	}()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("interrupted consume returned %v, want nil", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("consume did not stop on cancel")
	}
}

func TestProduceErrors(t *testing.T) {
	for _, args := range [][]string{
		{"produce", "t", "--acks", "2"},
		{"produce", "t", "-z", "brotli"},
		{"produce", "t", "-H", "novalue"},
		{"produce"},
	} {
		if _, _, err := run(t, "x\n", args...); err == nil {
			t.Errorf("%v: accepted", args)
		}
	}
}

func TestProduceCodecsAndAcks(t *testing.T) {
	topic := newTopic(t)
	mustRun(t, "", "topic", "create", topic, "-p", "1")
	var want []string
	for _, codec := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		for _, acks := range []string{"all", "1", "0"} {
			line := codec + "/" + acks
			want = append(want, line)
			mustRun(t, line+"\n", "produce", topic, "-z", codec, "--acks", acks)
		}
	}
	// acks=0 gives no delivery guarantee, but against a local broker every
	// record arrives; read all of them back. Not in order: an acks=0 record
	// may still be in the broker's queue of its closed connection when the
	// next command's record is appended.
	out := mustRun(t, "", "consume", topic, "-e")
	got := strings.Fields(out)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestParseFormat(t *testing.T) {
	for _, bad := range []string{"%", "%q", "abc%"} {
		if _, err := parseFormat(bad); err == nil {
			t.Errorf("parseFormat(%q) accepted", bad)
		}
	}
	f, err := parseFormat(`a\\b\x%%`)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(f.append(nil, nil)); got != `a\b\x%` {
		t.Fatalf("literal format = %q", got)
	}
}

func TestProduceUnknownTopic(t *testing.T) {
	start := time.Now()
	_, errOut, err := run(t, "x\n", "produce", newTopic(t))
	if err == nil || !strings.Contains(err.Error(), "UNKNOWN_TOPIC_OR_PARTITION") {
		t.Fatalf("produce to a missing topic (no auto-create on kfake): err = %v", err)
	}
	if !strings.Contains(errOut, "produced 0 records") || !strings.Contains(errOut, "(1 failed)") {
		t.Fatalf("report: %q", errOut)
	}
	t.Logf("failed after %v", time.Since(start))
}

// TestConsumeReadCommitted writes a committed and an aborted transaction and
// checks --read-committed hides the aborted records and that --exit-at-end
// still ends although the log ends with a transaction marker.
func TestConsumeReadCommitted(t *testing.T) {
	topic := newTopic(t)
	mustRun(t, "", "topic", "create", topic, "-p", "1")
	cl, err := kgo.NewClient(kgo.SeedBrokers(testBrokers), kgo.TransactionalID(topic+"-txn"), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, c := range []struct {
		value  string
		commit kgo.TransactionEndTry
	}{{"committed", kgo.TryCommit}, {"aborted", kgo.TryAbort}} {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(c.value)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := cl.EndTransaction(ctx, c.commit); err != nil {
			t.Fatal(err)
		}
	}
	if out := mustRun(t, "", "consume", topic, "-e", "--read-committed"); out != "committed\n" {
		t.Fatalf("read committed: %q", out)
	}
	if out := mustRun(t, "", "consume", topic, "-e"); out != "committed\naborted\n" {
		t.Fatalf("read uncommitted: %q", out)
	}
}
