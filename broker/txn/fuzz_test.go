package txn

import (
	"maps"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// FuzzDecodeRecord feeds arbitrary __transaction_state record keys and
// values (or a null value, a tombstone) to the replay decoder: it must never panic, and whatever it
// accepts must survive an encode/decode round trip unchanged.
func FuzzDecodeRecord(f *testing.F) {
	d := &txnData{pid: 42, epoch: 3, lastPID: -1, lastEpoch: -1, timeoutMs: 60000, state: kmsg.TransactionStateOngoing,
		parts: map[topicPartition]struct{}{{"orders", 0}: {}, {"orders", 2}: {}, {"__consumer_offsets", 7}: {}}, startMs: 1000, updateMs: 2000}
	r := encodeRecord("txn-1", d)
	f.Add(r.Key, r.Value, false)
	f.Add(r.Key, []byte{}, true)
	f.Add([]byte{0, 0}, []byte{0, 0}, false)
	f.Fuzz(func(t *testing.T, key, value []byte, tombstone bool) {
		if tombstone {
			value = nil // a null value: the corpus format cannot spell nil
		} else if value == nil {
			value = []byte{}
		}
		id, got, err := decodeRecord(key, value)
		if err != nil || got == nil {
			return
		}
		if got.state == kmsg.TransactionStateDead {
			return
		}
		r := encodeRecord(id, got)
		id2, again, err := decodeRecord(r.Key, r.Value)
		if err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
		if id2 != id || again.pid != got.pid || again.epoch != got.epoch || again.state != got.state ||
			again.timeoutMs != got.timeoutMs || again.startMs != got.startMs || again.updateMs != got.updateMs ||
			!maps.Equal(again.parts, got.parts) {
			t.Fatalf("round trip changed the record: %+v -> %+v", got, again)
		}
	})
}
