package interop

import (
	"bytes"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Transaction compatibility matrix: every test here drives eddy's
// transaction support with one client and checks, with an independent
// read_committed reader, that committed records are visible exactly once
// and aborted records never are.

// abortedTag marks the value of every record a test writes in a
// transaction it aborts; a read_committed reader must never see one.
const abortedTag = "ABORTED"

// requireTransactions fails a transaction test when the broker does not
// advertise EndTxn (26): every target of this suite implements it.
func requireTransactions(t *testing.T, addr string) {
	t.Helper()
	if !brokerSupports(t, addr, 26) {
		t.Fatal("broker does not advertise EndTxn (26): transactions cannot be tested")
	}
}

// tagRecs returns recs with tag prepended to every value.
func tagRecs(tag string, recs []rec) []rec {
	out := append([]rec(nil), recs...)
	for i := range out {
		out[i].Value = tag + "-" + out[i].Value
	}
	return out
}

// produceTxnFranz writes recs in one franz-go transaction with txnID and
// commits or aborts it. It returns the records with their acknowledged
// partition and offset.
func produceTxnFranz(t *testing.T, addr, topic, txnID string, recs []rec, commit bool) []rec {
	t.Helper()
	cl := newClient(t, addr, kgo.DefaultProduceTopic(topic), kgo.TransactionalID(txnID),
		kgo.TransactionTimeout(30*time.Second))
	ctx := testCtx(t, 60*time.Second)
	if err := cl.BeginTransaction(); err != nil {
		t.Fatalf("BeginTransaction: %v", err)
	}
	krs := make([]*kgo.Record, len(recs))
	for i, r := range recs {
		krs[i] = &kgo.Record{Key: []byte(r.Key), Value: []byte(r.Value)}
	}
	if err := cl.ProduceSync(ctx, krs...).FirstErr(); err != nil {
		t.Fatalf("transactional produce: %v", err)
	}
	if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
		t.Fatalf("EndTransaction(commit=%v): %v", commit, err)
	}
	out := make([]rec, len(recs))
	for i, kr := range krs {
		out[i] = rec{Partition: kr.Partition, Offset: kr.Offset, Key: string(kr.Key), Value: string(kr.Value)}
	}
	return out
}

// consumeCommitted reads topic from the start with a read_committed
// franz-go consumer until it holds every value of want (failing after a
// deadline), failing at once on a record of an aborted transaction or a
// record read twice. The caller writes a committed transaction after every
// aborted one, so reaching want proves the reader passed the aborted data.
func consumeCommitted(t *testing.T, addr, topic string, want []rec) []rec {
	t.Helper()
	cl := newClient(t, addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(200*time.Millisecond))
	ctx := testCtx(t, 60*time.Second)
	wantSet := make(map[string]bool, len(want))
	for _, r := range want {
		wantSet[r.Key+"\x00"+r.Value] = true
	}
	seen := map[string]bool{}
	var out []rec
	for len(seen) < len(wantSet) {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read_committed: read %d of %d records before the deadline", len(seen), len(wantSet))
		}
		for _, e := range fs.Errors() {
			t.Fatalf("read_committed fetch %s/%d: %v", e.Topic, e.Partition, e.Err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			got := rec{Partition: r.Partition, Offset: r.Offset, Key: string(r.Key), Value: string(r.Value)}
			k := got.Key + "\x00" + got.Value
			switch {
			case strings.Contains(got.Value, abortedTag):
				t.Fatalf("read_committed consumer saw a record of an aborted transaction: %v", got)
			case !wantSet[k]:
				t.Fatalf("read_committed consumer saw an unexpected record: %v", got)
			case seen[k]:
				t.Fatalf("read_committed consumer saw a record twice: %v", got)
			}
			seen[k] = true
			out = append(out, got)
		})
	}
	return out
}

// TestKcatReadCommitted writes committed and aborted transactions with
// franz-go, then reads with kcat: read_committed must return the committed
// records only, read_uncommitted must return all of them (so the check
// above can fail).
func TestKcatReadCommitted(t *testing.T) {
	kcat := kcatPath(t)
	c := startCluster(t)
	requireTransactions(t, c.Addr())
	topic := createTopic(t, c.Addr(), 3, nil)
	txnID := "txn-" + topic
	var committed, all []rec
	for i, commit := range []bool{true, false, true, false, true} {
		tag := "committed"
		if !commit {
			tag = abortedTag
		}
		rs := produceTxnFranz(t, c.Addr(), topic, txnID, tagRecs(fmt.Sprintf("%s%d", tag, i), testRecords("kcattxn", 60)), commit)
		all = append(all, rs...)
		if commit {
			committed = append(committed, rs...)
		}
	}
	checkSameRecords(t, consumeCommitted(t, c.Addr(), topic, committed), committed)

	out := runCmd(t, kcatTimeout, nil, kcat, "-b", c.Addr(), "-t", topic, "-C", "-e", "-q",
		"-o", "beginning", "-f", kcatFormat, "-X", "isolation.level=read_committed")
	checkSameRecords(t, parseKcat(t, out), committed)

	out = runCmd(t, kcatTimeout, nil, kcat, "-b", c.Addr(), "-t", topic, "-C", "-e", "-q",
		"-o", "beginning", "-f", kcatFormat, "-X", "isolation.level=read_uncommitted")
	checkSameRecords(t, parseKcat(t, out), all)
}

// TestSaramaTransactionalProducer commits and aborts transactions with
// sarama's transactional producer, including the consumed offsets of a
// group, and checks them with a read_committed franz-go reader and kadm.
func TestSaramaTransactionalProducer(t *testing.T) {
	c := startCluster(t)
	requireTransactions(t, c.Addr())
	in := createTopic(t, c.Addr(), 3, nil)
	out := createTopic(t, c.Addr(), 3, nil)
	group := "g-" + out
	input := produceFranz(t, c.Addr(), in, testRecords("saramatxn-in", 90))

	cfg := saramaConfig()
	cfg.Producer.Idempotent = true
	cfg.Producer.Transaction.ID = "txn-" + out
	cfg.Producer.Transaction.Timeout = 30 * time.Second
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Retry.Max = 5
	cfg.Net.MaxOpenRequests = 1
	cfg.Version = sarama.V2_6_0_0
	p, err := sarama.NewSyncProducer([]string{c.Addr()}, cfg)
	if err != nil {
		t.Fatalf("NewSyncProducer (transactional): %v", err)
	}
	defer p.Close()
	if !p.IsTransactional() {
		t.Fatal("sarama producer is not transactional")
	}

	// One transaction per input partition: the transformed records and the
	// group's offset past them; the middle one is aborted.
	byPart := map[int32][]rec{}
	for _, r := range input {
		byPart[r.Partition] = append(byPart[r.Partition], r)
	}
	var committed []rec
	wantOffsets := map[int32]int64{}
	for part := int32(0); part < 3; part++ {
		rs := byPart[part]
		commit := part != 1
		tag := "committed"
		if !commit {
			tag = abortedTag
		}
		if err := p.BeginTxn(); err != nil {
			t.Fatalf("BeginTxn: %v", err)
		}
		msgs := saramaMessages(tagRecs(tag, rs), out)
		if err := p.SendMessages(msgs); err != nil {
			t.Fatalf("SendMessages in transaction: %v", err)
		}
		end := rs[len(rs)-1].Offset + 1
		err := p.AddOffsetsToTxn(map[string][]*sarama.PartitionOffsetMetadata{
			in: {{Partition: part, Offset: end}},
		}, group)
		if err != nil {
			t.Fatalf("AddOffsetsToTxn: %v", err)
		}
		if commit {
			if err := p.CommitTxn(); err != nil {
				t.Fatalf("CommitTxn: %v", err)
			}
			committed = append(committed, fromSarama(msgs)...)
			wantOffsets[part] = end
		} else if err := p.AbortTxn(); err != nil {
			t.Fatalf("AbortTxn: %v", err)
		}
	}
	if p.TxnStatus()&sarama.ProducerTxnFlagReady == 0 {
		t.Fatalf("sarama transaction status %v after commit/abort, want ready", p.TxnStatus())
	}
	checkSameRecords(t, consumeCommitted(t, c.Addr(), out, committed), committed)
	got, err := committedOffsets(t, c.Addr(), group, in)
	if err != nil {
		t.Fatalf("fetch committed offsets: %v", err)
	}
	if fmt.Sprint(got) != fmt.Sprint(wantOffsets) {
		t.Fatalf("group %s committed %v, want %v (the aborted transaction's offset must not count)", group, got, wantOffsets)
	}
}

// TestPythonConfluentTransactions runs librdkafka's transactional
// consume-transform-produce (send_offsets_to_transaction with the
// consumer's group metadata) through testdata/pyclient.py: first aborted,
// then committed from the same starting point.
func TestPythonConfluentTransactions(t *testing.T) {
	py := pythonWith(t, "confluent_kafka")
	c := startCluster(t)
	requireTransactions(t, c.Addr())
	in := createTopic(t, c.Addr(), 3, nil)
	out := createTopic(t, c.Addr(), 3, nil)
	group := "g-" + out
	input := produceFranz(t, c.Addr(), in, testRecords("pytxn", 120))
	run := func(tag string, abort bool) []rec {
		args := []string{"testdata/pyclient.py", "confluent", "transact", "--brokers", c.Addr(),
			"--input", in, "--topic", out, "--group", group, "--count", strconv.Itoa(len(input)),
			"--transactional-id", "txn-" + out, "--tag", tag}
		if abort {
			args = append(args, "--abort")
		}
		return parseJSONRecs(t, runCmd(t, 90*time.Second, nil, py, args...))
	}

	aborted := run(abortedTag, true)
	checkSameValues(t, aborted, tagRecs(abortedTag, input), false)
	if got, err := committedOffsets(t, c.Addr(), group, in); err != nil || len(got) != 0 {
		t.Fatalf("after the aborted transaction the group has offsets %v (err %v), want none", got, err)
	}

	committed := run("committed", false)
	checkSameValues(t, committed, tagRecs("committed", input), false)
	checkSameRecords(t, consumeCommitted(t, c.Addr(), out, committed), committed)
	// The aborted records are in the log (read_uncommitted sees them).
	checkSameRecords(t, consumeAll(t, c.Addr(), out, len(aborted)+len(committed)), append(aborted, committed...))
	// The group's offsets are the input's end offsets, and they are stable:
	// an OffsetFetch with RequireStable answers them too.
	want := endOffsets(t, c.Addr(), in)
	got, err := committedOffsets(t, c.Addr(), group, in)
	if err != nil {
		t.Fatalf("fetch committed offsets: %v", err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("group %s committed %v, want the input end offsets %v", group, got, want)
	}
	resps, err := kadm.NewClient(newClient(t, c.Addr())).FetchOffsets(kadm.RequireStable(testCtx(t, 15*time.Second)), group)
	if err == nil {
		err = resps.Error()
	}
	if err != nil {
		t.Fatalf("OffsetFetch with RequireStable: %v", err)
	}
	stable := map[int32]int64{}
	for p, r := range resps[in] {
		stable[p] = r.At
	}
	if fmt.Sprint(stable) != fmt.Sprint(want) {
		t.Fatalf("OffsetFetch with RequireStable: %v, want %v", stable, want)
	}
}

// TestKafkaPythonIdempotentProducer checks kafka-python's idempotent
// producer when the installed kafka-python has one (it arrived in 2.2.0;
// Debian ships 2.0.2, whose KafkaProducer rejects enable_idempotence).
func TestKafkaPythonIdempotentProducer(t *testing.T) {
	py := pythonWith(t, "kafka")
	probe := exec.Command(py, "-c", "import kafka, sys\n"+
		"print(kafka.__version__)\n"+
		"sys.exit(0 if 'enable_idempotence' in kafka.KafkaProducer.DEFAULT_CONFIG else 3)")
	verOut, err := probe.Output()
	version := string(bytes.TrimSpace(verOut))
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 3 {
			t.Skipf("kafka-python %s has no idempotent producer (KafkaProducer lacks enable_idempotence; added in kafka-python 2.2.0): not a broker limitation", version)
		}
		t.Fatalf("probing kafka-python: %v", err)
	}
	c := startCluster(t)
	requireIdempotence(t, c.Addr())
	topic := createTopic(t, c.Addr(), 3, nil)
	want := testRecords("kpidem", 300)
	var in bytes.Buffer
	for _, r := range want {
		fmt.Fprintf(&in, "%s\t%s\n", r.Key, r.Value)
	}
	out := runCmd(t, 90*time.Second, in.Bytes(), py, "testdata/pyclient.py", "kafka-python", "produce",
		"--brokers", c.Addr(), "--topic", topic, "--idempotent")
	acked := parseJSONRecs(t, out)
	checkOffsetsContiguous(t, acked)
	checkSameValues(t, acked, want, false)
	checkSameRecords(t, consumeAll(t, c.Addr(), topic, len(want)), acked)
}
