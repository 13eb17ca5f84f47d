package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// app is an example application under test: its topics, its input and
// the verifier of its outputs.
type app struct {
	// name is the example's directory under ./examples, its application
	// id and the prefix of its internal topics.
	name string
	// workers is how many worker processes run it.
	workers int
	// inputs and outputs are the topics the harness creates, with
	// partitions partitions each.
	inputs, outputs []string
	partitions      int32
	// setup, if set, produces the input that must be processed before the
	// rounds start (the orders' customers) and waits for it.
	setup func(s *scenario)
	// round returns the input of one round, in batches produced in turn.
	round func(rng *rand.Rand, round int) [][]*kgo.Record
	// verify checks the committed output against the committed input.
	verify func(in, out map[string][]rec) violations
	// diagnose, if set, logs what helps to locate a violation (such as
	// the stage of the topology where records went missing).
	diagnose func(s *scenario, in map[string][]rec)
}

// ---------------------------------------------------------------------------
// wordcount: text-lines (a line of words) → word-counts (word → count,
// int64 big-endian), one record per update of a count.

// vocabulary is the words of the generated lines: few, so that every count
// is updated in every round and a replayed line shows in many counts.
var vocabulary = strings.Fields(`alpha bravo charlie delta echo foxtrot golf hotel india juliet
	kilo lima mike november oscar papa quebec romeo sierra tango uniform victor whiskey xray`)

// wordcountApp is the wordcount example with 3 workers.
func wordcountApp() *app {
	return &app{
		name:       "wordcount",
		workers:    3,
		inputs:     []string{"text-lines"},
		outputs:    []string{"word-counts"},
		partitions: 3,
		round: func(rng *rand.Rand, round int) [][]*kgo.Record {
			batches := make([][]*kgo.Record, 40)
			for b := range batches {
				for i := 0; i < 10; i++ {
					words := make([]string, 1+rng.IntN(6))
					for j := range words {
						words[j] = vocabulary[rng.IntN(len(vocabulary))]
					}
					// Mixed case and punctuation: the example lower-cases
					// and splits on non-letters.
					if rng.IntN(4) == 0 {
						words[0] = strings.ToUpper(words[0][:1]) + words[0][1:] + ","
					}
					batches[b] = append(batches[b], &kgo.Record{Topic: "text-lines",
						Key:   []byte(fmt.Sprintf("r%d-%d-%d", round, b, i)),
						Value: []byte(strings.Join(words, " "))})
				}
			}
			return batches
		},
		verify: func(in, out map[string][]rec) violations {
			want := map[string]int64{}
			for _, r := range in["text-lines"] {
				for _, w := range words(string(r.value)) {
					want[w]++
				}
			}
			var vs violations
			checkCounts(&vs, "word-counts", out["word-counts"], int64Count, want)
			return vs
		},
		diagnose: diagnoseWordcount,
	}
}

// diagnoseWordcount compares, per word, the input's count with the
// committed records of the repartition topic (one record per word
// occurrence, keyed by the word), to tell whether words went missing or
// doubled in the first stage (splitting lines) or in the second (counting).
func diagnoseWordcount(s *scenario, in map[string][]rec) {
	const topic = "wordcount-words-repartition"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	recs, err := readCommitted(ctx, s.broker.addr, s.adm, topic)
	if err != nil {
		s.t.Logf("diagnose: read %s: %v", topic, err)
		return
	}
	want, got := map[string]int64{}, map[string]int64{}
	for _, r := range in["text-lines"] {
		for _, w := range words(string(r.value)) {
			want[w]++
		}
	}
	for _, r := range recs[topic] {
		got[string(r.key)]++
	}
	var diffs []string
	for _, w := range sortedKeys(want) {
		if got[w] != want[w] {
			diffs = append(diffs, fmt.Sprintf("%s %d (want %d)", w, got[w], want[w]))
		}
	}
	if len(diffs) == 0 {
		s.t.Logf("diagnose: %s holds every word occurrence of the input exactly once (%d records): the first stage is right, the loss or duplication is in the counting stage", topic, len(recs[topic]))
		return
	}
	s.t.Logf("diagnose: %s (committed, %d records) differs from the input for %d words: %s", topic, len(recs[topic]), len(diffs), strings.Join(diffs, ", "))
}

// words splits a line as the wordcount example does (on every character
// that is not a letter or a digit, lower-cased) for the lines the suite
// generates: ASCII letters, spaces and commas.
func words(line string) []string {
	ws := strings.FieldsFunc(line, func(r rune) bool {
		return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9')
	})
	for i, w := range ws {
		ws[i] = strings.ToLower(w)
	}
	return ws
}

// ---------------------------------------------------------------------------
// orders: orders (order id → JSON order) and customers (customer id → JSON
// customer) → high-value-orders, orders-per-customer, enriched-orders,
// orders-per-hour.

// order is the JSON of an order, in the field order the suite writes.
type order struct {
	OrderID    string   `json:"order_id"`
	CustomerID string   `json:"customer_id"`
	Amount     float64  `json:"amount"`
	Items      []string `json:"items"`
	CreatedAt  int64    `json:"created_at"`
}

// customer is the JSON of a customer.
type customer struct {
	CustomerID string `json:"customer_id"`
	Name       string `json:"name"`
	Tier       string `json:"tier"`
}

// hourly is the JSON of an orders-per-hour record.
type hourly struct {
	CustomerID  string `json:"customer_id"`
	WindowStart int64  `json:"window_start"`
	WindowEnd   int64  `json:"window_end"`
	Count       int64  `json:"count"`
}

const (
	numCustomers = 20
	hourMillis   = int64(time.Hour / time.Millisecond)
	// orderSpread is the range of the orders' created_at: less than the
	// example's 5-minute grace, so that no order is ever late (whatever
	// order the workers see them in, stream time never passes an hour's
	// end + grace while an order of that hour may still come) and every
	// hourly count is checkable.
	orderSpread = 4 * time.Minute
)

// ordersApp is the orders example with 2 workers. Orders are created in
// the 4 minutes around the last full hour before now, so they fall into
// two hourly windows and the broker's retention (which applies to
// created_at) keeps them.
func ordersApp() *app {
	now := time.Now().UnixMilli()
	base := now - now%hourMillis - orderSpread.Milliseconds()/2
	a := &app{
		name:       "orders",
		workers:    2,
		inputs:     []string{"orders", "customers"},
		outputs:    []string{"high-value-orders", "orders-per-customer", "enriched-orders", "orders-per-hour"},
		partitions: 3,
	}
	a.setup = func(s *scenario) {
		var recs []*kgo.Record
		tiers := []string{"gold", "silver", "bronze"}
		for i := 0; i < numCustomers; i++ {
			c := customer{CustomerID: customerID(i), Name: fmt.Sprintf("Name %d", i), Tier: tiers[i%len(tiers)]}
			v, _ := json.Marshal(c)
			recs = append(recs, &kgo.Record{Topic: "customers", Key: []byte(c.CustomerID), Value: v})
		}
		s.produce([][]*kgo.Record{recs}, 0)
		// The join enriches an order only if its customer is in the table
		// when the order is processed: wait until the application has
		// read every customer before any order.
		s.waitConsumed("customers")
	}
	a.round = func(rng *rand.Rand, round int) [][]*kgo.Record {
		batches := make([][]*kgo.Record, 30)
		for b := range batches {
			for i := 0; i < 5; i++ {
				o := order{
					OrderID: fmt.Sprintf("o%d-%d-%d", round, b, i),
					// One order in ten has an unknown customer: it is
					// counted but not enriched.
					CustomerID: customerID(rng.IntN(numCustomers + numCustomers/10)),
					Amount:     float64(1+rng.IntN(200000)) / 100,
					Items:      []string{vocabulary[rng.IntN(len(vocabulary))]},
					CreatedAt:  base + rng.Int64N(orderSpread.Milliseconds()),
				}
				v, _ := json.Marshal(o)
				batches[b] = append(batches[b], &kgo.Record{Topic: "orders", Key: []byte(o.OrderID), Value: v})
			}
		}
		return batches
	}
	a.verify = verifyOrders
	return a
}

// customerID names customer i; those from numCustomers on are never
// produced (unknown customers).
func customerID(i int) string {
	if i >= numCustomers {
		return "unknown-" + strconv.Itoa(i)
	}
	return fmt.Sprintf("c%02d", i)
}

// verifyOrders checks the four outputs of the orders example against the
// committed orders and customers:
//   - high-value-orders: each order with amount > 1000 exactly once (as
//     often as it is in the input), keyed by order id, byte for byte;
//   - orders-per-customer: per customer, strictly increasing counts ending
//     at the number of its orders;
//   - enriched-orders: each order of a known customer exactly once, keyed
//     by customer id, its order the input's bytes and its customer the
//     customer's bytes; no order of an unknown customer;
//   - orders-per-hour: per customer and hour, strictly increasing counts
//     ending at the number of its orders created in that hour, with the
//     record key the customer and window_end = window_start + 1 h.
func verifyOrders(in, out map[string][]rec) violations {
	var vs violations
	customers := map[string][]byte{}
	for _, r := range in["customers"] {
		if r.value == nil {
			delete(customers, string(r.key))
			continue
		}
		customers[string(r.key)] = r.value
	}
	orders := map[string][]byte{}
	high, enriched := map[string]int{}, map[string]int{}
	perCustomer, perHour := map[string]int64{}, map[string]int64{}
	for _, r := range in["orders"] {
		var o order
		if err := json.Unmarshal(r.value, &o); err != nil {
			vs.add("decode", "input orders partition %d offset %d: %v", r.partition, r.offset, err)
			continue
		}
		if prev, ok := orders[o.OrderID]; ok && !bytes.Equal(prev, r.value) {
			vs.add("decode", "input orders: order %s twice with different values", o.OrderID)
		}
		orders[o.OrderID] = r.value
		if o.Amount > 1000 {
			high[o.OrderID]++
		}
		if customers[o.CustomerID] != nil {
			enriched[o.OrderID]++
		}
		perCustomer[o.CustomerID]++
		perHour[hourKey(o.CustomerID, o.CreatedAt-o.CreatedAt%hourMillis)]++
	}

	checkOnce(&vs, "high-value-orders", out["high-value-orders"],
		func(r rec) (string, error) { return string(r.key), nil }, high,
		func(id string, r rec) error {
			if !bytes.Equal(r.value, orders[id]) {
				return fmt.Errorf("value %s, want the order %s", r.value, orders[id])
			}
			return nil
		})

	checkCounts(&vs, "orders-per-customer", out["orders-per-customer"], int64Count, perCustomer)

	type enrichedValue struct {
		Order    json.RawMessage `json:"order"`
		Customer json.RawMessage `json:"customer"`
	}
	checkOnce(&vs, "enriched-orders", out["enriched-orders"],
		func(r rec) (string, error) {
			var e enrichedValue
			var o order
			if err := json.Unmarshal(r.value, &e); err != nil {
				return "", err
			}
			if err := json.Unmarshal(e.Order, &o); err != nil {
				return "", fmt.Errorf("order: %w", err)
			}
			return o.OrderID, nil
		}, enriched,
		func(id string, r rec) error {
			var e enrichedValue
			var o order
			_ = json.Unmarshal(r.value, &e)
			_ = json.Unmarshal(orders[id], &o)
			switch {
			case string(r.key) != o.CustomerID:
				return fmt.Errorf("key %q, want the customer id %q", r.key, o.CustomerID)
			case !jsonEqual(e.Order, orders[id]):
				return fmt.Errorf("order %s, want %s", e.Order, orders[id])
			case !jsonEqual(e.Customer, customers[o.CustomerID]):
				return fmt.Errorf("customer %s, want %s", e.Customer, customers[o.CustomerID])
			}
			return nil
		})

	checkCounts(&vs, "orders-per-hour", out["orders-per-hour"], func(r rec) (countUpdate, error) {
		var h hourly
		if err := json.Unmarshal(r.value, &h); err != nil {
			return countUpdate{}, err
		}
		if h.CustomerID != string(r.key) || h.WindowStart%hourMillis != 0 || h.WindowEnd != h.WindowStart+hourMillis {
			return countUpdate{}, fmt.Errorf("key %q, value %s: want the customer's id as key and a 1-hour window on the hour", r.key, r.value)
		}
		return countUpdate{key: hourKey(h.CustomerID, h.WindowStart), n: h.Count}, nil
	}, perHour)
	return vs
}

// hourKey names a customer's hour in the verifier.
func hourKey(customer string, start int64) string {
	return customer + "@" + time.UnixMilli(start).UTC().Format("2006-01-02T15:04Z")
}

// jsonEqual reports whether a and b are the same JSON text but for
// insignificant white space.
func jsonEqual(a, b []byte) bool {
	var ca, cb bytes.Buffer
	if json.Compact(&ca, a) != nil || json.Compact(&cb, b) != nil {
		return false
	}
	return bytes.Equal(ca.Bytes(), cb.Bytes())
}
