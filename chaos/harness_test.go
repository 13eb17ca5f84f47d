package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddy-streams/eddy/internal/testbin"
)

func TestMain(m *testing.M) { testbin.Main(m, "eddy-chaos-bin-") }

// long reports whether the long profile (EDDY_CHAOS_LONG=1) is selected.
func long() bool { return os.Getenv("EDDY_CHAOS_LONG") == "1" }

// profile picks the short (default, CI) or long value of a knob.
func profile[T any](short, long_ T) T {
	if long() {
		return long_
	}
	return short
}

// rounds is n, or EDDY_CHAOS_ROUNDS when set.
func rounds(t *testing.T, n int) int {
	t.Helper()
	if s := os.Getenv("EDDY_CHAOS_ROUNDS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v <= 0 {
			t.Fatalf("EDDY_CHAOS_ROUNDS=%q: want a positive number", s)
		}
		return v
	}
	return n
}

// seededRand returns an RNG seeded from EDDY_CHAOS_SEED or the clock and
// logs the seed so that a failing run's faults can be replayed.
func seededRand(t *testing.T) *rand.Rand {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("EDDY_CHAOS_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("EDDY_CHAOS_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("seed %d (replay with EDDY_CHAOS_SEED=%d)", seed, seed)
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// logDir is where the test's processes log: a fresh directory under
// EDDY_CHAOS_LOG_DIR named after the test, kept after the test so that a
// failure can be studied in full, or else a temporary one (a failing test
// prints the tail of each log).
func logDir(t *testing.T) string {
	t.Helper()
	root := os.Getenv("EDDY_CHAOS_LOG_DIR")
	if root == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp(root, strings.ReplaceAll(t.Name(), "/", "_")+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("process logs in %s", dir)
	return dir
}

// sessionTimeout is the workers' group session (and rebalance) timeout:
// the broker's minimum, group.min.session.timeout.ms = 6 s, so that a
// killed or paused worker's tasks move as soon as the broker allows.
const sessionTimeout = 6 * time.Second

// freeAddr returns a loopback address with a port that was free a moment
// ago: the broker keeps it across restarts so that clients reconnect.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// proc is a subprocess restarted on demand with the same arguments, its
// stdout and stderr appended to one log file.
type proc struct {
	t       *testing.T
	name    string
	bin     string
	args    []string
	logPath string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	killed bool // the harness killed the current run
	starts int
	// unexpect is called when a run exits on its own, before exited
	// closes; it must not block.
	unexpect func(p *proc, state *os.ProcessState, exited <-chan struct{})
}

// newProc prepares a process; it is killed at the end of the test if still
// running, and its log tail is printed if the test failed.
func newProc(t *testing.T, name, bin, logPath string, args ...string) *proc {
	p := &proc{t: t, name: name, bin: bin, args: args, logPath: logPath}
	t.Cleanup(func() {
		if p.running() {
			p.kill()
		}
		if t.Failed() {
			p.logTail(24 << 10)
		}
	})
	return p
}

// logTail logs the last n bytes of the process's log.
func (p *proc) logTail(n int) {
	out, err := os.ReadFile(p.logPath)
	if err != nil {
		return
	}
	if len(out) > n {
		out = out[len(out)-n:]
	}
	p.t.Logf("%s log %s (tail):\n%s", p.name, p.logPath, out)
}

// running reports whether the current run has not exited.
func (p *proc) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// start launches a run. It does not wait for readiness.
func (p *proc) start() {
	t := p.t
	t.Helper()
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.starts++
	fmt.Fprintf(logf, "----- chaos: start %d of %s at %s -----\n", p.starts, p.name, time.Now().UTC().Format(time.RFC3339Nano))
	cmd := exec.Command(p.bin, p.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start %s: %v", p.name, err)
	}
	exited := make(chan struct{})
	p.cmd, p.exited, p.killed = cmd, exited, false
	go func() {
		cmd.Wait()
		fmt.Fprintf(logf, "----- chaos: %s exited: %v -----\n", p.name, cmd.ProcessState)
		logf.Close()
		p.mu.Lock()
		killed, cb := p.killed, p.unexpect
		p.mu.Unlock()
		if !killed && cb != nil {
			cb(p, cmd.ProcessState, exited)
		}
		close(exited)
	}()
}

// signal sends sig to the current run.
func (p *proc) signal(sig syscall.Signal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if sig == syscall.SIGKILL {
		p.killed = true
	}
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		p.t.Errorf("%s: signal %v: %v", p.name, sig, err)
	}
}

// kill sends SIGKILL (a stopped process dies of it too) and waits for the
// exit.
func (p *proc) kill() {
	p.signal(syscall.SIGKILL)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		p.t.Errorf("%s pid %d did not die after SIGKILL", p.name, p.cmd.Process.Pid)
	}
}

// pid is the current run's process id.
func (p *proc) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd.Process.Pid
}

// broker is `eddy broker` on a fixed loopback port and data directory.
type broker struct {
	*proc
	addr string
}

// startBroker starts a broker on a fresh data dir under dir, logging to
// logDir, and waits until it answers.
func startBroker(t *testing.T, dir, logDir string) *broker {
	t.Helper()
	addr := freeAddr(t)
	b := &broker{addr: addr}
	b.proc = newProc(t, "broker", testbin.Eddy(t), filepath.Join(logDir, "broker.log"),
		"broker", "--data-dir", filepath.Join(dir, "broker-data"), "--listen", addr, "--http", "",
		"--log-level", "info",
		// Abort transactions past their timeout promptly: a worker killed
		// with its state wiped comes back with a new transactional id, and
		// the old one's open transaction holds the last stable offset
		// until it is aborted.
		"--transaction-abort-interval", "1s")
	b.restart()
	return b
}

// restart starts the broker (again) and waits until it answers on its
// address: the port is the same, the data dir too.
func (b *broker) restart() {
	t := b.t
	t.Helper()
	start := time.Now()
	deadline := start.Add(60 * time.Second)
	for {
		b.start()
		for {
			if !b.running() {
				break // e.g. the port is still held; try again
			}
			if ping(b.addr) == nil {
				t.Logf("broker ready on %s after %v (start %d)", b.addr, time.Since(start).Round(time.Millisecond), b.starts)
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("broker not ready on %s after 60s", b.addr)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if time.Now().After(deadline) {
			t.Fatalf("broker keeps exiting during start-up: %v", b.cmd.ProcessState)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ping asks the broker at addr for its metadata on a fresh client.
func ping(addr string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RetryTimeout(time.Second), kgo.DialTimeout(time.Second))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err = kadm.NewClient(cl).BrokerMetadata(ctx)
	return err
}

// worker is one worker process of an example application.
type worker struct {
	*proc
	stateDir string
}

// newWorker prepares worker i of an example: bin with the common flags,
// its state under dir and its log in logDir.
func newWorker(t *testing.T, dir, logDir, example, bin, addr string, i int, guarantee string) *worker {
	stateDir := filepath.Join(dir, fmt.Sprintf("%s-%d-state", example, i))
	name := fmt.Sprintf("%s-worker-%d", example, i)
	w := &worker{stateDir: stateDir}
	w.proc = newProc(t, name, bin, filepath.Join(logDir, name+".log"),
		"--brokers", addr, "--app-id", example, "--state-dir", stateDir, "--guarantee", guarantee,
		"--commit-interval", "100ms", "--session-timeout", sessionTimeout.String(), "--log-level", "info")
	return w
}

// ---------------------------------------------------------------------------
// Client helpers.

// newClient returns a client of the broker at addr.
func newClient(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatalf("kgo.NewClient: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// createTopics creates the topics with partitions each and waits until
// every partition has a leader.
func createTopics(t *testing.T, adm *kadm.Client, partitions int32, topics ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := adm.CreateTopics(ctx, partitions, 1, nil, topics...)
	if err != nil {
		t.Fatalf("CreateTopics: %v", err)
	}
	for _, r := range resp {
		if r.Err != nil {
			t.Fatalf("CreateTopics %s: %v (%s)", r.Topic, r.Err, r.ErrMessage)
		}
	}
	poll(t, 30*time.Second, "topics have leaders", func() (bool, string) {
		md, err := adm.Metadata(ctx, topics...)
		if err != nil {
			return false, err.Error()
		}
		for _, topic := range topics {
			td := md.Topics[topic]
			if td.Err != nil || int32(len(td.Partitions)) != partitions {
				return false, fmt.Sprintf("%s: %v, %d partitions", topic, td.Err, len(td.Partitions))
			}
			for _, p := range td.Partitions {
				if p.Err != nil || p.Leader < 0 {
					return false, fmt.Sprintf("%s/%d: %v", topic, p.Partition, p.Err)
				}
			}
		}
		return true, ""
	})
}

// poll calls cond every 100 ms until it returns true; it fails t with what
// cond last said if d passes first.
func poll(t *testing.T, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after %v: %s", what, d, why)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// offsets are offsets per topic and partition.
type offsets map[string]map[int32]int64

// listOffsets returns the start, high watermark and last stable offset of
// every partition of topics.
func listOffsets(ctx context.Context, adm *kadm.Client, topics ...string) (start, hwm, lso offsets, err error) {
	conv := func(lo kadm.ListedOffsets, err error) (offsets, error) {
		if err != nil {
			return nil, err
		}
		out := offsets{}
		var first error
		lo.Each(func(o kadm.ListedOffset) {
			if o.Err != nil && first == nil {
				first = fmt.Errorf("%s/%d: %w", o.Topic, o.Partition, o.Err)
			}
			if out[o.Topic] == nil {
				out[o.Topic] = map[int32]int64{}
			}
			out[o.Topic][o.Partition] = o.Offset
		})
		return out, first
	}
	if start, err = conv(adm.ListStartOffsets(ctx, topics...)); err != nil {
		return
	}
	if hwm, err = conv(adm.ListEndOffsets(ctx, topics...)); err != nil {
		return
	}
	lso, err = conv(adm.ListCommittedOffsets(ctx, topics...))
	return
}

// partitions lists the partitions of a topic in offsets, sorted.
func (o offsets) partitions(topic string) []int32 {
	out := make([]int32, 0, len(o[topic]))
	for p := range o[topic] {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// String prints offsets compactly for failure messages.
func (o offsets) String() string {
	var b strings.Builder
	for _, topic := range sortedKeys(o) {
		fmt.Fprintf(&b, "%s:", topic)
		for _, p := range o.partitions(topic) {
			fmt.Fprintf(&b, " %d=%d", p, o[topic][p])
		}
		b.WriteString("; ")
	}
	return b.String()
}
