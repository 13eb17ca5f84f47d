package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddy-streams/eddy/examples/internal/exampletest"
	"github.com/eddy-streams/eddy/stream"
)

func TestMain(m *testing.M) { exampletest.Main(m) }

// TestDemo runs the example without flags and checks every printed output.
func TestDemo(t *testing.T) {
	bin := exampletest.Binary(t)
	start := time.Now()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "EDDY_BROKERS=")
	cmd.Dir = t.TempDir()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("orders: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr.String())
	}
	t.Logf("demo took %v:\n%s", time.Since(start), out)

	sections := map[string][]string{}
	var cur string
	for _, l := range strings.Split(string(out), "\n") {
		switch {
		case l == "":
		case !strings.HasPrefix(l, " "):
			cur, _, _ = strings.Cut(l, " ")
			sections[cur] = []string{}
		default:
			sections[cur] = append(sections[cur], strings.TrimSpace(l))
		}
	}
	check := func(topic string, want ...string) {
		t.Helper()
		if got := sections[topic]; strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s:\n got %q\nwant %q", topic, got, want)
		}
	}
	check(HighValueOrdersTopic,
		`O2  {"order_id":"O2","customer_id":"C2","amount":1999,"items":["laptop"],"created_at":1709283720000}`,
		`O3  {"order_id":"O3","customer_id":"C1","amount":1200,"items":["monitor","stand"],"created_at":1709283780000}`,
		`O4  {"order_id":"O4","customer_id":"C9","amount":5000,"items":["server"],"created_at":1709283840000}`)
	check(OrdersPerCustomerTopic, "C1  3", "C2  1", "C3  1", "C9  1")
	var enriched []string
	for _, id := range []string{"O1", "O2", "O3", "O5", "O6"} {
		for _, o := range demoOrders {
			if strings.Contains(o, `"order_id":"`+id+`"`) {
				var v Order
				if err := json.Unmarshal([]byte(o), &v); err != nil {
					t.Fatal(err)
				}
				for _, c := range demoCustomers {
					if strings.Contains(c, `"customer_id":"`+v.CustomerID+`"`) {
						enriched = append(enriched, fmt.Sprintf(`%s  {"order":%s,"customer":%s}`, v.CustomerID, o, c))
					}
				}
			}
		}
	}
	check(EnrichedOrdersTopic, enriched...)
	if len(enriched) != 5 {
		t.Fatalf("test bug: %d enriched orders expected", len(enriched))
	}
}

// ordersApp sets up a broker with the example's topics and returns its
// address.
func ordersApp(t *testing.T, extra ...string) string {
	addr := exampletest.Broker(t)
	for _, topic := range append([]string{OrdersTopic, CustomersTopic, HighValueOrdersTopic, OrdersPerCustomerTopic, EnrichedOrdersTopic}, extra...) {
		exampletest.CreateTopic(t, addr, topic, 3)
	}
	return addr
}

func workerArgs(addr, appID string, t *testing.T) []string {
	return []string{"--brokers", addr, "--app-id", appID, "--state-dir", t.TempDir(),
		"--commit-interval", "100ms", "--log-level", "info"}
}

// TestDeadLetterTopic feeds an undecodable order to a worker started with
// --dead-letter-topic: the record lands in the dead-letter topic with the
// error in its headers and the orders around it are processed.
func TestDeadLetterTopic(t *testing.T) {
	bin := exampletest.Binary(t)
	addr := ordersApp(t, "orders-dlq")
	w := exampletest.Start(t, "worker", bin, append(workerArgs(addr, "orders-dlq-test", t), "--dead-letter-topic", "orders-dlq")...)
	cl := exampletest.Client(t, addr)
	exampletest.Produce(t, cl, &kgo.Record{Topic: CustomersTopic, Key: []byte("C1"), Value: []byte(`{"customer_id":"C1","name":"Ada","tier":"gold"}`)})
	bad := `{"order_id":"O2","customer_id":`
	exampletest.Produce(t, cl,
		&kgo.Record{Topic: OrdersTopic, Key: []byte("O1"), Value: []byte(`{"order_id":"O1","customer_id":"C1","amount":1500,"created_at":1000}`)},
		&kgo.Record{Topic: OrdersTopic, Key: []byte("O2"), Value: []byte(bad)},
		&kgo.Record{Topic: OrdersTopic, Key: []byte("O3"), Value: []byte(`{"order_id":"O3","customer_id":"C1","amount":1,"created_at":3000}`)})

	r := exampletest.NewReader(t, addr, "orders-dlq", OrdersPerCustomerTopic)
	r.WaitFor(t, 30*time.Second, func(r *exampletest.Reader) bool {
		w.CheckRunning(t)
		return len(r.Latest("orders-dlq")) == 1 && string(r.Latest(OrdersPerCustomerTopic)["C1"]) == "\x00\x00\x00\x00\x00\x00\x00\x02"
	}, func() string {
		return fmt.Sprintf("one dead letter and C1 counted twice; read %d records", len(r.Records()))
	})

	var dl *kgo.Record
	for _, rec := range r.Records() {
		if rec.Topic == "orders-dlq" {
			dl = rec
		}
	}
	if string(dl.Key) != "O2" || string(dl.Value) != bad {
		t.Errorf("dead letter %q=%q, want the bad record O2=%q", dl.Key, dl.Value, bad)
	}
	h := map[string]string{}
	for _, rh := range dl.Headers {
		h[rh.Key] = string(rh.Value)
	}
	if h[stream.HeaderErrorTopic] != OrdersTopic || h[stream.HeaderErrorOffset] == "" || h[stream.HeaderErrorPartition] == "" ||
		!strings.Contains(h[stream.HeaderErrorMessage], `topic "orders"`) || !strings.Contains(h[stream.HeaderErrorMessage], "decode order") {
		t.Errorf("dead-letter headers %v", h)
	}
	w.Stop(t, 20*time.Second)
}

// TestBadOrderFails feeds an undecodable order to a worker with the default
// handler: it stops with an error naming the source topic and exits
// non-zero.
func TestBadOrderFails(t *testing.T) {
	bin := exampletest.Binary(t)
	addr := ordersApp(t)
	w := exampletest.Start(t, "worker", bin, workerArgs(addr, "orders-fail-test", t)...)
	exampletest.Produce(t, exampletest.Client(t, addr),
		&kgo.Record{Topic: OrdersTopic, Key: []byte("O1"), Value: []byte(`not json`)})
	err := w.Wait(t, 30*time.Second)
	if err == nil {
		t.Fatalf("worker exited 0 on an undecodable order\n%s", w.Output())
	}
	lines := strings.Split(strings.TrimSpace(w.Output()), "\n")
	t.Logf("worker exit: %v; last line: %s", err, lines[len(lines)-1])
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, "orders: ") || !strings.Contains(last, `topic "orders"`) {
		t.Errorf("the worker's error %q does not name the source topic; output:\n%s", last, w.Output())
	}
}
