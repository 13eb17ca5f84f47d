package crash

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/internal/testbin"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// long reports whether the long profile (EDDY_CRASH_LONG=1) is selected.
func long() bool { return os.Getenv("EDDY_CRASH_LONG") == "1" }

// profile picks the short (default, CI) or long value of a knob.
func profile[T any](short, long_ T) T {
	if long() {
		return long_
	}
	return short
}

// seededRand returns an RNG seeded from EDDY_CRASH_SEED or the clock and
// logs the seed so a failing run can be replayed.
func seededRand(t *testing.T) *rand.Rand {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("EDDY_CRASH_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("EDDY_CRASH_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("seed %d (replay with EDDY_CRASH_SEED=%d)", seed, seed)
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

func TestMain(m *testing.M) { testbin.Main(m, "eddy-crash-bin-") }

// eddyBinary builds ./cmd/eddy once (or returns EDDY_CRASH_BROKER_BIN, a
// binary taking the same `broker` flags, to run the suite against another
// build).
func eddyBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("EDDY_CRASH_BROKER_BIN"); p != "" {
		return p
	}
	return testbin.Eddy(t)
}

// brokerProc is `eddy broker` running as a subprocess.
type brokerProc struct {
	t       *testing.T
	bin     string
	dataDir string
	addr    string // Kafka address of the running broker (changes per start)
	extra   []string
	logPath string
	ready   string // --ready-file path

	cmd    *exec.Cmd
	exited chan struct{}
	starts int
}

// newBroker prepares a broker on a fresh data dir; it is killed at the end
// of the test if still running.
func newBroker(t *testing.T, extra ...string) *brokerProc {
	t.Helper()
	b := &brokerProc{
		t:       t,
		bin:     eddyBinary(t),
		dataDir: filepath.Join(t.TempDir(), "data"),
		extra:   extra,
		logPath: filepath.Join(t.TempDir(), "broker.log"),
	}
	b.ready = filepath.Join(filepath.Dir(b.logPath), "ready")
	t.Cleanup(func() {
		if b.running() {
			b.kill()
		}
		if t.Failed() {
			if out, err := os.ReadFile(b.logPath); err == nil {
				if len(out) > 16<<10 {
					out = out[len(out)-16<<10:]
				}
				t.Logf("broker log (tail):\n%s", out)
			}
		}
	})
	return b
}

func (b *brokerProc) running() bool {
	if b.cmd == nil {
		return false
	}
	select {
	case <-b.exited:
		return false
	default:
		return true
	}
}

// start launches the broker on a free port and waits until it has written
// its address to the --ready-file and answers ApiVersions there.
func (b *brokerProc) start() {
	t := b.t
	t.Helper()
	logf, err := os.OpenFile(b.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	b.starts++
	fmt.Fprintf(logf, "----- start %d -----\n", b.starts)
	if err := os.Remove(b.ready); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	b.addr = ""
	args := append([]string{"broker", "--data-dir", b.dataDir, "--listen", "127.0.0.1:0", "--http", "",
		"--ready-file", b.ready}, b.extra...)
	cmd := exec.Command(b.bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start broker: %v", err)
	}
	b.cmd = cmd
	b.exited = make(chan struct{})
	go func() {
		cmd.Wait()
		logf.Close()
		close(b.exited)
	}()
	b.waitReady(60 * time.Second)
}

// waitReady polls for the ready file, then ApiVersions, until it answers.
func (b *brokerProc) waitReady(d time.Duration) {
	t := b.t
	t.Helper()
	deadline := time.Now().Add(d)
	start := time.Now()
	for {
		select {
		case <-b.exited:
			t.Fatalf("broker exited during start-up: %v", b.cmd.ProcessState)
		default:
		}
		if b.addr == "" {
			if data, err := os.ReadFile(b.ready); err == nil && bytes.HasSuffix(data, []byte("\n")) {
				b.addr = string(bytes.TrimSpace(data))
			}
		}
		if b.addr != "" && apiVersions(b.addr, time.Second) == nil {
			t.Logf("broker ready on %s after %v (start %d)", b.addr, time.Since(start).Round(time.Millisecond), b.starts)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("broker not ready (address %q) after %v", b.addr, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// apiVersions sends one ApiVersions v0 request on a fresh connection.
func apiVersions(addr string, timeout time.Duration) error {
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(timeout))
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 0
	body := req.AppendTo(nil)
	// Request header v1: key, version, correlation id, client id.
	hdr := []byte{0, 18, 0, 0, 0, 0, 0, 7, 0, 5, 'c', 'r', 'a', 's', 'h'}
	frame := make([]byte, 4, 4+len(hdr)+len(body))
	n := len(hdr) + len(body)
	frame[0], frame[1], frame[2], frame[3] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
	frame = append(append(frame, hdr...), body...)
	if _, err := conn.Write(frame); err != nil {
		return err
	}
	r := bufio.NewReader(conn)
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return err
	}
	sz := int(size[0])<<24 | int(size[1])<<16 | int(size[2])<<8 | int(size[3])
	if sz < 4 || sz > 1<<20 {
		return fmt.Errorf("bad response size %d", sz)
	}
	buf := make([]byte, sz)
	if _, err := io.ReadFull(r, buf); err != nil {
		return err
	}
	if !bytes.Equal(buf[:4], []byte{0, 0, 0, 7}) {
		return fmt.Errorf("correlation id mismatch")
	}
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 0
	if err := resp.ReadFrom(buf[4:]); err != nil {
		return err
	}
	if resp.ErrorCode != 0 {
		return fmt.Errorf("ApiVersions error code %d", resp.ErrorCode)
	}
	return nil
}

// kill sends SIGKILL and waits for the process to be gone.
func (b *brokerProc) kill() {
	b.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-b.exited:
	case <-time.After(30 * time.Second):
		b.t.Errorf("broker pid %d did not die after SIGKILL", b.cmd.Process.Pid)
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (b *brokerProc) stop() {
	t := b.t
	t.Helper()
	b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.exited:
		if !b.cmd.ProcessState.Success() {
			t.Fatalf("broker exited uncleanly after SIGTERM: %v", b.cmd.ProcessState)
		}
	case <-time.After(30 * time.Second):
		b.kill()
		t.Fatalf("broker did not stop within 30s of SIGTERM")
	}
}

// pid is the running broker's process id.
func (b *brokerProc) pid() int { return b.cmd.Process.Pid }

// rssBytes reads VmRSS of the broker from /proc.
func rssBytes(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == "VmRSS:" && f[2] == "kB" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmRSS line")
}

// openSockets counts the sockets the process holds open.
func openSockets(pid int) (int, error) {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && strings.HasPrefix(l, "socket:") {
			n++
		}
	}
	return n, nil
}

// ---------------------------------------------------------------------------
// Client helpers.

func newClient(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatalf("kgo.NewClient: %v", err)
	}
	return cl
}

// createTopic creates topic and waits for every partition to have a leader.
func createTopic(t *testing.T, addr, topic string, partitions int32, configs map[string]*string) {
	t.Helper()
	cl := newClient(t, addr)
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := adm.CreateTopics(ctx, partitions, 1, configs, topic)
	if err != nil {
		t.Fatalf("CreateTopics: %v", err)
	}
	if r := resp[topic]; r.Err != nil {
		t.Fatalf("CreateTopics %s: %v (%s)", topic, r.Err, r.ErrMessage)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		md, err := adm.Metadata(ctx, topic)
		if err == nil {
			td := md.Topics[topic]
			ok := td.Err == nil && int32(len(td.Partitions)) == partitions
			for _, p := range td.Partitions {
				ok = ok && p.Err == nil && p.Leader >= 0
			}
			if ok {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("topic %s has no leaders after 20s: %v", topic, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// endOffsets lists start and end offsets of every partition of topic.
func listOffsets(t *testing.T, addr, topic string) (start, end map[int32]int64) {
	t.Helper()
	cl := newClient(t, addr)
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conv := func(lo kadm.ListedOffsets, err error) map[int32]int64 {
		if err != nil {
			t.Fatalf("ListOffsets: %v", err)
		}
		out := map[int32]int64{}
		lo.Each(func(o kadm.ListedOffset) {
			if o.Err != nil {
				t.Fatalf("ListOffsets %d: %v", o.Partition, o.Err)
			}
			out[o.Partition] = o.Offset
		})
		return out
	}
	return conv(adm.ListStartOffsets(ctx, topic)), conv(adm.ListEndOffsets(ctx, topic))
}

// readPartition reads partition p of topic from offset from to end (exclusive)
// calling fn for each record in order; it fails on a gap, on an error or when
// the deadline passes.
func readPartition(t *testing.T, addr, topic string, p int32, from, end int64, d time.Duration, fn func(*kgo.Record)) {
	t.Helper()
	if from >= end {
		return
	}
	cl := newClient(t, addr,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {p: kgo.NewOffset().At(from)}}),
		kgo.FetchMaxBytes(64<<20), kgo.FetchMaxPartitionBytes(32<<20), kgo.FetchMaxWait(200*time.Millisecond))
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	next := from
	for next < end {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("partition %d: read up to offset %d of %d before the deadline", p, next, end)
		}
		for _, e := range fs.Errors() {
			t.Fatalf("partition %d: fetch at %d: %v", p, next, e.Err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset >= end {
				return
			}
			if r.Offset != next {
				t.Fatalf("partition %d: offset %d follows %d (gap or reorder)", p, r.Offset, next-1)
			}
			fn(r)
			next++
		})
	}
}
