// Command orders is the order-processing pipeline of a classic Kafka Streams
// article as an eddy worker. It reads orders (a stream keyed by order id)
// and customers (a table keyed by customer id) and writes:
//
//   - high-value-orders: the orders with an amount over 1000, unchanged;
//   - orders-per-customer: the number of orders per customer id (int64,
//     8-byte big-endian), one record per update;
//   - enriched-orders: each order whose customer is known, keyed by
//     customer id, as JSON {"order": …, "customer": …};
//   - orders-per-hour: the number of orders per customer in 1-hour tumbling
//     event-time windows, keyed by customer id, as JSON {"customer_id",
//     "window_start", "window_end", "count"}; one record per update, so the
//     last record of a window carries its count.
//
// The event time of an order is its created_at field (epoch milliseconds).
//
// Run without flags it starts an embedded broker, feeds a few customers and
// orders and prints every output:
//
//	go run ./examples/orders
//
// With --brokers it is a worker of the application "orders" until SIGINT or
// SIGTERM. See README.md and docs/examples.md.
package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/eddy-streams/eddy/examples/internal/exampleapp"
	"github.com/eddy-streams/eddy/serde"
	"github.com/eddy-streams/eddy/stream"
	"github.com/eddy-streams/eddy/window"
)

// The example's topics.
const (
	OrdersTopic            = "orders"
	CustomersTopic         = "customers"
	HighValueOrdersTopic   = "high-value-orders"
	OrdersPerCustomerTopic = "orders-per-customer"
	EnrichedOrdersTopic    = "enriched-orders"
	OrdersPerHourTopic     = "orders-per-hour"
)

// HighValue is the amount above which an order is a high-value order.
const HighValue = 1000

// The hourly count: 1-hour tumbling windows of event time (created_at),
// aligned to the epoch, so on the hour in UTC.
const (
	// OrdersPerHourStore is the window store of the hourly counts; its
	// changelog is <app-id>-orders-per-hour-changelog.
	OrdersPerHourStore = "orders-per-hour"
	// OrdersPerHourGrace is how long after the end of an hour (in stream
	// time: the largest created_at seen) an out-of-order order is still
	// counted in it. A later order of a closed hour is dropped and counted
	// in the dropped-records metric.
	OrdersPerHourGrace = 5 * time.Minute
	// OrdersPerHourRetention is how long the store keeps an hour's count
	// (in stream time) for interactive queries.
	OrdersPerHourRetention = 24 * time.Hour
)

// Order is the value of a record in orders. Its JSON is kept as read, so
// orders are written out unchanged.
type Order struct {
	OrderID    string  `json:"order_id"`
	CustomerID string  `json:"customer_id"`
	Amount     float64 `json:"amount"`
	// Items is passed on as it is (any JSON).
	Items json.RawMessage `json:"items,omitempty"`
	// CreatedAt is the event time, epoch milliseconds.
	CreatedAt int64 `json:"created_at"`

	raw []byte // the JSON read, written out unchanged
}

// Customer is the value of a record in customers. Its JSON is kept as read.
type Customer struct {
	CustomerID string `json:"customer_id"`
	Name       string `json:"name"`
	Tier       string `json:"tier"`

	raw []byte
}

// EnrichedOrder is the value written to enriched-orders.
type EnrichedOrder struct {
	Order    json.RawMessage `json:"order"`
	Customer json.RawMessage `json:"customer"`
}

// HourlyCount is the value written to orders-per-hour: the number of
// orders of a customer created in [WindowStart, WindowEnd), epoch
// milliseconds with the end excluded.
type HourlyCount struct {
	CustomerID  string `json:"customer_id"`
	WindowStart int64  `json:"window_start"`
	WindowEnd   int64  `json:"window_end"`
	Count       int64  `json:"count"`
}

// rawJSON is the serde of a JSON type that keeps the bytes it was decoded
// from: decode parses and checks b; encode returns the kept bytes, or
// marshals a value built in code.
func rawJSON[T any](what string, decode func(b []byte) (T, error), raw func(T) []byte, plain func(T) any) serde.Serde[T] {
	return serde.Func(
		func(topic string, v T) ([]byte, error) {
			if b := raw(v); b != nil {
				return b, nil
			}
			b, err := json.Marshal(plain(v))
			if err != nil {
				return nil, fmt.Errorf("topic %q: encode %s: %w", topic, what, err)
			}
			return b, nil
		},
		func(topic string, b []byte) (T, error) {
			v, err := decode(b)
			if err != nil {
				return v, fmt.Errorf("topic %q: decode %s: %w", topic, what, err)
			}
			return v, nil
		})
}

// errMissingField is wrapped by decode errors for a value without a
// required field.
var errMissingField = errors.New("missing field")

// OrderSerde is the JSON serde of orders; an order must have an order_id
// and a customer_id.
func OrderSerde() serde.Serde[Order] {
	type plain Order
	return rawJSON("order",
		func(b []byte) (Order, error) {
			var p plain
			if err := json.Unmarshal(b, &p); err != nil {
				return Order{}, err
			}
			o := Order(p)
			switch {
			case o.OrderID == "":
				return Order{}, fmt.Errorf("%w order_id", errMissingField)
			case o.CustomerID == "":
				return Order{}, fmt.Errorf("%w customer_id", errMissingField)
			}
			o.raw = bytes.Clone(b)
			return o, nil
		},
		func(o Order) []byte { return o.raw },
		func(o Order) any { return plain(o) })
}

// CustomerSerde is the JSON serde of customers.
func CustomerSerde() serde.Serde[Customer] {
	type plain Customer
	return rawJSON("customer",
		func(b []byte) (Customer, error) {
			var p plain
			if err := json.Unmarshal(b, &p); err != nil {
				return Customer{}, err
			}
			c := Customer(p)
			c.raw = bytes.Clone(b)
			return c, nil
		},
		func(c Customer) []byte { return c.raw },
		func(c Customer) any { return plain(c) })
}

// marshal returns v's JSON as kept, or marshals it.
func marshal[T any](s serde.Serde[T], v T) json.RawMessage {
	b, err := s.Serialize("", v)
	if err != nil {
		return json.RawMessage("null")
	}
	return b
}

// CreatedAt is the orders' timestamp extractor: the created_at field of the
// value. A record without a usable created_at keeps its own timestamp (and
// an undecodable one then fails in the value deserializer, where the
// configured handler sees it).
func CreatedAt(rec *stream.RawRecord, _ int64) (int64, error) {
	var v struct {
		CreatedAt *int64 `json:"created_at"`
	}
	if err := json.Unmarshal(rec.Value, &v); err != nil || v.CreatedAt == nil || *v.CreatedAt < 0 {
		return rec.Timestamp, nil
	}
	return *v.CreatedAt, nil
}

// Topology builds the orders pipeline.
func Topology() (*stream.Topology, error) {
	b := stream.NewBuilder()
	orderSerde, customerSerde := OrderSerde(), CustomerSerde()
	orders := stream.Stream(b,
		stream.With(serde.String(), orderSerde).WithTimestampExtractor(CreatedAt), OrdersTopic)

	orders.Filter(func(_ string, o Order) bool { return o.Amount > HighValue }).
		To(HighValueOrdersTopic, stream.Produced[string, Order]{Key: serde.String(), Value: orderSerde})

	// One repartition by customer id feeds the counts and the join.
	byCustomer := stream.SelectKey(orders, func(_ string, o Order) string { return o.CustomerID }).
		Repartition(stream.Repartitioned[string, Order]{Name: "orders-by-customer", Key: serde.String(), Value: orderSerde})

	perCustomer := byCustomer.GroupByKey(stream.Grouped[string, Order]{Key: serde.String(), Value: orderSerde})
	perCustomer.Count(stream.As[string, int64]("orders-per-customer")).
		ToStream().
		To(OrdersPerCustomerTopic, stream.Produced[string, int64]{Key: serde.String(), Value: serde.Int64()})

	// Emit on update (the default): each order updates its hour's count and
	// the record cache forwards the latest count per window at each commit.
	hourly := stream.CountWindowed(perCustomer.WindowedBy(window.Tumbling(time.Hour).WithGrace(OrdersPerHourGrace)),
		stream.Materialized[string, int64]{Name: OrdersPerHourStore, Retention: OrdersPerHourRetention})
	stream.Map(hourly.ToStream(), func(k window.Windowed[string], n int64) (string, HourlyCount) {
		return k.Key, HourlyCount{CustomerID: k.Key, WindowStart: k.Window.Start, WindowEnd: k.Window.End, Count: n}
	}).To(OrdersPerHourTopic, stream.Produced[string, HourlyCount]{Key: serde.String(), Value: serde.JSON[HourlyCount]()})

	customers := stream.Table(b, CustomersTopic, stream.With(serde.String(), customerSerde),
		stream.Materialized[string, Customer]{Name: "customers", Key: serde.String(), Value: customerSerde})
	enriched := stream.JoinTable(byCustomer, customers,
		func(_ string, o Order, c Customer) EnrichedOrder {
			return EnrichedOrder{Order: marshal(orderSerde, o), Customer: marshal(customerSerde, c)}
		},
		stream.Joined[string, Order]{Name: "enrich", Key: serde.String(), Value: orderSerde})
	enriched.To(EnrichedOrdersTopic, stream.Produced[string, EnrichedOrder]{Key: serde.String(), Value: serde.JSON[EnrichedOrder]()})
	return b.Build()
}

// demoBase is the demo's first event time: 2024-03-01T09:00:00Z.
const demoBase int64 = 1709283600000

// The demo's input.
var (
	demoCustomers = []string{
		`{"customer_id":"C1","name":"Ada","tier":"gold"}`,
		`{"customer_id":"C2","name":"Grace","tier":"silver"}`,
		`{"customer_id":"C3","name":"Linus","tier":"bronze"}`,
	}
	demoOrders = []string{
		`{"order_id":"O1","customer_id":"C1","amount":250.5,"items":["keyboard"],"created_at":1709283660000}`,
		`{"order_id":"O2","customer_id":"C2","amount":1999,"items":["laptop"],"created_at":1709283720000}`,
		`{"order_id":"O3","customer_id":"C1","amount":1200,"items":["monitor","stand"],"created_at":1709283780000}`,
		`{"order_id":"O4","customer_id":"C9","amount":5000,"items":["server"],"created_at":1709283840000}`,
		`{"order_id":"O5","customer_id":"C3","amount":42,"items":["cable"],"created_at":1709283900000}`,
		`{"order_id":"O6","customer_id":"C1","amount":80,"items":["mouse"],"created_at":1709283960000}`,
		// 10:00:00.000 starts the next hour.
		`{"order_id":"O7","customer_id":"C1","amount":15,"items":["pen"],"created_at":1709287200000}`,
		// 09:59:59.999, sent after O7: out of order, but within the grace
		// period, so it still counts in the 09:00 hour.
		`{"order_id":"O8","customer_id":"C2","amount":300,"items":["desk"],"created_at":1709287199999}`,
	}
)

// parseOrders decodes the demo orders.
func parseOrders(vals []string) []Order {
	s := OrderSerde()
	out := make([]Order, len(vals))
	for i, v := range vals {
		o, err := s.Deserialize(OrdersTopic, []byte(v))
		if err != nil {
			panic(err) // the demo input is fixed and valid
		}
		out[i] = o
	}
	return out
}

// results are the outputs of the pipeline, as read.
type results struct {
	highValue map[string]string       // order id → value
	perCust   map[string]int64        // customer id → latest count
	enriched  map[string]string       // order id → "customer id  value"
	perHour   map[hourKey]HourlyCount // the latest count per customer and hour
	hourRaw   map[hourKey]string      // its value as read
}

// hourKey is a customer's hour.
type hourKey struct {
	customer string
	start    int64
}

func newResults() results {
	return results{highValue: map[string]string{}, perCust: map[string]int64{}, enriched: map[string]string{},
		perHour: map[hourKey]HourlyCount{}, hourRaw: map[hourKey]string{}}
}

// collect sorts records read from the output topics into results.
func collect(recs []exampleapp.Record) results {
	r := newResults()
	for _, rec := range recs {
		switch rec.Topic {
		case HighValueOrdersTopic:
			r.highValue[string(rec.Key)] = string(rec.Value)
		case OrdersPerCustomerTopic:
			if len(rec.Value) == 8 {
				r.perCust[string(rec.Key)] = int64(binary.BigEndian.Uint64(rec.Value))
			}
		case EnrichedOrdersTopic:
			var e struct {
				Order struct {
					OrderID string `json:"order_id"`
				} `json:"order"`
			}
			if json.Unmarshal(rec.Value, &e) == nil {
				r.enriched[e.Order.OrderID] = string(rec.Key) + "  " + string(rec.Value)
			}
		case OrdersPerHourTopic:
			var h HourlyCount
			if json.Unmarshal(rec.Value, &h) == nil && h.CustomerID == string(rec.Key) {
				r.perHour[hourKey{h.CustomerID, h.WindowStart}] = h
				r.hourRaw[hourKey{h.CustomerID, h.WindowStart}] = string(rec.Value)
			}
		}
	}
	return r
}

// expected computes the results the demo input leads to.
func expected() results {
	known := map[string]bool{}
	for _, c := range demoCustomers {
		var v Customer
		if err := json.Unmarshal([]byte(c), &v); err != nil {
			panic(err)
		}
		known[v.CustomerID] = true
	}
	r := newResults()
	hour := time.Hour.Milliseconds()
	for i, o := range parseOrders(demoOrders) {
		if o.Amount > HighValue {
			r.highValue[o.OrderID] = demoOrders[i]
		}
		r.perCust[o.CustomerID]++
		start := o.CreatedAt - o.CreatedAt%hour
		h := r.perHour[hourKey{o.CustomerID, start}]
		r.perHour[hourKey{o.CustomerID, start}] = HourlyCount{CustomerID: o.CustomerID, WindowStart: start, WindowEnd: start + hour, Count: h.Count + 1}
		if known[o.CustomerID] {
			r.enriched[o.OrderID] = ""
		}
	}
	return r
}

// complete reports whether got has every expected result.
func (got results) complete(want results) bool {
	for id, v := range want.highValue {
		if got.highValue[id] != v {
			return false
		}
	}
	for c, n := range want.perCust {
		if got.perCust[c] != n {
			return false
		}
	}
	for id := range want.enriched {
		if _, ok := got.enriched[id]; !ok {
			return false
		}
	}
	for k, h := range want.perHour {
		if got.perHour[k] != h {
			return false
		}
	}
	return true
}

// sortedHours returns m's keys by customer, then hour.
func sortedHours(m map[hourKey]HourlyCount) []hourKey {
	keys := make([]hourKey, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].customer != keys[j].customer {
			return keys[i].customer < keys[j].customer
		}
		return keys[i].start < keys[j].start
	})
	return keys
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// example describes the orders example.
func example() exampleapp.Example {
	want := expected()
	var customers, orders []exampleapp.Record
	for i, v := range demoCustomers {
		var c Customer
		_ = json.Unmarshal([]byte(v), &c)
		customers = append(customers, exampleapp.Record{Topic: CustomersTopic, Key: []byte(c.CustomerID), Value: []byte(v),
			Timestamp: demoBase + int64(i)})
	}
	for i, o := range parseOrders(demoOrders) {
		orders = append(orders, exampleapp.Record{Topic: OrdersTopic, Key: []byte(o.OrderID), Value: []byte(demoOrders[i]),
			Timestamp: o.CreatedAt})
	}
	return exampleapp.Example{
		Name:    "orders",
		Summary: "high-value orders, orders per customer and per hour, and orders enriched with their customer",
		Topics: []exampleapp.Topic{
			{Name: OrdersTopic, Partitions: 3}, {Name: CustomersTopic, Partitions: 3},
			{Name: HighValueOrdersTopic, Partitions: 3}, {Name: OrdersPerCustomerTopic, Partitions: 3},
			{Name: EnrichedOrdersTopic, Partitions: 3}, {Name: OrdersPerHourTopic, Partitions: 3},
		},
		Topology: Topology,
		Demo: exampleapp.Demo{
			// Customers first: the join only enriches orders whose
			// customer the table already holds.
			Batches: [][]exampleapp.Record{customers, orders},
			Outputs: []string{HighValueOrdersTopic, OrdersPerCustomerTopic, EnrichedOrdersTopic, OrdersPerHourTopic},
			Done:    func(out []exampleapp.Record) bool { return collect(out).complete(want) },
			Print: func(w io.Writer, out []exampleapp.Record) {
				got := collect(out)
				fmt.Fprintf(w, "%s (table, key customer id):\n", CustomersTopic)
				for _, r := range customers {
					fmt.Fprintf(w, "  %s  %s\n", r.Key, r.Value)
				}
				fmt.Fprintf(w, "\n%s (key order id):\n", OrdersTopic)
				for _, r := range orders {
					fmt.Fprintf(w, "  %s  %s\n", r.Key, r.Value)
				}
				fmt.Fprintf(w, "\n%s (amount > %d):\n", HighValueOrdersTopic, HighValue)
				for _, id := range sortedKeys(got.highValue) {
					fmt.Fprintf(w, "  %s  %s\n", id, got.highValue[id])
				}
				fmt.Fprintf(w, "\n%s (latest count per customer):\n", OrdersPerCustomerTopic)
				for _, c := range sortedKeys(got.perCust) {
					fmt.Fprintf(w, "  %s  %d\n", c, got.perCust[c])
				}
				fmt.Fprintf(w, "\n%s (key customer id, by order id):\n", EnrichedOrdersTopic)
				for _, id := range sortedKeys(got.enriched) {
					fmt.Fprintf(w, "  %s\n", got.enriched[id])
				}
				fmt.Fprintf(w, "\n%s (latest count per customer and hour, UTC):\n", OrdersPerHourTopic)
				for _, k := range sortedHours(got.perHour) {
					h := got.perHour[k]
					fmt.Fprintf(w, "  %s  %s  (%s-%s)\n", k.customer, got.hourRaw[k],
						time.UnixMilli(h.WindowStart).UTC().Format("15:04"), time.UnixMilli(h.WindowEnd).UTC().Format("15:04"))
				}
			},
		},
	}
}

func main() { exampleapp.Main(example()) }
