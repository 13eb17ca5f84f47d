package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
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

// TestOrdersPerHourDriver checks orders-per-hour in the test driver: hours
// aligned on the hour, an order at exactly hh:00:00.000 in the new hour,
// out-of-order orders counted while their hour is within the grace period,
// and an order of a closed hour dropped.
func TestOrdersPerHourDriver(t *testing.T) {
	top, err := Topology()
	if err != nil {
		t.Fatal(err)
	}
	d, err := streamtest.New(top, streamtest.WithCacheMaxBytes(0), streamtest.WithApplicationID("orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	orders := streamtest.InputTopic(d, OrdersTopic, serde.String(), serde.String())
	const (
		h0    = demoBase // 2024-03-01T09:00:00Z
		hour  = int64(3600000)
		min   = int64(60000)
		grace = 5 * min
	)
	if OrdersPerHourGrace.Milliseconds() != grace {
		t.Fatalf("test written for a %d ms grace, the example has %v", grace, OrdersPerHourGrace)
	}
	for _, o := range []struct {
		id, customer string
		at           int64
	}{
		{"O1", "C1", h0 + 10*min},
		{"O2", "C1", h0 + hour},             // 10:00:00.000: the 10:00 hour
		{"O3", "C1", h0 + hour - 1},         // 09:59:59.999, out of order: the 09:00 hour, still open
		{"O4", "C2", h0 + hour + grace - 1}, // stream time 10:04:59.999
		{"O5", "C2", h0 + 30*min},           // the 09:00 hour closes at 10:05: still counted
		{"O6", "C3", h0 + hour + grace},     // stream time 10:05: the 09:00 hour is closed
		{"O7", "C1", h0 + 59*min},           // too late: dropped
		{"O8", "C2", h0 + 2*hour - 1},       // the last millisecond of the 10:00 hour
		{"O9", "C2", h0 + 2*hour},           // 11:00:00.000
	} {
		v := fmt.Sprintf(`{"order_id":%q,"customer_id":%q,"amount":1,"created_at":%d}`, o.id, o.customer, o.at)
		// The record timestamp (1) is not the event time: created_at is.
		if err := orders.Pipe(o.id, v, 1); err != nil {
			t.Fatal(err)
		}
	}
	recs, err := streamtest.OutputTopic(d, OrdersPerHourTopic, serde.String(), serde.JSON[HourlyCount]()).ReadRecords()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		if r.Key != r.Value.CustomerID || r.Value.WindowEnd-r.Value.WindowStart != hour {
			t.Errorf("bad record %+v", r)
		}
		got = append(got, fmt.Sprintf("%s %+d..%+d=%d@%+d", r.Key, (r.Value.WindowStart-h0)/min, (r.Value.WindowEnd-h0)/min, r.Value.Count, r.Timestamp-h0))
	}
	// Minutes from 09:00 for the window, milliseconds from 09:00 for the
	// timestamp: the largest created_at in the window.
	want := []string{
		"C1 +0..+60=1@+600000",
		"C1 +60..+120=1@+3600000",
		"C1 +0..+60=2@+3599999",
		"C2 +60..+120=1@+3899999",
		"C2 +0..+60=1@+1800000",
		"C3 +60..+120=1@+3900000",
		"C2 +60..+120=2@+7199999",
		"C2 +120..+180=1@+7200000",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("orders-per-hour:\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	}
	if n := d.Dropped("late"); n != 1 {
		t.Errorf("%d records dropped as late, want 1 (O7)", n)
	}
	// The raw value is the documented JSON.
	raw := d.Records(OrdersPerHourTopic)
	if len(raw) == 0 || string(raw[0].Value) != fmt.Sprintf(`{"customer_id":"C1","window_start":%d,"window_end":%d,"count":1}`, h0, h0+hour) {
		t.Errorf("first orders-per-hour value %q", raw[0].Value)
	}
	// Every other output still sees every order, late or not.
	counts, err := streamtest.ReadKeyValuesToMap(streamtest.OutputTopic(d, OrdersPerCustomerTopic, serde.String(), serde.Int64()))
	if err != nil || counts["C1"] != 4 || counts["C2"] != 4 || counts["C3"] != 1 {
		t.Errorf("orders-per-customer %v, %v", counts, err)
	}
}

// TestOrdersPerHourChangelog checks the window store's changelog: compact
// and delete, keyed by customer id + window start (Kafka's window-store
// changelog layout).
func TestOrdersPerHourChangelog(t *testing.T) {
	top, err := Topology()
	if err != nil {
		t.Fatal(err)
	}
	d, err := streamtest.New(top, streamtest.WithApplicationID("orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	orders := streamtest.InputTopic(d, OrdersTopic, serde.String(), serde.String())
	if err := orders.Pipe("O1", fmt.Sprintf(`{"order_id":"O1","customer_id":"C1","amount":1,"created_at":%d}`, demoBase+1), 0); err != nil {
		t.Fatal(err)
	}
	recs := d.Records("orders-" + OrdersPerHourStore + "-changelog")
	if len(recs) != 1 {
		t.Fatalf("changelog records %+v", recs)
	}
	key := append([]byte("C1"), make([]byte, 12)...)
	binary.BigEndian.PutUint64(key[2:], uint64(demoBase))
	if !bytes.Equal(recs[0].Key, key) || !bytes.Equal(recs[0].Value, []byte{0, 0, 0, 0, 0, 0, 0, 1}) || recs[0].Timestamp != demoBase+1 {
		t.Errorf("changelog record %x=%x@%d, want %x=0000000000000001@%d", recs[0].Key, recs[0].Value, recs[0].Timestamp, key, demoBase+1)
	}
	var info *stream.StoreInfo
	for _, sub := range top.Subtopologies("orders") {
		for _, s := range sub.Stores {
			if s.Name == OrdersPerHourStore {
				info = &s
			}
		}
	}
	if info == nil {
		t.Fatalf("no store %s", OrdersPerHourStore)
	}
	if info.Kind != stream.WindowKind || info.Retention != OrdersPerHourRetention ||
		info.Changelog.Name != "orders-orders-per-hour-changelog" || info.Changelog.Configs["cleanup.policy"] != "compact,delete" {
		t.Errorf("store %+v", *info)
	}
}
