package broker

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/eddy-streams/eddy/broker/storage"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fetchPart is one partition of a fetch.
type fetchPart struct {
	name     string   // topic name as requested (v0-v12)
	id       [16]byte // topic id as requested (v13+)
	t        *topic
	p        *partition // nil when the partition has an error
	offset   int64
	maxBytes int32
	hw       int64             // end offset seen by the last pass
	rng      storage.FileRange // the records to send, owned until handed to the response
	rp       kmsg.FetchResponseTopicPartition
	sp       *sessionPart // the session's entry, for incremental fetches
}

func (s *Server) handleFetch(rc *reqCtx, req *kmsg.FetchRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	useIDs := req.Version >= 13

	var (
		sess        *fetchSession
		incremental bool
	)
	if req.Version >= 7 {
		switch {
		case req.SessionEpoch == -1: // sessionless full fetch; closes the session
			if req.SessionID != 0 {
				s.sessions.remove(req.SessionID)
			}
		case req.SessionEpoch == 0: // new session
			if req.SessionID != 0 {
				s.sessions.remove(req.SessionID)
			}
			sess = s.sessions.create()
		default:
			var code int16
			sess, code = s.sessions.acquire(req.SessionID, req.SessionEpoch)
			if code != 0 {
				resp.ErrorCode = rc.note(code)
				return resp
			}
			incremental = true
		}
	}
	if sess != nil {
		defer sess.release()
	}

	var parts []fetchPart
	if incremental {
		sess.update(req, useIDs)
		parts = make([]fetchPart, len(sess.parts))
		for i, sp := range sess.parts {
			parts[i] = fetchPart{name: sp.key.name, id: sp.key.id, offset: sp.offset, maxBytes: sp.maxBytes, sp: sp}
			parts[i].rp = kmsg.NewFetchResponseTopicPartition()
			parts[i].rp.RecordBatches = noRecords
			parts[i].rp.Partition = sp.key.partition
		}
	} else {
		for i := range req.Topics {
			rt := &req.Topics[i]
			for j := range rt.Partitions {
				in := &rt.Partitions[j]
				fp := fetchPart{name: rt.Topic, id: rt.TopicID, offset: in.FetchOffset, maxBytes: in.PartitionMaxBytes}
				fp.rp = kmsg.NewFetchResponseTopicPartition()
				fp.rp.RecordBatches = noRecords
				fp.rp.Partition = in.Partition
				if code := checkLeaderEpoch(in.CurrentLeaderEpoch); code != 0 {
					fp.rp.ErrorCode = code
				}
				parts = append(parts, fp)
			}
		}
		if sess != nil {
			sess.reset(parts, useIDs)
		}
	}

	hasErr := false
	for i := range parts {
		fp := &parts[i]
		if fp.rp.ErrorCode != 0 {
			hasErr = true
			continue
		}
		if useIDs {
			fp.t = s.topics.getByID(fp.id)
		} else {
			fp.t = s.topics.get(fp.name)
		}
		switch {
		case fp.t == nil && useIDs:
			fp.rp.ErrorCode = kerr.UnknownTopicID.Code
		case fp.t == nil:
			fp.rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
		default:
			if fp.p = fp.t.partition(fp.rp.Partition); fp.p == nil {
				fp.rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			}
		}
		if fp.p == nil {
			hasErr = true
		}
	}

	s.fetchWait(rc, parts, req, hasErr)

	// Partitions with records get a one-byte placeholder record set, all
	// sharing ph; encodeFetch locates them and splices in the file ranges.
	out := &fetchResponse{FetchResponse: resp, ph: []byte{0}}
	var topicRanges [][]storage.FileRange // by resp.Topics index, in partition order

	// Group the partitions by topic, in first-seen order. An incremental
	// response carries only partitions with records, an error, or a
	// changed high watermark or log start offset.
	index := make(map[[16]byte]int)
	byName := make(map[string]int)
	for i := range parts {
		fp := &parts[i]
		rc.note(fp.rp.ErrorCode)
		if fp.p != nil && fp.rng.Size > 0 {
			fp.t.m.bytesOut.Add(float64(fp.rng.Size))
			fp.t.m.recordsOut.Add(float64(fp.rng.NextOffset - fp.rng.FirstOffset))
		}
		if sp := fp.sp; sp != nil {
			changed := fp.rng.Size > 0 || fp.rp.ErrorCode != 0 ||
				!sp.sent || sp.hw != fp.rp.HighWatermark || sp.logStart != fp.rp.LogStartOffset
			if !changed {
				continue
			}
		}
		if sess != nil {
			sess.sent(fp)
		}
		var (
			ti int
			ok bool
		)
		if useIDs {
			ti, ok = index[fp.id]
		} else {
			ti, ok = byName[fp.name]
		}
		if !ok {
			ti = len(resp.Topics)
			resp.Topics = append(resp.Topics, kmsg.FetchResponseTopic{Topic: fp.name, TopicID: fp.id})
			topicRanges = append(topicRanges, nil)
			if useIDs {
				index[fp.id] = ti
			} else {
				byName[fp.name] = ti
			}
		}
		if fp.rng.Size > 0 {
			fp.rp.RecordBatches = out.ph
		}
		resp.Topics[ti].Partitions = append(resp.Topics[ti].Partitions, fp.rp)
		topicRanges[ti] = append(topicRanges[ti], fp.rng)
		fp.rng = storage.FileRange{} // owned by out now
	}
	if sess != nil {
		resp.SessionID = sess.id
		sess.epoch++
	}
	for _, rs := range topicRanges {
		for _, r := range rs {
			if r.Size > 0 {
				out.ranges = append(out.ranges, r)
			}
		}
	}
	return out
}

// fetchWait reads the partitions, long-polling until MinBytes are
// available, MaxWaitMillis passes, an error shows up or the connection
// closes. A waiting fetch is woken by appends to its partitions.
func (s *Server) fetchWait(rc *reqCtx, parts []fetchPart, req *kmsg.FetchRequest, hasErr bool) {
	var (
		wait    chan struct{}
		timer   *time.Timer
		expired = req.MaxWaitMillis <= 0
	)
	defer func() {
		if wait != nil {
			for i := range parts {
				if parts[i].p != nil {
					parts[i].p.removeWaiter(wait)
				}
			}
		}
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		total, passErr := s.fetchPass(parts, req.MaxBytes, req.Version >= 4 && req.IsolationLevel == 1)
		if hasErr || passErr || expired || total >= int(req.MinBytes) || rc.ctx.Err() != nil {
			return
		}
		if wait == nil {
			wait = make(chan struct{}, 1)
			timer = time.NewTimer(time.Duration(req.MaxWaitMillis) * time.Millisecond)
			moved := false
			for i := range parts {
				if fp := &parts[i]; fp.p != nil {
					fp.p.addWaiter(wait)
					moved = moved || fp.p.log.EndOffset() != fp.hw
				}
			}
			if moved {
				continue
			}
		}
		select {
		case <-wait:
		case <-timer.C:
			expired = true
		case <-rc.ctx.Done():
			expired = true
		}
	}
}

// noRecords is the empty, non-null record set of a partition with nothing to
// return.
var noRecords = []byte{}

// fetchPass reads every partition once, returning the bytes read and
// whether any partition failed. With committed (read_committed, Fetch v4+)
// each partition is read only below its last stable offset and its
// aborted transactions within the returned range are listed.
func (s *Server) fetchPass(parts []fetchPart, maxBytes int32, committed bool) (int, bool) {
	total := 0
	failed := false
	for i := range parts {
		fp := &parts[i]
		if fp.p == nil {
			continue
		}
		fp.rng.Release()
		rp := &fp.rp
		// An empty record set, never null: sarama and librdkafka reject a
		// null (-1) MessageSetSize in a fetch response.
		rp.RecordBatches = noRecords
		rp.ErrorCode = 0
		rp.AbortedTransactions = nil
		if committed {
			rp.AbortedTransactions = noAborted
		}
		log := fp.p.log
		remaining := int(maxBytes) - total
		limit := min(int(fp.maxBytes), remaining)
		if total > 0 && limit <= 0 {
			fp.hw = log.EndOffset()
			rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset = fp.hw, log.LastStableOffset(), log.StartOffset()
			continue
		}
		var (
			info storage.RangeInfo
			err  error
		)
		if committed {
			info, err = log.ReadRangeStable(fp.offset, max(limit, 1))
		} else {
			info, err = log.ReadRange(fp.offset, max(limit, 1))
		}
		if err != nil {
			fp.hw = log.EndOffset()
			rp.ErrorCode = errorCode(err)
			rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset = fp.hw, log.LastStableOffset(), log.StartOffset()
			failed = true
			continue
		}
		fp.hw = info.HighWatermark
		rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset = info.HighWatermark, info.LastStableOffset, info.LogStartOffset
		if total > 0 && info.Records.Size > int64(limit) {
			info.Records.Release()
			continue // only the first non-empty partition may exceed the limits
		}
		fp.rng = info.Records
		total += int(info.Records.Size)
		if committed && info.Records.Size > 0 {
			rp.AbortedTransactions = abortedList(log.AbortedTransactions(info.Records.FirstOffset, info.Records.NextOffset))
		}
	}
	return total, failed
}

// noAborted is the empty aborted-transactions list of a read_committed
// partition (read_uncommitted gets null, as from Kafka).
var noAborted = []kmsg.FetchResponseTopicPartitionAbortedTransaction{}

// abortedList converts the log's aborted transactions for a response.
func abortedList(txns []storage.AbortedTxn) []kmsg.FetchResponseTopicPartitionAbortedTransaction {
	if len(txns) == 0 {
		return noAborted
	}
	out := make([]kmsg.FetchResponseTopicPartitionAbortedTransaction, len(txns))
	for i, t := range txns {
		out[i] = kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
		out[i].ProducerID, out[i].FirstOffset = t.ProducerID, t.FirstOffset
	}
	return out
}

// appendControl appends a control batch (a transaction marker) to p's log
// and wakes the fetches waiting on p, as a produce does: the marker moves
// the high watermark and may advance the last stable offset, which is what
// long-polling read_committed fetches wait for. The transaction
// coordinator's marker writer must append through it.
func appendControl(p *partition, batch []byte) (storage.AppendInfo, error) {
	info, err := p.log.AppendControl(batch)
	if err == nil {
		p.wake()
	}
	return info, err
}

// countRecords sums the record counts of the batch headers in b.
func countRecords(b []byte) int {
	n := 0
	for len(b) >= 61 {
		length := int(int32(binary.BigEndian.Uint32(b[8:12])))
		n += int(int32(binary.BigEndian.Uint32(b[57:61])))
		if length < 49 || 12+length > len(b) {
			break
		}
		b = b[12+length:]
	}
	return n
}

// fetchResponse is a FetchResponse whose partitions with records carry the
// placeholder ph instead of their record bytes; ranges are those records'
// file ranges, in encoding order. It owns the ranges until encodeFetch
// hands them to the connection's writer.
type fetchResponse struct {
	*kmsg.FetchResponse
	ph     []byte
	ranges []storage.FileRange
}

// outFrame is one encoded response for the connection writer: buf, with the
// file range of each splice written at its position.
type outFrame struct {
	buf     *[]byte
	splices []splice
}

// splice is a file range to send at position at of a frame's buffer.
type splice struct {
	at  int
	rng storage.FileRange
}

// release returns the buffer to the pool and releases the file ranges.
func (f *outFrame) release() {
	for i := range f.splices {
		f.splices[i].rng.Release()
	}
	putBuf(f.buf)
}

// encodeFetch frames a fetch response. The records are not copied: the
// response is encoded twice with the placeholder byte set to 0x00 and to
// 0xff, the differing positions are exactly the placeholders (in encoding
// order), and each is replaced by a length prefix for the real size and a
// splice of the file range.
func encodeFetch(r *request, resp *fetchResponse) (outFrame, error) {
	resp.ph[0] = 0
	bp := encodeResponse(r, resp.FetchResponse)
	if len(resp.ranges) == 0 {
		return outFrame{buf: bp}, nil
	}
	resp.ph[0] = 0xff
	bq := encodeResponse(r, resp.FetchResponse)
	defer putBuf(bq)
	sizes := make([]int64, len(resp.ranges))
	for i := range resp.ranges {
		sizes[i] = resp.ranges[i].Size
	}
	out := getBuf()
	b, ats, err := spliceFrame((*out)[:0], *bp, *bq, sizes, resp.IsFlexible())
	putBuf(bp)
	if err != nil {
		putBuf(out)
		for i := range resp.ranges {
			resp.ranges[i].Release()
		}
		return outFrame{}, err
	}
	*out = b
	f := outFrame{buf: out, splices: make([]splice, len(ats))}
	for i, at := range ats {
		f.splices[i] = splice{at: at, rng: resp.ranges[i]}
	}
	return f, nil
}

// spliceFrame rewrites the frame a (size prefix first) whose record sets
// are one-byte placeholders, located where a and b differ, into dst: each
// placeholder and its length prefix (int32, or a compact uvarint for
// flexible versions) is replaced by a prefix for sizes[i] bytes, and ats[i]
// is where those bytes belong in the result. The frame size counts them.
func spliceFrame(dst, a, b []byte, sizes []int64, flexible bool) ([]byte, []int, error) {
	if len(a) != len(b) || len(a) < 4 {
		return nil, nil, fmt.Errorf("fetch placeholders: encodings of %d and %d bytes", len(a), len(b))
	}
	ats := make([]int, 0, len(sizes))
	total := int64(0)
	prev := 0
	for i := 4; i < len(a); i++ {
		if a[i] == b[i] {
			continue
		}
		k := len(ats)
		if k == len(sizes) || a[i] != 0 || b[i] != 0xff {
			return nil, nil, fmt.Errorf("fetch placeholders: unexpected difference at byte %d", i)
		}
		size := sizes[k]
		if flexible {
			if a[i-1] != 2 { // compact length of one byte: uvarint(1+1)
				return nil, nil, fmt.Errorf("fetch placeholders: bad compact length %d at byte %d", a[i-1], i-1)
			}
			dst = append(dst, a[prev:i-1]...)
			dst = binary.AppendUvarint(dst, uint64(size)+1)
		} else {
			if i < 8 || !bytes.Equal(a[i-4:i], []byte{0, 0, 0, 1}) {
				return nil, nil, fmt.Errorf("fetch placeholders: bad length at byte %d", i-4)
			}
			dst = append(dst, a[prev:i-4]...)
			dst = binary.BigEndian.AppendUint32(dst, uint32(size))
		}
		ats = append(ats, len(dst))
		total += size
		prev = i + 1
	}
	if len(ats) != len(sizes) {
		return nil, nil, fmt.Errorf("fetch placeholders: found %d of %d", len(ats), len(sizes))
	}
	dst = append(dst, a[prev:]...)
	frame := int64(len(dst)-4) + total
	if frame > 1<<31-1 {
		return nil, nil, fmt.Errorf("fetch response of %d bytes does not fit a frame", frame)
	}
	binary.BigEndian.PutUint32(dst, uint32(frame))
	return dst, ats, nil
}
