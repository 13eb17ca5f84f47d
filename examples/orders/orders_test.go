package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
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
	out := exampletest.RunDemo(t)

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
	check(OrdersPerCustomerTopic, "C1  4", "C2  2", "C3  1", "C9  1")
	var enriched []string
	for _, id := range []string{"O1", "O2", "O3", "O5", "O6", "O7", "O8"} {
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
	if len(enriched) != 7 {
		t.Fatalf("test bug: %d enriched orders expected", len(enriched))
	}
	// O7 at 10:00:00.000 opens C1's 10:00 hour; O8 at 09:59:59.999 comes
	// after it and still counts in C2's 09:00 hour (within the grace).
	hour := func(c string, start int64, n int, span string) string {
		return fmt.Sprintf(`%s  {"customer_id":%q,"window_start":%d,"window_end":%d,"count":%d}  (%s)`, c, c, start, start+3600000, n, span)
	}
	check(OrdersPerHourTopic,
		hour("C1", 1709283600000, 3, "09:00-10:00"),
		hour("C1", 1709287200000, 1, "10:00-11:00"),
		hour("C2", 1709283600000, 2, "09:00-10:00"),
		hour("C3", 1709283600000, 1, "09:00-10:00"),
		hour("C9", 1709283600000, 1, "09:00-10:00"))
}

// ordersApp sets up a broker with the example's topics and returns its
// address.
func ordersApp(t *testing.T, extra ...string) string {
	addr := exampletest.Broker(t)
	for _, topic := range append([]string{OrdersTopic, CustomersTopic, HighValueOrdersTopic, OrdersPerCustomerTopic, EnrichedOrdersTopic, OrdersPerHourTopic}, extra...) {
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

// queriesURL is logged by a worker started with --metrics and --log-level
// info.
var queriesURL = regexp.MustCompile(`msg="serving interactive queries" url=(\S+)`)

// TestOrdersPerHourRestart runs orders-per-hour on workers: counts per
// customer and hour, the window store queried over HTTP, then a worker
// with an empty state directory that restores the hourly counts from the
// changelog and goes on counting in the same hours.
func TestOrdersPerHourRestart(t *testing.T) {
	bin := exampletest.Binary(t)
	addr := ordersApp(t)
	args := func() []string {
		return append(workerArgs(addr, "orders-hour-test", t), "--metrics", "127.0.0.1:0")
	}
	cl := exampletest.Client(t, addr)
	order := func(id, customer string, at int64) *kgo.Record {
		return &kgo.Record{Topic: OrdersTopic, Key: []byte(id),
			Value: []byte(fmt.Sprintf(`{"order_id":%q,"customer_id":%q,"amount":10,"created_at":%d}`, id, customer, at))}
	}
	// Recent hours: the changelog's retention.ms (the store's retention +
	// 1 day) would let the broker delete records with older timestamps.
	h9 := (time.Now().UnixMilli()/3600000 - 2) * 3600000
	h10 := h9 + 3600000
	r := exampletest.NewReader(t, addr, OrdersPerHourTopic)
	counts := func() map[string]int64 { // "customer@start" → latest count
		m := map[string]int64{}
		for _, rec := range r.Records() {
			var h HourlyCount
			if err := json.Unmarshal(rec.Value, &h); err != nil || h.CustomerID != string(rec.Key) || h.WindowEnd != h.WindowStart+3600000 {
				t.Fatalf("bad orders-per-hour record %s=%s", rec.Key, rec.Value)
			}
			m[fmt.Sprintf("%s@%d", h.CustomerID, h.WindowStart)] = h.Count
		}
		return m
	}
	wait := func(w *exampletest.Worker, want map[string]int64) {
		t.Helper()
		r.WaitFor(t, 60*time.Second, func(*exampletest.Reader) bool {
			w.CheckRunning(t)
			return fmt.Sprint(counts()) == fmt.Sprint(want)
		}, func() string { return fmt.Sprintf("counts %v, have %v", want, counts()) })
	}

	w1 := exampletest.Start(t, "worker-1", bin, args()...)
	exampletest.Produce(t, cl, order("O1", "C1", h9+10*60000), order("O2", "C1", h10), order("O3", "C2", h9+30*60000))
	wait(w1, map[string]int64{fmt.Sprintf("C1@%d", h9): 1, fmt.Sprintf("C1@%d", h10): 1, fmt.Sprintf("C2@%d", h9): 1})

	// The window store over HTTP: C1's hours.
	var base string
	exampletest.Poll(t, 30*time.Second, func() bool {
		if m := queriesURL.FindStringSubmatch(w1.Output()); m != nil {
			base = m[1]
		}
		return base != ""
	}, func() string { return "worker-1 logging its interactive-queries address" })
	var ans struct {
		Entries []struct {
			Key         string `json:"key"`
			ValueBase64 string `json:"value_base64"`
			Start       int64  `json:"start"`
			End         *int64 `json:"end"`
			Timestamp   int64  `json:"timestamp"`
		} `json:"entries"`
	}
	exampletest.Poll(t, 30*time.Second, func() bool {
		resp, err := http.Get(base + "/" + OrdersPerHourStore + "/windows?key=C1&size=1h")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		ans.Entries = nil
		return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&ans) == nil && len(ans.Entries) == 2
	}, func() string {
		return fmt.Sprintf("C1's two hours from %s/%s/windows, got %+v", base, OrdersPerHourStore, ans)
	})
	for i, e := range ans.Entries {
		start := []int64{h9, h10}[i]
		if e.Key != "C1" || e.Start != start || e.End == nil || *e.End != start+3600000 || e.ValueBase64 != "AAAAAAAAAAE=" {
			t.Errorf("window %d: %+v, want C1 [%d, %d) = 1", i, e, start, start+3600000)
		}
	}
	w1.Stop(t, 30*time.Second)

	// A new worker, an empty state directory: the counts come back from
	// the changelog; O4 (09:59:59.999) still counts in the 09:00 hour.
	w2 := exampletest.Start(t, "worker-2", bin, args()...)
	exampletest.Produce(t, cl, order("O4", "C1", h10-1), order("O5", "C2", h9+45*60000))
	wait(w2, map[string]int64{fmt.Sprintf("C1@%d", h9): 2, fmt.Sprintf("C1@%d", h10): 1, fmt.Sprintf("C2@%d", h9): 2})
	if !strings.Contains(w2.Output(), "restoring task") {
		t.Errorf("worker-2 did not restore from the changelog:\n%s", w2.Output())
	}
	w2.Stop(t, 30*time.Second)
}
