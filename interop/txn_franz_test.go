package interop

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// txnMemberEnv, when set in the environment of the test binary, turns the
// process into one member of TestFranzGroupTransactSession's pipeline (see
// TestMain): its value is a JSON txnMemberConfig.
const txnMemberEnv = "EDDY_INTEROP_TXN_MEMBER"

// txnMemberConfig configures one pipeline member process.
type txnMemberConfig struct {
	Brokers       string        `json:"brokers"`
	Input         string        `json:"input"`
	Output        string        `json:"output"`
	Group         string        `json:"group"`
	TxnID         string        `json:"txn_id"`
	TxnTimeout    time.Duration `json:"txn_timeout"`
	MaxPollRecord int           `json:"max_poll_records"`
}

// txnMemberMain runs a kgo.GroupTransactSession consume-transform-produce
// member: every input record is written to the output topic with "T-"
// prepended to its value, in a transaction that also commits the group's
// offsets. Commands arrive on stdin: "hang" makes the next transaction
// that has records stop after its records are written, without End, and
// wait to be killed; EOF stops the member gracefully between transactions.
// It prints "hanging N" (N records in the open transaction) and
// "commit N" lines on stdout and returns the process exit code.
func txnMemberMain() int {
	var cfg txnMemberConfig
	if err := json.Unmarshal([]byte(os.Getenv(txnMemberEnv)), &cfg); err != nil {
		fmt.Fprintf(os.Stderr, "member: bad %s: %v\n", txnMemberEnv, err)
		return 2
	}
	sess, err := kgo.NewGroupTransactSession(
		kgo.SeedBrokers(cfg.Brokers),
		kgo.TransactionalID(cfg.TxnID),
		kgo.TransactionTimeout(cfg.TxnTimeout),
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(cfg.Input),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RequireStableFetchOffsets(),
		kgo.SessionTimeout(6*time.Second),
		kgo.HeartbeatInterval(500*time.Millisecond),
		kgo.FetchMaxWait(200*time.Millisecond),
		kgo.DefaultProduceTopic(cfg.Output),
	)
	if err != nil {
		fmt.Fprintf(os.Stderr, "member: NewGroupTransactSession: %v\n", err)
		return 1
	}
	defer sess.Close()

	var hang, stop atomic.Bool
	go func() { // owned by the process: it ends with stdin or the process
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			if sc.Text() == "hang" {
				hang.Store(true)
			}
		}
		stop.Store(true)
	}()

	ctx := context.Background()
	for !stop.Load() {
		pollCtx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		fs := sess.PollRecords(pollCtx, cfg.MaxPollRecord)
		cancel()
		for _, e := range fs.Errors() {
			if errors.Is(e.Err, context.DeadlineExceeded) || errors.Is(e.Err, context.Canceled) {
				continue
			}
			fmt.Fprintf(os.Stderr, "member %s: fetch %s/%d: %v\n", cfg.TxnID, e.Topic, e.Partition, e.Err)
			return 1
		}
		var out []*kgo.Record
		fs.EachRecord(func(r *kgo.Record) {
			out = append(out, &kgo.Record{Key: r.Key, Value: append([]byte("T-"), r.Value...)})
		})
		if len(out) == 0 {
			continue
		}
		if err := sess.Begin(); err != nil {
			fmt.Fprintf(os.Stderr, "member %s: Begin: %v\n", cfg.TxnID, err)
			return 1
		}
		opCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		produceErr := sess.ProduceSync(opCtx, out...).FirstErr()
		if produceErr == nil && hang.Load() {
			fmt.Printf("hanging %d\n", len(out))
			select {} // mid-transaction: records written, no End; the test SIGKILLs us
		}
		try := kgo.TryCommit
		if produceErr != nil {
			// The session aborts; the records are consumed again later.
			fmt.Fprintf(os.Stderr, "member %s: produce (aborting): %v\n", cfg.TxnID, produceErr)
			try = kgo.TryAbort
		}
		committed, err := sess.End(opCtx, try)
		cancel()
		if err != nil {
			fmt.Fprintf(os.Stderr, "member %s: End: %v\n", cfg.TxnID, err)
			return 1
		}
		if committed {
			fmt.Printf("commit %d\n", len(out))
		}
	}
	return 0
}

// txnMember is a running member process.
type txnMember struct {
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	stderr *lockedBuffer
	exited chan struct{} // closed when the process has exited
	err    error         // its exit status, set before exited closes
}

func startTxnMember(t *testing.T, name string, cfg txnMemberConfig) *txnMember {
	t.Helper()
	env, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m := &txnMember{name: name, lines: make(chan string, 1024), stderr: &lockedBuffer{}, exited: make(chan struct{})}
	m.cmd = exec.Command(os.Args[0], "-test.run=^$")
	m.cmd.Env = append(os.Environ(), txnMemberEnv+"="+string(env))
	m.cmd.Stderr = m.stderr
	if m.stdin, err = m.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := m.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := m.cmd.Start(); err != nil {
		t.Fatalf("start member %s: %v", name, err)
	}
	go func() { // ends when the process's stdout closes
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case m.lines <- sc.Text():
			default: // nobody waits for commit lines; drop them
			}
		}
		m.err = m.cmd.Wait()
		close(m.exited)
	}()
	t.Cleanup(func() {
		_ = m.cmd.Process.Kill() // already gone unless the test failed
		<-m.exited
		if t.Failed() {
			t.Logf("member %s stderr:\n%s", name, m.stderr)
		}
	})
	return m
}

// waitLine waits for a stdout line starting with prefix and returns it.
func (m *txnMember) waitLine(t *testing.T, prefix string, d time.Duration) string {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case l := <-m.lines:
			if strings.HasPrefix(l, prefix) {
				return l
			}
		case <-timer.C:
			t.Fatalf("member %s: no %q line within %v; stderr:\n%s", m.name, prefix, d, m.stderr)
		}
	}
}

// kill SIGKILLs the member and waits for it to be gone.
func (m *txnMember) kill(t *testing.T) {
	t.Helper()
	if err := m.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill member %s: %v", m.name, err)
	}
	<-m.exited
}

// stop closes the member's stdin and waits for a clean exit.
func (m *txnMember) stop(t *testing.T) {
	t.Helper()
	m.stdin.Close()
	select {
	case <-m.exited:
		if m.err != nil {
			t.Fatalf("member %s exited with %v; stderr:\n%s", m.name, m.err, m.stderr)
		}
	case <-time.After(45 * time.Second):
		t.Fatalf("member %s did not stop; stderr:\n%s", m.name, m.stderr)
	}
}

// committedWatcher reads a topic read_committed, incrementally, failing on
// a record it does not expect or sees twice.
type committedWatcher struct {
	cl   *kgo.Client
	want map[string]bool
	seen map[string]bool
}

func (w *committedWatcher) waitFor(t *testing.T, n int, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for len(w.seen) < n {
		fs := w.cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read_committed output: %d of %d records after %v", len(w.seen), n, d)
		}
		for _, e := range fs.Errors() {
			t.Fatalf("read_committed fetch %s/%d: %v", e.Topic, e.Partition, e.Err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			k := string(r.Key) + "\x00" + string(r.Value)
			if !w.want[k] {
				t.Fatalf("read_committed output has an unexpected record %d@%d %q=%q", r.Partition, r.Offset, r.Key, r.Value)
			}
			if w.seen[k] {
				t.Fatalf("read_committed output has a record twice: %d@%d %q=%q", r.Partition, r.Offset, r.Key, r.Value)
			}
			w.seen[k] = true
		})
	}
}

// TestFranzGroupTransactSession runs a consume-transform-produce pipeline
// of kgo.GroupTransactSession members, each a subprocess of this test
// binary: members join, leave gracefully, and are SIGKILLed in the middle
// of a transaction (records written, no EndTxn). One killed member's
// transactional id is reused at once (InitProducerId fences it and aborts
// its transaction); the other's is never reused (the broker's transaction
// timeout aborts it). In the end a read_committed reader of the output sees
// every input record exactly once, the group has committed the input's end
// offsets, and the killed transactions' records are in the log but hidden.
func TestFranzGroupTransactSession(t *testing.T) {
	c := startCluster(t)
	requireTransactions(t, c.Addr())
	const partitions, chunks, perChunk = 6, 6, 300
	in := createTopic(t, c.Addr(), partitions, nil)
	out := createTopic(t, c.Addr(), partitions, nil)
	group := "g-" + out
	input := testRecords("gts", chunks*perChunk)
	want := tagRecs("T", input)
	wantSet := map[string]bool{}
	for _, r := range want {
		wantSet[r.Key+"\x00"+r.Value] = true
	}
	w := &committedWatcher{
		cl: newClient(t, c.Addr(), kgo.ConsumeTopics(out), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(200*time.Millisecond)),
		want: wantSet, seen: map[string]bool{},
	}
	cfg := func(txnID string, timeout time.Duration) txnMemberConfig {
		return txnMemberConfig{Brokers: c.Addr(), Input: in, Output: out, Group: group,
			TxnID: txnID, TxnTimeout: timeout, MaxPollRecord: 50}
	}
	chunk := 0
	produceChunk := func() {
		// Every partition gets records, so whichever partitions a member
		// owns, a "hang" command finds a transaction to hang in.
		parts := map[int32]bool{}
		for _, r := range produceFranz(t, c.Addr(), in, input[chunk*perChunk:(chunk+1)*perChunk]) {
			parts[r.Partition] = true
		}
		if len(parts) != partitions {
			t.Fatalf("input chunk %d reached %d of %d partitions", chunk, len(parts), partitions)
		}
		chunk++
	}
	const phase = 40 * time.Second
	hidden := 0 // records in transactions the test killed
	start := time.Now()
	logPhase := func(what string) {
		t.Logf("%6.2fs %s: %d of %d records committed", time.Since(start).Seconds(), what, len(w.seen), len(want))
	}

	// Two members, then a third joins.
	a := startTxnMember(t, "a", cfg("txn-a-"+out, 20*time.Second))
	b := startTxnMember(t, "b", cfg("txn-b-"+out, 20*time.Second))
	produceChunk()
	w.waitFor(t, chunk*perChunk, phase)
	logPhase("a and b joined")
	cm := startTxnMember(t, "c", cfg("txn-c-"+out, 3*time.Second))
	produceChunk()
	w.waitFor(t, chunk*perChunk, phase)

	logPhase("c joined")
	// Kill a mid-transaction; its replacement reuses its transactional id.
	a.stdin.Write([]byte("hang\n"))
	produceChunk()
	n, _ := strconv.Atoi(strings.TrimPrefix(a.waitLine(t, "hanging ", phase), "hanging "))
	hidden += n
	a.kill(t)
	a2 := startTxnMember(t, "a2", cfg("txn-a-"+out, 20*time.Second))
	w.waitFor(t, chunk*perChunk, phase)

	logPhase("a killed mid-transaction, a2 took its transactional id")
	// b leaves gracefully.
	b.stop(t)
	produceChunk()
	w.waitFor(t, chunk*perChunk, phase)

	logPhase("b left")
	// Kill c mid-transaction; its transactional id is never used again, so
	// only the broker's transaction timeout (3 s) ends its transaction.
	cm.stdin.Write([]byte("hang\n"))
	produceChunk()
	n, _ = strconv.Atoi(strings.TrimPrefix(cm.waitLine(t, "hanging ", phase), "hanging "))
	hidden += n
	cm.kill(t)
	d := startTxnMember(t, "d", cfg("txn-d-"+out, 20*time.Second))
	produceChunk()
	w.waitFor(t, chunk*perChunk, phase)
	logPhase("c killed mid-transaction, its transaction timed out, d joined")
	if chunk != chunks {
		t.Fatalf("produced %d chunks, want %d", chunk, chunks)
	}
	a2.stop(t)
	d.stop(t)

	// A fresh read_committed reader sees every input exactly once, the
	// group's offsets are at the input's end, and the killed members'
	// records are in the log (read_uncommitted) but were never visible.
	consumeCommitted(t, c.Addr(), out, want)
	waitCommittedAtEnd(t, c.Addr(), group, in)
	if hidden == 0 {
		t.Fatal("the killed members had no records in their open transactions")
	}
	if all := consumeAll(t, c.Addr(), out, len(want)+hidden); len(all) < len(want)+hidden {
		t.Fatalf("read_uncommitted sees %d records, want at least %d", len(all), len(want)+hidden)
	}
}
