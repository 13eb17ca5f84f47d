package crash

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddy-streams/eddy/internal/recordbatch"
)

// rawConn is one TCP connection speaking the Kafka protocol with kmsg
// requests whose versions the caller pins (non-flexible versions only, so
// the response header is just the correlation id).
type rawConn struct {
	conn net.Conn
	r    *bufio.Reader
	fmt  *kmsg.RequestFormatter
	corr int32
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	rc := &rawConn{conn: c, r: bufio.NewReader(c), fmt: kmsg.NewRequestFormatter(kmsg.FormatterClientID("crash-raw"))}
	t.Cleanup(func() { c.Close() })
	return rc
}

// do sends req (its version already set) and reads the response.
func (rc *rawConn) do(req kmsg.Request) (kmsg.Response, error) {
	corr, err := rc.send(req)
	if err != nil {
		return nil, err
	}
	return rc.recv(req, corr)
}

// send writes req without waiting for the response (for pipelining) and
// returns its correlation id.
func (rc *rawConn) send(req kmsg.Request) (int32, error) {
	if req.IsFlexible() {
		return 0, fmt.Errorf("rawConn: %s v%d is flexible; pin a non-flexible version", kmsg.NameForKey(req.Key()), req.GetVersion())
	}
	rc.corr++
	if err := rc.conn.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		return 0, err
	}
	_, err := rc.conn.Write(rc.fmt.AppendRequest(nil, req, rc.corr))
	return rc.corr, err
}

// recv reads the response to req, sent with correlation id corr (responses
// come in request order).
func (rc *rawConn) recv(req kmsg.Request, corr int32) (kmsg.Response, error) {
	if err := rc.conn.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		return nil, err
	}
	var size [4]byte
	if _, err := io.ReadFull(rc.r, size[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n < 4 || n > 256<<20 {
		return nil, fmt.Errorf("response size %d", n)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(rc.r, buf); err != nil {
		return nil, err
	}
	if got := int32(binary.BigEndian.Uint32(buf)); got != corr {
		return nil, fmt.Errorf("correlation id %d, want %d", got, corr)
	}
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	if err := resp.ReadFrom(buf[4:]); err != nil {
		return nil, fmt.Errorf("decode %s response: %w", kmsg.NameForKey(req.Key()), err)
	}
	return resp, nil
}

// viewRec is one data record as a consumer at some isolation level sees it.
type viewRec struct {
	partition int32
	offset    int64
	pid       int64
	txn       bool
	value     string
}

// partView is one partition as a consumer at one isolation level sees it.
type partView struct {
	hwm, lso int64
	recs     []viewRec
}

// readView fetches partition p of topic from offset 0 to its high watermark
// (read_uncommitted) or last stable offset (read_committed) with raw Fetch v11
// requests, and returns the data records a Kafka consumer would return:
// control batches are skipped and, read_committed, transactional batches of
// the aborted transactions the broker lists are dropped (the Java
// consumer's algorithm). A read_committed Fetch that returns a batch at or
// past the last stable offset is an error.
func readView(rc *rawConn, topic string, p int32, committed bool) (partView, error) {
	var v partView
	var iso int8
	if committed {
		iso = 1
	}
	offset := int64(0)
	for round := 0; ; round++ {
		if round > 100000 {
			return v, errors.New("fetch loop does not advance")
		}
		fp, err := fetchOnce(rc, topic, p, offset, iso)
		if err != nil {
			return v, err
		}
		v.hwm, v.lso = fp.HighWatermark, fp.LastStableOffset
		limit := fp.HighWatermark
		if committed {
			limit = fp.LastStableOffset
		}
		if offset >= limit {
			return v, nil
		}
		// Like the Java consumer, each response's aborted-transaction list
		// is applied to that response's batches only.
		aborted := map[int64]bool{} // producers whose aborted transaction covers the read position
		pending := fp.AbortedTransactions
		b := fp.RecordBatches
		progressed := false
		for len(b) >= recordbatch.HeaderSize {
			h, err := recordbatch.ParseHeader(b)
			if err != nil {
				return v, fmt.Errorf("%s/%d at %d: %w", topic, p, offset, err)
			}
			if h.Size() > len(b) {
				break // a truncated last batch; fetch it again from its start
			}
			batch := b[:h.Size()]
			b = b[h.Size():]
			if h.LastOffset() < offset {
				continue
			}
			if committed && h.BaseOffset >= fp.LastStableOffset {
				return v, fmt.Errorf("%s/%d: read_committed fetch returned a batch at %d, at or past the last stable offset %d", topic, p, h.BaseOffset, fp.LastStableOffset)
			}
			// Activate the aborted transactions that start at or before this batch.
			var rest []kmsg.FetchResponseTopicPartitionAbortedTransaction
			for _, a := range pending {
				if a.FirstOffset <= h.LastOffset() {
					aborted[a.ProducerID] = true
				} else {
					rest = append(rest, a)
				}
			}
			pending = rest
			recs, err := recordbatch.Records(batch)
			if err != nil {
				return v, fmt.Errorf("%s/%d batch at %d: %w", topic, p, h.BaseOffset, err)
			}
			offset, progressed = h.LastOffset()+1, true
			if h.Control() {
				if len(recs) == 1 && len(recs[0].Key) >= 4 && binary.BigEndian.Uint16(recs[0].Key[2:4]) == 0 {
					delete(aborted, h.ProducerID) // abort marker ends that producer's aborted transaction
				}
				continue
			}
			if committed && h.Transactional() && aborted[h.ProducerID] {
				continue
			}
			for _, rec := range recs {
				if rec.Offset >= limit {
					break
				}
				v.recs = append(v.recs, viewRec{partition: p, offset: rec.Offset, pid: h.ProducerID, txn: h.Transactional(), value: string(rec.Value)})
			}
		}
		if !progressed && len(fp.RecordBatches) > 0 && len(b) == len(fp.RecordBatches) {
			return v, fmt.Errorf("%s/%d at %d: fetch returned %d bytes and no whole batch", topic, p, offset, len(fp.RecordBatches))
		}
		if !progressed && len(fp.RecordBatches) == 0 {
			return v, fmt.Errorf("%s/%d: fetch at %d below limit %d returned nothing", topic, p, offset, limit)
		}
	}
}

// fetchOnce sends one Fetch v11 for partition p of topic at offset and
// returns the partition's part of the response.
func fetchOnce(rc *rawConn, topic string, p int32, offset int64, iso int8) (kmsg.FetchResponseTopicPartition, error) {
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(11)
	req.ReplicaID = -1
	req.MaxWaitMillis = 0
	req.MinBytes = 0
	req.MaxBytes = 16 << 20
	req.IsolationLevel = iso
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition = p
	rp.FetchOffset = offset
	rp.LogStartOffset = -1
	rp.CurrentLeaderEpoch = -1
	rp.PartitionMaxBytes = 8 << 20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	r, err := rc.do(req)
	if err != nil {
		return kmsg.FetchResponseTopicPartition{}, err
	}
	resp := r.(*kmsg.FetchResponse)
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return kmsg.FetchResponseTopicPartition{}, fmt.Errorf("fetch: %w", err)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return kmsg.FetchResponseTopicPartition{}, fmt.Errorf("fetch response has %d topics", len(resp.Topics))
	}
	fp := resp.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(fp.ErrorCode); err != nil {
		return fp, fmt.Errorf("fetch %s/%d at %d: %w", topic, p, offset, err)
	}
	return fp, nil
}

// stableOffsets returns every partition's high watermark and last stable
// offset as read_committed Fetch reports them (at the high watermark, so no
// data comes back). ListOffsets is not used for the last stable offset: see
// docs/testing.md (eddy's ListOffsets ignores the isolation level).
func stableOffsets(rc *rawConn, topic string, partitions int32) (hwm, lso map[int32]int64, err error) {
	hwm, err = listOffsetsIso(rc, topic, partitions, false)
	if err != nil {
		return nil, nil, err
	}
	lso = map[int32]int64{}
	for p := int32(0); p < partitions; p++ {
		fp, err := fetchOnce(rc, topic, p, hwm[p], 1)
		if err != nil {
			return nil, nil, err
		}
		lso[p] = fp.LastStableOffset
		if fp.HighWatermark > hwm[p] {
			hwm[p] = fp.HighWatermark
		}
	}
	return hwm, lso, nil
}

// listOffsetsIso returns the end offset of every partition at an isolation
// level: the high watermark (read_uncommitted) or the last stable offset.
func listOffsetsIso(rc *rawConn, topic string, partitions int32, committed bool) (map[int32]int64, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	req.SetVersion(4)
	req.ReplicaID = -1
	if committed {
		req.IsolationLevel = 1
	}
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	for p := int32(0); p < partitions; p++ {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition = p
		rp.CurrentLeaderEpoch = -1
		rp.Timestamp = -1
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	r, err := rc.do(req)
	if err != nil {
		return nil, err
	}
	out := map[int32]int64{}
	for _, t := range r.(*kmsg.ListOffsetsResponse).Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return nil, fmt.Errorf("list offsets %s/%d: %w", topic, p.Partition, err)
			}
			out[p.Partition] = p.Offset
		}
	}
	return out, nil
}

// waitStable polls until no partition of topic has an open transaction
// (last stable offset = high watermark).
func waitStable(t *testing.T, rc *rawConn, topic string, partitions int32, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		hwm, lso, err := stableOffsets(rc, topic, partitions)
		if err != nil {
			t.Fatal(err)
		}
		stable := true
		for p := int32(0); p < partitions; p++ {
			stable = stable && lso[p] == hwm[p]
		}
		if stable {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: last stable offsets %v still below high watermarks %v after %v", topic, lso, hwm, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
