package main

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddy-streams/eddy/examples/internal/exampletest"
	"github.com/eddy-streams/eddy/serde"
	"github.com/eddy-streams/eddy/stream/streamtest"
)

func TestMain(m *testing.M) { exampletest.Main(m) }

func TestWords(t *testing.T) {
	for line, want := range map[string][]string{
		"Hello, World!":              {"hello", "world"},
		"eddy: Kafka-style streams":  {"eddy", "kafka", "style", "streams"},
		"  Grüße aus Köln; 東京 2024 ": {"grüße", "aus", "köln", "東京", "2024"},
		"l'été_ÉTÉ":                  {"l", "été", "été"},
		"--- ...":                    {},
	} {
		if got := Words(line); !reflect.DeepEqual(got, want) {
			t.Errorf("Words(%q) = %q, want %q", line, got, want)
		}
	}
}

// TestTopologyDriver checks the topology in the test driver, with and
// without the record cache.
func TestTopologyDriver(t *testing.T) {
	top, err := Topology()
	if err != nil {
		t.Fatal(err)
	}
	for _, cache := range []int64{0, 1 << 20} {
		d, err := streamtest.New(top, streamtest.WithCacheMaxBytes(cache))
		if err != nil {
			t.Fatal(err)
		}
		in := streamtest.InputTopic(d, InputTopic, serde.String(), serde.String())
		for i, l := range demoLines {
			if err := in.PipeValue(l, int64(i)); err != nil {
				t.Fatal(err)
			}
		}
		got, err := streamtest.ReadKeyValuesToMap(streamtest.OutputTopic(d, OutputTopic, serde.String(), serde.Int64()))
		if err != nil {
			t.Fatal(err)
		}
		if want := Count(demoLines); !reflect.DeepEqual(got, want) {
			t.Errorf("cache %d: got %v, want %v", cache, got, want)
		}
		d.Close()
	}
}

// TestDemo runs the example without flags: embedded broker, demo input,
// printed counts.
func TestDemo(t *testing.T) {
	out := exampletest.RunDemo(t)
	want := map[string]string{
		"kafka": "4", "streams": "3", "hello": "1", "all": "1", "lead": "1", "to": "1", "join": "1",
		"summit": "1", "eddy": "1", "style": "1", "in": "1", "go": "1", "grüße": "1", "aus": "1",
		"köln": "1", "東京": "1", "2024": "1",
	}
	_, counts, ok := strings.Cut(string(out), "word-counts (latest count per word):\n")
	if !ok {
		t.Fatalf("no counts in the output:\n%s", out)
	}
	got := map[string]string{}
	var order []string
	for _, l := range strings.Split(strings.TrimSpace(counts), "\n") {
		f := strings.Fields(l)
		if len(f) != 2 {
			t.Fatalf("bad count line %q", l)
		}
		got[f[0]] = f[1]
		order = append(order, f[0])
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("counts:\n got %v\nwant %v", got, want)
	}
	for i := 1; i < len(order); i++ {
		if order[i-1] >= order[i] {
			t.Errorf("counts not sorted by word: %q before %q", order[i-1], order[i])
		}
	}
}

// vocabulary is what the generated lines are made of.
var vocabulary = strings.Fields(`alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron
	pi rho sigma tau upsilon phi chi psi omega kafka stream table join window état straße 東京 42 2024`)

// lines generates n lines of random words with mixed case and punctuation.
func lines(rng *rand.Rand, n int) []string {
	seps := []string{" ", ", ", "; ", " - ", "!", "...", "\t", " (", ") "}
	out := make([]string, n)
	for i := range out {
		var b strings.Builder
		for j, k := 0, 1+rng.IntN(8); j < k; j++ {
			w := vocabulary[rng.IntN(len(vocabulary))]
			if rng.IntN(3) == 0 {
				r := []rune(w)
				r[0] = unicode.ToUpper(r[0])
				w = string(r)
			}
			b.WriteString(w)
			b.WriteString(seps[rng.IntN(len(seps))])
		}
		out[i] = b.String()
	}
	return out
}

// feeder produces generated lines to text-lines and keeps the expected
// counts.
type feeder struct {
	t    *testing.T
	cl   *kgo.Client
	rng  *rand.Rand
	want map[string]int64
}

func newFeeder(t *testing.T, addr string) *feeder {
	return &feeder{t: t, cl: exampletest.Client(t, addr), rng: rand.New(rand.NewPCG(4, 2)), want: map[string]int64{}}
}

// feed produces n lines, spread over the partitions by their keys.
func (f *feeder) feed(n int) {
	f.t.Helper()
	ls := lines(f.rng, n)
	recs := make([]*kgo.Record, n)
	for i, l := range ls {
		recs[i] = &kgo.Record{Topic: InputTopic, Key: []byte(fmt.Sprint(f.rng.Uint32())), Value: []byte(l)}
		for _, w := range Words(l) {
			f.want[w]++
		}
	}
	exampletest.Produce(f.t, f.cl, recs...)
}

// counts decodes the latest count per word.
func counts(r *exampletest.Reader) map[string]int64 {
	m := map[string]int64{}
	for k, v := range r.Latest(OutputTopic) {
		if len(v) == 8 {
			m[k] = int64(binary.BigEndian.Uint64(v))
		}
	}
	return m
}

// waitCounts reads word-counts until the latest count of every word equals
// want, failing if one of workers exits.
func waitCounts(t *testing.T, r *exampletest.Reader, want map[string]int64, timeout time.Duration, workers ...*exampletest.Worker) {
	t.Helper()
	r.WaitFor(t, timeout, func(r *exampletest.Reader) bool {
		for _, w := range workers {
			w.CheckRunning(t)
		}
		return reflect.DeepEqual(counts(r), want)
	}, func() string { return fmt.Sprintf("counts\n got %v\nwant %v", counts(r), want) })
}

// workerArgs are the flags of a test worker.
func workerArgs(addr, appID, stateDir string) []string {
	return []string{"--brokers", addr, "--app-id", appID, "--state-dir", stateDir,
		"--commit-interval", "100ms", "--log-level", "info"}
}

// TestScaleWorkers runs three workers on one application, stops one with
// SIGTERM and adds another mid-stream: the final counts are exact.
func TestScaleWorkers(t *testing.T) {
	bin := exampletest.Binary(t)
	addr := exampletest.Broker(t)
	exampletest.CreateTopic(t, addr, InputTopic, 6)
	exampletest.CreateTopic(t, addr, OutputTopic, 6)
	const app = "wordcount-scale"
	dir := t.TempDir()
	start := func(name string) *exampletest.Worker {
		return exampletest.Start(t, name, bin, workerArgs(addr, app, filepath.Join(dir, name))...)
	}
	w1, w2, w3 := start("w1"), start("w2"), start("w3")
	exampletest.WaitGroupMembers(t, addr, app, 3, 30*time.Second)

	f := newFeeder(t, addr)
	r := exampletest.NewReader(t, addr, OutputTopic)
	f.feed(300)
	waitCounts(t, r, f.want, 30*time.Second, w1, w2, w3)

	f.feed(300)
	w2.Stop(t, 20*time.Second) // mid-stream: the batch is being processed
	f.feed(300)
	// w1 and w3 take over w2's tasks (restoring its counts) ...
	exampletest.WaitGroupMembers(t, addr, app, 2, 30*time.Second)
	f.feed(300)
	// ... and hand some to w4.
	w4 := start("w4")
	f.feed(300)
	exampletest.WaitGroupMembers(t, addr, app, 3, 30*time.Second)
	f.feed(300)
	waitCounts(t, r, f.want, 30*time.Second, w1, w3, w4)

	for _, w := range []*exampletest.Worker{w1, w3, w4} {
		w.Stop(t, 20*time.Second)
	}
}

// TestRestoreState deletes a worker's state directory between two runs:
// the restarted worker restores its counts from the changelog and goes on
// counting from them.
func TestRestoreState(t *testing.T) {
	bin := exampletest.Binary(t)
	addr := exampletest.Broker(t)
	exampletest.CreateTopic(t, addr, InputTopic, 6)
	exampletest.CreateTopic(t, addr, OutputTopic, 6)
	const app = "wordcount-restore"
	stateDir := filepath.Join(t.TempDir(), "state")
	args := workerArgs(addr, app, stateDir)

	f := newFeeder(t, addr)
	r := exampletest.NewReader(t, addr, OutputTopic)
	w := exampletest.Start(t, "first", bin, args...)
	f.feed(400)
	waitCounts(t, r, f.want, 30*time.Second, w)
	w.Stop(t, 20*time.Second)

	if _, err := os.Stat(filepath.Join(stateDir, app)); err != nil {
		t.Fatalf("the worker kept no state in --state-dir: %v", err)
	}
	if err := os.RemoveAll(stateDir); err != nil {
		t.Fatal(err)
	}

	w = exampletest.Start(t, "second", bin, append(args, "--metrics", "127.0.0.1:0")...)
	f.feed(400)
	waitCounts(t, r, f.want, 30*time.Second, w)
	// The restore shows in the worker's metrics.
	metrics := exampletest.Metrics(t, w)
	if n := exampletest.MetricSum(metrics, `eddy_streams_restored_records_total{store="counts"}`); n <= 0 {
		t.Errorf("restored records %v, want > 0; metrics:\n%s", n, metrics)
	}
	if exampletest.MetricSum(metrics, "go_goroutines") <= 0 {
		t.Errorf("no Go collector metrics:\n%s", metrics)
	}
	w.Stop(t, 20*time.Second)
	if _, err := os.Stat(filepath.Join(stateDir, app)); err != nil {
		t.Fatalf("the restarted worker kept no state in --state-dir: %v", err)
	}
}
