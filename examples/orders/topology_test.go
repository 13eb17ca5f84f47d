package main

import (
	"strings"
	"testing"

	"github.com/eddy-streams/eddy/serde"
	"github.com/eddy-streams/eddy/stream"
	"github.com/eddy-streams/eddy/stream/streamtest"
)

// TestTopologyDriver runs the orders topology in the test driver: event time
// from created_at, high-value orders unchanged byte for byte, counts per
// customer and the stream-table join.
func TestTopologyDriver(t *testing.T) {
	top, err := Topology()
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + top.Describe().String())
	d, err := streamtest.New(top, streamtest.WithCacheMaxBytes(0), streamtest.WithApplicationID("orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	customers := streamtest.InputTopic(d, CustomersTopic, serde.String(), serde.String())
	orders := streamtest.InputTopic(d, OrdersTopic, serde.String(), serde.String())
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(customers.Pipe("C1", `{"customer_id":"C1","name":"Ada","tier":"gold"}`, 1))
	must(customers.Pipe("C2", `{"customer_id":"C2","name":"Grace","tier":"silver"}`, 2))
	// Record timestamps (5) differ from created_at: the output carries
	// created_at.
	must(orders.Pipe("O1", `{"order_id":"O1", "customer_id":"C1", "amount":1500.50, "items":["a"], "created_at":1000}`, 5))
	must(orders.Pipe("O2", `{"order_id":"O2","customer_id":"C9","amount":2000,"created_at":2000}`, 5))
	must(orders.Pipe("O3", `{"order_id":"O3","customer_id":"C1","amount":10,"created_at":3000}`, 5))
	must(customers.PipeTombstone("C1", 3500))
	must(orders.Pipe("O4", `{"order_id":"O4","customer_id":"C1","amount":10,"created_at":4000}`, 5))
	must(orders.Pipe("O5", `{"order_id":"O5","customer_id":"C2","amount":10,"created_at":5000}`, 5))

	read := func(topic string) string {
		t.Helper()
		recs, err := streamtest.OutputTopic(d, topic, serde.String(), serde.String()).ReadRecords()
		must(err)
		var s []string
		for _, r := range recs {
			s = append(s, r.String())
		}
		return strings.Join(s, "\n")
	}
	if got, want := read(HighValueOrdersTopic),
		`O1={"order_id":"O1", "customer_id":"C1", "amount":1500.50, "items":["a"], "created_at":1000}@1000
O2={"order_id":"O2","customer_id":"C9","amount":2000,"created_at":2000}@2000`; got != want {
		t.Errorf("high-value-orders:\n got %s\nwant %s", got, want)
	}
	counts, err := streamtest.OutputTopic(d, OrdersPerCustomerTopic, serde.String(), serde.Int64()).ReadRecords()
	must(err)
	var cs []string
	for _, r := range counts {
		cs = append(cs, r.String())
	}
	if got, want := strings.Join(cs, " "), "C1=1@1000 C9=1@2000 C1=2@3000 C1=3@4000 C2=1@5000"; got != want {
		t.Errorf("orders-per-customer:\n got %s\nwant %s", got, want)
	}
	// O2's customer is unknown and C1 is deleted before O4: neither joins.
	if got, want := read(EnrichedOrdersTopic),
		`C1={"order":{"order_id":"O1","customer_id":"C1","amount":1500.50,"items":["a"],"created_at":1000},"customer":{"customer_id":"C1","name":"Ada","tier":"gold"}}@1000
C1={"order":{"order_id":"O3","customer_id":"C1","amount":10,"created_at":3000},"customer":{"customer_id":"C1","name":"Ada","tier":"gold"}}@3000
C2={"order":{"order_id":"O5","customer_id":"C2","amount":10,"created_at":5000},"customer":{"customer_id":"C2","name":"Grace","tier":"silver"}}@5000`; got != want {
		t.Errorf("enriched-orders:\n got %s\nwant %s", got, want)
	}
}

// TestBadOrderDriver checks that an undecodable order goes to the
// deserialization handler (and the dead-letter topic) even though the
// timestamp extractor reads the value first, and that an order without a
// customer_id is rejected by the deserializer.
func TestBadOrderDriver(t *testing.T) {
	top, err := Topology()
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{`{"order_id":"O1",`, `{"order_id":"O1","amount":5}`, `[]`} {
		d, err := streamtest.New(top, streamtest.WithErrorHandlers(stream.ErrorHandlers{
			Deserialization: stream.LogAndContinue, DeadLetterTopic: "orders-dlq"}))
		if err != nil {
			t.Fatal(err)
		}
		orders := streamtest.InputTopic(d, OrdersTopic, serde.String(), serde.String())
		if err := orders.Pipe("O1", bad, 7); err != nil {
			t.Fatalf("%s: %v", bad, err)
		}
		if err := orders.Pipe("O2", `{"order_id":"O2","customer_id":"C1","amount":1001,"created_at":9}`, 8); err != nil {
			t.Fatal(err)
		}
		dlq := d.Records("orders-dlq")
		if len(dlq) != 1 || string(dlq[0].Value) != bad {
			t.Fatalf("%s: dead-letter records %+v", bad, dlq)
		}
		headers := map[string]string{}
		for _, h := range dlq[0].Headers {
			headers[h.Key] = string(h.Value)
		}
		if headers[stream.HeaderErrorTopic] != OrdersTopic || !strings.Contains(headers[stream.HeaderErrorMessage], `topic "orders"`) {
			t.Errorf("%s: dead-letter headers %v", bad, headers)
		}
		if n := len(d.Records(HighValueOrdersTopic)); n != 1 {
			t.Errorf("%s: %d high-value orders, want 1 (the good one)", bad, n)
		}
		d.Close()

		d, err = streamtest.New(top)
		if err != nil {
			t.Fatal(err)
		}
		orders = streamtest.InputTopic(d, OrdersTopic, serde.String(), serde.String())
		if err := orders.Pipe("O1", bad, 7); err == nil || !strings.Contains(err.Error(), `topic "orders"`) {
			t.Errorf("%s with the default handler: err %v, want a failure naming the topic", bad, err)
		}
		d.Close()
	}
}
