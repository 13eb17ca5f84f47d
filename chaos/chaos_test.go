package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddy-streams/eddy/internal/testbin"
)

// fault is one kind of fault the scenario injects.
type fault int

const (
	// killWorker kills a random worker with SIGKILL and restarts it on
	// the same state directory after a random delay.
	killWorker fault = iota
	// killWorkerWipe is killWorker with the state directory removed
	// before the restart: the worker restores from the changelogs, under
	// a new process id.
	killWorkerWipe
	// killBroker kills the broker with SIGKILL and restarts it on the
	// same port and data directory after a random delay.
	killBroker
	// zombie stops a random worker with SIGSTOP for longer than its
	// session timeout, so that the group gives its tasks to the others,
	// then resumes it with SIGCONT: it must find itself fenced and must
	// not commit.
	zombie
)

var faultNames = [...]string{killWorker: "kill-worker", killWorkerWipe: "kill-worker-wipe", killBroker: "kill-broker", zombie: "zombie"}

func (f fault) String() string { return faultNames[f] }

// scenario is one run of an application under faults: a broker, its
// workers and the harness's clients.
type scenario struct {
	t         *testing.T
	rng       *rand.Rand
	app       *app
	guarantee string
	broker    *broker
	workers   []*worker
	adm       *kadm.Client
	producer  *kgo.Client
	exits     chan exit // workers that exited on their own
	round     int
	faults    map[fault]int
}

// newScenario starts a broker, creates the app's topics and starts its
// workers under guarantee.
func newScenario(t *testing.T, a *app, guarantee string) *scenario {
	t.Helper()
	s := &scenario{t: t, rng: seededRand(t), app: a, guarantee: guarantee, exits: make(chan exit, 64), faults: map[fault]int{}}
	dir, logs := t.TempDir(), logDir(t)
	bin := testbin.Program(t, "./examples/"+a.name)
	s.broker = startBroker(t, dir, logs)
	s.adm = kadm.NewClient(newClient(t, s.broker.addr))
	createTopics(t, s.adm, a.partitions, append(slices.Clone(a.inputs), a.outputs...)...)
	// The input producer is idempotent (franz-go's default) and retries
	// without limit, so it rides out broker restarts. Whatever it ends up
	// writing is the truth the verifier computes from.
	s.producer = newClient(t, s.broker.addr, kgo.ProducerLinger(5*time.Millisecond))
	for i := 0; i < a.workers; i++ {
		w := newWorker(t, dir, logs, a.name, bin, s.broker.addr, i, guarantee)
		w.unexpect = func(_ *proc, state *os.ProcessState, exited <-chan struct{}) {
			select {
			case s.exits <- exit{w, state.String(), exited}:
			default: // the test fails on the first ones already
			}
		}
		s.workers = append(s.workers, w)
		w.start()
	}
	if a.setup != nil {
		a.setup(s)
	}
	return s
}

// check fails the test if a worker exited without being killed, and
// restarts it.
func (s *scenario) check() {
	s.t.Helper()
	for {
		select {
		case e := <-s.exits:
			// A worker must survive every fault (Kafka Streams rejoins
			// the group after a fencing or an outage): an exit fails the
			// test. The harness then restarts it, as a supervisor would,
			// so that the run still verifies the output.
			e.w.logTail(8 << 10)
			s.t.Errorf("round %d: %s exited on its own: %s (log %s); restarting it", s.round, e.w.name, e.state, e.w.logPath)
			<-e.exited
			e.w.start()
		default:
			return
		}
	}
}

// exit is a worker's exit the harness did not cause.
type exit struct {
	w      *worker
	state  string
	exited <-chan struct{} // closed right after the exit is reported
}

// produce writes batches in turn, pausing pace between them; it returns
// once every record is acknowledged (it retries through broker restarts).
func (s *scenario) produce(batches [][]*kgo.Record, pace time.Duration) error {
	for i, b := range batches {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		err := s.producer.ProduceSync(ctx, b...).FirstErr()
		cancel()
		if err != nil {
			return fmt.Errorf("produce batch %d: %w", i, err)
		}
		if pace > 0 {
			time.Sleep(pace) // pacing the input, not waiting for a condition
		}
	}
	return nil
}

// runRounds runs n rounds: in each, the input of the round is produced in
// paced batches while one fault strikes at a random moment. The first
// rounds take the distinct kinds in faults in a random order, so that a
// short run sees each kind; the later ones pick at random from faults.
func (s *scenario) runRounds(n int, faults []fault) {
	t := s.t
	t.Helper()
	var first []fault
	for _, f := range faults {
		if !slices.Contains(first, f) {
			first = append(first, f)
		}
	}
	s.rng.Shuffle(len(first), func(i, j int) { first[i], first[j] = first[j], first[i] })
	for i := 0; i < n; i++ {
		s.round++
		batches := s.app.round(s.rng, s.round)
		const pace = 25 * time.Millisecond
		f := faults[s.rng.IntN(len(faults))]
		if i < len(first) {
			f = first[i]
		}
		if f == killBroker {
			s.waitStarted()
		}
		at := time.Duration(s.rng.Int64N(int64(time.Duration(len(batches)) * pace)))
		produced := make(chan error, 1)
		go func() { produced <- s.produce(batches, pace) }()
		time.Sleep(at) // the fault's random moment
		s.inject(f, at)
		select {
		case err := <-produced:
			if err != nil {
				t.Fatalf("round %d: %v", s.round, err)
			}
		case <-time.After(3 * time.Minute):
			t.Fatalf("round %d: input not produced after 3 minutes", s.round)
		}
		s.check()
	}
}

// inject strikes with fault f.
func (s *scenario) inject(f fault, at time.Duration) {
	t := s.t
	t.Helper()
	s.faults[f]++
	w := s.workers[s.rng.IntN(len(s.workers))]
	switch f {
	case killWorker, killWorkerWipe:
		pid := w.pid()
		w.kill()
		delay := time.Duration(s.rng.Int64N(int64(time.Second)))
		wipe := ""
		if f == killWorkerWipe {
			if err := os.RemoveAll(w.stateDir); err != nil {
				t.Fatal(err)
			}
			wipe = ", state wiped"
		}
		t.Logf("round %d +%v: kill -9 %s (pid %d), restart after %v%s", s.round, at.Round(time.Millisecond), w.name, pid, delay.Round(time.Millisecond), wipe)
		time.Sleep(delay) // the fault's random downtime
		w.start()
	case killBroker:
		pid := s.broker.pid()
		s.broker.kill()
		delay := time.Duration(s.rng.Int64N(int64(500 * time.Millisecond)))
		t.Logf("round %d +%v: kill -9 broker (pid %d), restart after %v", s.round, at.Round(time.Millisecond), pid, delay.Round(time.Millisecond))
		time.Sleep(delay)
		s.broker.restart()
	case zombie:
		d := sessionTimeout + time.Second + time.Duration(s.rng.Int64N(int64(2*time.Second)))
		t.Logf("round %d +%v: SIGSTOP %s (pid %d) for %v", s.round, at.Round(time.Millisecond), w.name, w.pid(), d.Round(time.Millisecond))
		w.signal(syscall.SIGSTOP)
		time.Sleep(d) // past the session timeout: the group moves its tasks
		w.signal(syscall.SIGCONT)
	}
}

// waitStarted waits until every worker's current run has finished
// starting: the runtime logs "starting" once it has read the topics'
// metadata and created its internal topics. A worker exits when the
// broker is unreachable before that (runtime: list topics: unable to
// dial), so a broker kill waits for it: the suite tests outages of a
// running application, not of one starting.
func (s *scenario) waitStarted() {
	s.t.Helper()
	poll(s.t, 60*time.Second, "workers started", func() (bool, string) {
		s.check()
		for _, w := range s.workers {
			data, err := os.ReadFile(w.logPath)
			if err != nil {
				return false, err.Error()
			}
			run := string(data)
			if i := strings.LastIndex(run, "----- chaos: start "); i >= 0 {
				run = run[i:]
			}
			if !strings.Contains(run, "msg=starting ") {
				return false, w.name + " has not logged msg=starting"
			}
		}
		return true, ""
	})
}

// waitConsumed waits until the application has committed offsets at the
// end of every partition of topics.
func (s *scenario) waitConsumed(topics ...string) {
	s.t.Helper()
	poll(s.t, 60*time.Second, fmt.Sprintf("%s consumed %v", s.app.name, topics), func() (bool, string) {
		s.check()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		committed, err := s.adm.FetchOffsets(ctx, s.app.name)
		if err != nil {
			return false, err.Error()
		}
		_, hwm, _, err := listOffsets(ctx, s.adm, topics...)
		if err != nil {
			return false, err.Error()
		}
		for _, topic := range topics {
			for p, end := range hwm[topic] {
				if c, _ := committed.Lookup(topic, p); c.At < end {
					return false, fmt.Sprintf("%s/%d committed %d of %d", topic, p, c.At, end)
				}
			}
		}
		return true, ""
	})
}

// quiesce waits until the application has processed all the input: every
// worker runs; the committed offsets of the input topics are at their
// ends and those of the repartition topics past their last committed data
// record; no transaction is open on an output or
// repartition topic; and all that stays so for a second.
func (s *scenario) quiesce() {
	t := s.t
	t.Helper()
	start := time.Now()
	var prev string
	var prevAt time.Time
	poll(t, profile(2*time.Minute, 3*time.Minute), "quiescence", func() (bool, string) {
		s.check()
		for _, w := range s.workers {
			if !w.running() {
				return false, w.name + " is not running"
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		listed, err := s.adm.ListTopics(ctx)
		if err != nil {
			return false, err.Error()
		}
		var repartition []string
		for _, topic := range listed.Names() {
			if strings.HasPrefix(topic, s.app.name+"-") && strings.HasSuffix(topic, "-repartition") {
				repartition = append(repartition, topic)
			}
		}
		all := append(append(slices.Clone(s.app.inputs), repartition...), s.app.outputs...)
		committed, err := s.adm.FetchOffsets(ctx, s.app.name)
		if err != nil {
			return false, err.Error()
		}
		_, hwm, lso, err := listOffsets(ctx, s.adm, all...)
		if err != nil {
			return false, err.Error()
		}
		var tail map[string]map[int32][2]int64 // repartition ranges to read
		for _, topic := range all {
			for _, p := range hwm.partitions(topic) {
				end := hwm[topic][p]
				if lso[topic][p] != end {
					return false, fmt.Sprintf("%s/%d: open transaction (last stable offset %d, high watermark %d)", topic, p, lso[topic][p], end)
				}
				c, ok := committed.Lookup(topic, p)
				switch {
				case slices.Contains(s.app.outputs, topic):
				case slices.Contains(s.app.inputs, topic) && end > 0 && (!ok || c.At != end):
					return false, fmt.Sprintf("input %s/%d: committed %d of %d", topic, p, c.At, end)
				case slices.Contains(repartition, topic) && end > 0 && (!ok || c.At < end):
					// Under exactly_once the committed position may stop
					// before markers and aborted records, which the
					// application never reads: only committed data
					// records after it are unprocessed input.
					if tail == nil {
						tail = map[string]map[int32][2]int64{}
					}
					if tail[topic] == nil {
						tail[topic] = map[int32][2]int64{}
					}
					tail[topic][p] = [2]int64{max(c.At, 0), end}
				}
			}
		}
		if tail != nil {
			recs, err := readRanges(ctx, s.broker.addr, tail)
			if err != nil {
				return false, err.Error()
			}
			for topic, rs := range recs {
				if len(rs) > 0 {
					return false, fmt.Sprintf("%s/%d: committed %d, unprocessed record at %d of %d",
						topic, rs[0].partition, tail[topic][rs[0].partition][0], rs[0].offset, tail[topic][rs[0].partition][1])
				}
			}
		}
		snap := fmt.Sprint(hwm, committedAt(committed))
		if snap != prev {
			prev, prevAt = snap, time.Now()
			return false, "still moving"
		}
		return time.Since(prevAt) >= time.Second, "not stable for a second yet"
	})
	t.Logf("round %d: quiescent after %v", s.round, time.Since(start).Round(time.Millisecond))
}

// logAborts logs, per worker, how many times its log says it aborted a
// transaction and lost its partitions: the trace of fenced zombies and
// rewinds (informational; the verifier is the judge).
func (s *scenario) logAborts() {
	var parts []string
	for _, w := range s.workers {
		data, err := os.ReadFile(w.logPath)
		if err != nil {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s=%d/%d", w.name, strings.Count(string(data), "aborting the transaction"),
			strings.Count(string(data), "partitions lost")))
	}
	s.t.Logf("aborted transactions/partitions lost in the worker logs: %s", strings.Join(parts, " "))
}

// verify reads the committed input and output and returns the input and
// what the app's verifier finds.
func (s *scenario) verify() (map[string][]rec, violations) {
	t := s.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	in, err := readCommitted(ctx, s.broker.addr, s.adm, s.app.inputs...)
	if err != nil {
		t.Fatalf("read input: %v", err)
	}
	out, err := readCommitted(ctx, s.broker.addr, s.adm, s.app.outputs...)
	if err != nil {
		t.Fatalf("read output: %v", err)
	}
	var sizes []string
	for _, topic := range append(slices.Clone(s.app.inputs), s.app.outputs...) {
		n := len(in[topic]) + len(out[topic])
		sizes = append(sizes, fmt.Sprintf("%s=%d", topic, n))
	}
	t.Logf("round %d: verified committed records %s", s.round, strings.Join(sizes, " "))
	return in, s.app.verify(in, out)
}

// allFaults are the faults of the exactly-once runs.
var allFaults = []fault{killWorker, killWorker, killWorkerWipe, killBroker, zombie}

// runExactlyOnce runs app under exactly_once with every kind of fault and
// fails on any violation.
func runExactlyOnce(t *testing.T, a *app) {
	start := time.Now()
	s := newScenario(t, a, "exactly_once")
	rounds := rounds(t, profile(8, 100))
	s.runRounds(rounds, allFaults)
	s.quiesce()
	in, vs := s.verify()
	s.logAborts()
	t.Logf("%d rounds, faults %v, %v", rounds, s.faults, time.Since(start).Round(time.Millisecond))
	if len(vs) > 0 {
		if a.diagnose != nil {
			a.diagnose(s, in)
		}
		t.Fatalf("exactly_once: %s", vs.report(40))
	}
}

// TestChaosWordcountExactlyOnce runs wordcount with 3 workers under
// exactly_once through worker kills (same and wiped state), broker kills
// and zombies; the committed counts must strictly increase per word and
// end exact.
func TestChaosWordcountExactlyOnce(t *testing.T) { runExactlyOnce(t, wordcountApp()) }

// TestChaosOrdersExactlyOnce runs orders with 2 workers under
// exactly_once through the same faults; every output must be exact (see
// verifyOrders).
func TestChaosOrdersExactlyOnce(t *testing.T) { runExactlyOnce(t, ordersApp()) }

// TestChaosWordcountAtLeastOnceCaught runs wordcount under at_least_once
// with worker kills, verifying after each round, until the verifier
// reports a violation: under at_least_once a worker killed between
// writing its output and committing its input offsets replays the input,
// which shows as counts that repeat or end too high. The test fails if no
// violation shows within its rounds: then the verifier (or the scenario)
// cannot catch duplicates.
func TestChaosWordcountAtLeastOnceCaught(t *testing.T) {
	start := time.Now()
	s := newScenario(t, wordcountApp(), "at_least_once")
	rounds := rounds(t, profile(8, 12))
	for i := 0; i < rounds; i++ {
		s.runRounds(1, []fault{killWorker, killWorker, killWorkerWipe})
		s.quiesce()
		if _, vs := s.verify(); len(vs) > 0 {
			t.Logf("at_least_once: the verifier caught %s", vs.report(10))
			t.Logf("caught in round %d of %d, faults %v, %v", s.round, rounds, s.faults, time.Since(start).Round(time.Millisecond))
			return
		}
		t.Logf("round %d: no violation yet", s.round)
	}
	t.Fatalf("at_least_once: no violation after %d rounds of worker kills: the verifier did not catch duplicates", rounds)
}

// committedAt is the committed offset per topic and partition.
func committedAt(rs kadm.OffsetResponses) offsets {
	out := offsets{}
	rs.Each(func(r kadm.OffsetResponse) {
		if out[r.Topic] == nil {
			out[r.Topic] = map[int32]int64{}
		}
		out[r.Topic][r.Partition] = r.At
	})
	return out
}
