package txn

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddy-streams/eddy/internal/recordbatch"
)

// ControlBatch returns the control batch a MarkerWriter appends (with
// storage.Log.AppendControl) to end a producer's transaction on one
// partition, in Kafka's format: a transactional control batch of the
// producer id and epoch, base sequence -1, holding one record whose key is
// ControlRecordKey{Version 0, Type 1 = commit / 0 = abort} and whose value
// is EndTxnMarker{Version 0, CoordinatorEpoch}. nowMs is its timestamp.
func ControlBatch(producerID int64, producerEpoch int16, commit bool, coordinatorEpoch int32, nowMs int64) []byte {
	k := kmsg.NewControlRecordKey()
	k.Version = 0
	k.Type = kmsg.ControlRecordKeyTypeAbort
	if commit {
		k.Type = kmsg.ControlRecordKeyTypeCommit
	}
	v := kmsg.NewEndTxnMarker()
	v.Version, v.CoordinatorEpoch = 0, coordinatorEpoch
	return recordbatch.Build(recordbatch.BuildOptions{
		ProducerID: producerID, ProducerEpoch: producerEpoch, BaseSequence: -1,
		Transactional: true, Control: true,
	}, []recordbatch.Record{{Timestamp: nowMs, Key: k.AppendTo(nil), Value: v.AppendTo(nil)}})
}
