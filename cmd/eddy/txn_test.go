package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// API keys of the operator transaction APIs the txn commands use.
const (
	keyDescribeProducers    = 61
	keyDescribeTransactions = 65
	keyListTransactions     = 66
)

// skipUnlessServed skips the test unless every broker of the target cluster
// advertises all the given API keys. kfake serves them all; on eddy's broker
// each part of the test runs once the broker advertises its API.
func skipUnlessServed(t *testing.T, keys ...int16) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(testBrokers, ",")...))
	if err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(cl)
	defer adm.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	vs, err := adm.ApiVersions(ctx)
	if err != nil {
		t.Fatalf("api versions: %v", err)
	}
	for _, v := range vs.Sorted() {
		if v.Err != nil {
			t.Fatalf("api versions of node %d: %v", v.NodeID, v.Err)
		}
		for _, key := range keys {
			if _, ok := v.KeyMaxVersion(key); !ok {
				t.Skipf("%s node %d does not serve API key %d", testTarget, v.NodeID, key)
			}
		}
	}
}

// fieldOf returns the value of a "KEY   value" line of a describe block.
func fieldOf(out, key string) string {
	for line := range strings.SplitSeq(out, "\n") {
		if k, v, ok := strings.Cut(line, " "); ok && k == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// TestTxnListDescribeProducers runs a real transactional producer, leaves
// its transaction open, and checks what list, describe and producers show
// before and after the commit.
func TestTxnListDescribeProducers(t *testing.T) {
	skipUnlessServed(t, keyListTransactions, keyDescribeTransactions)
	topic := newTopic(t)
	txnID := topic + "-txn"
	mustRun(t, "", "topic", "create", topic, "-p", "3")

	cl, err := kgo.NewClient(
		kgo.SeedBrokers(strings.Split(testBrokers, ",")...),
		kgo.TransactionalID(txnID),
		kgo.TransactionTimeout(time.Minute),
		kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	// One record each to partitions 0 and 2: sequence 0, first offset 0.
	if err := cl.ProduceSync(ctx,
		&kgo.Record{Partition: 0, Value: []byte("a")},
		&kgo.Record{Partition: 2, Value: []byte("b")},
	).FirstErr(); err != nil {
		t.Fatal(err)
	}
	pid, epoch, err := cl.ProducerID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	spid := fmt.Sprint(pid)

	out := mustRun(t, "", "txn", "list")
	if !containsLine(out, "TRANSACTIONAL-ID", "COORDINATOR", "PRODUCER-ID", "STATE") {
		t.Fatalf("list header:\n%s", out)
	}
	if !lineWith(out, txnID, spid, "Ongoing") {
		t.Fatalf("list does not show %s (pid %d) Ongoing:\n%s", txnID, pid, out)
	}
	filters := []struct {
		args []string
		want bool
	}{
		{[]string{"--state", "Ongoing"}, true},
		{[]string{"--state", "ongoing,PrepareCommit"}, true},
		{[]string{"--state", "Empty"}, false},
		{[]string{"--state", "CompleteCommit", "--state", "CompleteAbort"}, false},
		{[]string{"--producer-id", spid}, true},
		{[]string{"--producer-id", fmt.Sprint(pid + 1)}, false},
		{[]string{"--producer-id", spid, "--state", "Empty"}, false},
	}
	for _, f := range filters {
		out := mustRun(t, "", append([]string{"txn", "list"}, f.args...)...)
		if got := strings.Contains(out, txnID); got != f.want {
			t.Errorf("list %v: shows %s = %v, want %v:\n%s", f.args, txnID, got, f.want, out)
		}
	}

	out = mustRun(t, "", "txn", "describe", txnID)
	for key, want := range map[string]string{
		"TRANSACTIONAL-ID": txnID,
		"STATE":            "Ongoing",
		"PRODUCER-ID":      spid,
		"PRODUCER-EPOCH":   fmt.Sprint(epoch),
		"TIMEOUT":          "1m0s",
		"PARTITIONS":       "2",
	} {
		if got := fieldOf(out, key); got != want {
			t.Errorf("describe %s = %q, want %q", key, got, want)
		}
	}
	if start, err := time.Parse(timeLayout, fieldOf(out, "START-TIME")); err != nil || time.Since(start) > time.Hour || time.Until(start) > time.Hour {
		t.Errorf("describe START-TIME %q: %v", fieldOf(out, "START-TIME"), err)
	}
	if _, err := time.ParseDuration(fieldOf(out, "DURATION")); err != nil {
		t.Errorf("describe DURATION of an open transaction: %v", err)
	}
	if !containsLine(out, topic, "0") || !containsLine(out, topic, "2") || containsLine(out, topic, "1") {
		t.Errorf("describe does not list exactly partitions 0 and 2:\n%s", out)
	}
	if fieldOf(out, "COORDINATOR") == "" {
		t.Errorf("describe lacks the coordinator:\n%s", out)
	}

	t.Run("producers-open", func(t *testing.T) {
		skipUnlessServed(t, keyDescribeProducers)
		out := mustRun(t, "", "txn", "producers", topic)
		for _, p := range []string{"0", "2"} {
			// TOPIC PARTITION LEADER PRODUCER-ID EPOCH LAST-SEQUENCE
			// LAST-TIMESTAMP COORDINATOR-EPOCH TXN-START-OFFSET
			f := columnsOf(out, topic, p)
			if len(f) != 9 || f[3] != spid || f[4] != fmt.Sprint(epoch) || f[5] != "0" || f[8] != "0" {
				t.Errorf("producers partition %s: want pid %d epoch %d, last sequence 0, txn start offset 0:\n%s", p, pid, epoch, out)
			}
		}
		if containsLine(out, topic, "1") {
			t.Errorf("producers shows partition 1, which is not in the transaction:\n%s", out)
		}
		out = mustRun(t, "", "txn", "producers", topic, "-p", "2")
		if containsLine(out, topic, "0") || !containsLine(out, topic, "2") {
			t.Errorf("producers -p 2:\n%s", out)
		}
	})

	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	// The coordinator finishes the commit (markers) asynchronously in Kafka:
	// poll until the transaction is no longer Ongoing or Prepare*.
	deadline := time.Now().Add(15 * time.Second)
	for {
		out = mustRun(t, "", "txn", "list", "--producer-id", spid)
		if lineWith(out, txnID, spid, "Empty") || lineWith(out, txnID, spid, "CompleteCommit") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after commit, list does not show %s Empty or CompleteCommit:\n%s", txnID, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if out := mustRun(t, "", "txn", "list", "--state", "Ongoing"); strings.Contains(out, txnID) {
		t.Errorf("committed transaction still Ongoing:\n%s", out)
	}
	out = mustRun(t, "", "txn", "describe", txnID)
	if st := fieldOf(out, "STATE"); st != "Empty" && st != "CompleteCommit" {
		t.Errorf("describe after commit: STATE %q", st)
	}
	if got := fieldOf(out, "PARTITIONS"); got != "0" {
		t.Errorf("describe after commit: PARTITIONS %q, want 0:\n%s", got, out)
	}
	if got := fieldOf(out, "DURATION"); got != "-" {
		t.Errorf("describe after commit: DURATION %q, want -:\n%s", got, out)
	}
	t.Run("producers-committed", func(t *testing.T) {
		skipUnlessServed(t, keyDescribeProducers)
		// A committed producer may stay listed (Kafka keeps the state of
		// idempotent producers), but without an open transaction.
		out := mustRun(t, "", "txn", "producers", topic)
		for _, p := range []string{"0", "2"} {
			if f := columnsOf(out, topic, p); f != nil && (len(f) != 9 || f[8] != "-") {
				t.Errorf("partition %s still has a txn start offset:\n%s", p, out)
			}
		}
	})
}

// columnsOf returns the whitespace-separated columns of the first line of
// out that starts with the given columns, or nil.
func columnsOf(out string, prefix ...string) []string {
	for line := range strings.SplitSeq(out, "\n") {
		cols := strings.Fields(line)
		if len(cols) >= len(prefix) && slices.Equal(cols[:len(prefix)], prefix) {
			return cols
		}
	}
	return nil
}

// lineWith reports whether one line of out has every given column, in any
// position.
func lineWith(out string, cols ...string) bool {
	for line := range strings.SplitSeq(out, "\n") {
		fields := strings.Fields(line)
		ok := true
		for _, c := range cols {
			if !slices.Contains(fields, c) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func TestTxnErrors(t *testing.T) {
	// Flag validation needs no broker support.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"txn", "list", "--state", "Running"}, "invalid --state"},
		{[]string{"txn", "list", "--producer-id", "-5"}, "invalid --producer-id"},
		{[]string{"txn", "describe"}, "requires at least 1 arg"},
		{[]string{"txn", "producers"}, "accepts 1 arg"},
	} {
		if _, _, err := run(t, "", c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err = %v, want one containing %q", c.args, err, c.want)
		}
	}
	t.Run("describe", func(t *testing.T) {
		skipUnlessServed(t, keyDescribeTransactions)
		_, _, err := run(t, "", "txn", "describe", "no-such-txn-id")
		if err == nil || !strings.Contains(err.Error(), "TRANSACTIONAL_ID_NOT_FOUND") {
			t.Errorf("describe of an unknown id: err = %v", err)
		}
	})
	t.Run("producers", func(t *testing.T) {
		skipUnlessServed(t, keyDescribeProducers)
		topic := newTopic(t)
		mustRun(t, "", "topic", "create", topic, "-p", "1")
		if _, _, err := run(t, "", "txn", "producers", "no-such-topic"); err == nil || !strings.Contains(err.Error(), "UNKNOWN_TOPIC_OR_PARTITION") {
			t.Errorf("producers of an unknown topic: err = %v", err)
		}
		if _, _, err := run(t, "", "txn", "producers", topic, "-p", "7"); err == nil || !strings.Contains(err.Error(), "partition 7") {
			t.Errorf("producers of an unknown partition: err = %v", err)
		}
		// A topic nobody writes transactionally: just the header.
		if out := mustRun(t, "", "txn", "producers", topic); strings.Count(out, "\n") != 1 {
			t.Errorf("producers of an idle topic:\n%s", out)
		}
	})
}
