package broker

import (
	"math/rand/v2"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Incremental fetch sessions (KIP-227). A client opens a session with a
// full fetch at epoch 0; later fetches at epochs 1, 2, ... name only the
// partitions whose fetch position changed (and the ones to forget), and
// the broker answers only partitions with news.

// maxFetchSessions bounds the session cache (Kafka's
// max.incremental.fetch.session.cache.slots); the least recently used
// session is evicted when it is full.
const maxFetchSessions = 1000

type fetchSessions struct {
	mu   sync.Mutex
	byID map[int32]*fetchSession
}

type sessionKey struct {
	name      string
	id        [16]byte
	partition int32
}

// sessionPart is one partition of a session: the client's position and
// what the broker last told it.
type sessionPart struct {
	key          sessionKey
	offset       int64
	maxBytes     int32
	sent         bool
	hw, logStart int64
}

type fetchSession struct {
	id       int32
	mu       sync.Mutex // held while a fetch uses the session
	epoch    int32      // the epoch the next request must carry
	parts    []*sessionPart
	index    map[sessionKey]*sessionPart
	lastUsed time.Time
}

func newFetchSessions() *fetchSessions {
	return &fetchSessions{byID: make(map[int32]*fetchSession)}
}

// create opens a new session, locked, evicting the least recently used one
// when the cache is full.
func (fs *fetchSessions) create() *fetchSession {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if len(fs.byID) >= maxFetchSessions {
		var oldest *fetchSession
		for _, s := range fs.byID {
			if oldest == nil || s.lastUsed.Before(oldest.lastUsed) {
				oldest = s
			}
		}
		delete(fs.byID, oldest.id)
	}
	id := rand.Int32N(1<<31-1) + 1
	for fs.byID[id] != nil {
		id = rand.Int32N(1<<31-1) + 1
	}
	s := &fetchSession{id: id, index: make(map[sessionKey]*sessionPart), lastUsed: time.Now()}
	s.mu.Lock()
	fs.byID[id] = s
	return s
}

// acquire locks session id for a request at epoch.
func (fs *fetchSessions) acquire(id, epoch int32) (*fetchSession, int16) {
	fs.mu.Lock()
	s := fs.byID[id]
	fs.mu.Unlock()
	if s == nil {
		return nil, kerr.FetchSessionIDNotFound.Code
	}
	if !s.mu.TryLock() {
		return nil, kerr.InvalidFetchSessionEpoch.Code // a concurrent request holds it
	}
	if s.epoch != epoch {
		s.mu.Unlock()
		return nil, kerr.InvalidFetchSessionEpoch.Code
	}
	s.lastUsed = time.Now()
	return s, 0
}

func (fs *fetchSessions) remove(id int32) {
	fs.mu.Lock()
	delete(fs.byID, id)
	fs.mu.Unlock()
}

func (s *fetchSession) release() { s.mu.Unlock() }

func keyOf(name string, id [16]byte, p int32, useIDs bool) sessionKey {
	if useIDs {
		return sessionKey{id: id, partition: p}
	}
	return sessionKey{name: name, partition: p}
}

// reset fills a new session from a full fetch.
func (s *fetchSession) reset(parts []fetchPart, useIDs bool) {
	s.parts = s.parts[:0]
	clear(s.index)
	for i := range parts {
		fp := &parts[i]
		k := keyOf(fp.name, fp.id, fp.rp.Partition, useIDs)
		sp := s.index[k]
		if sp == nil {
			sp = &sessionPart{key: k}
			s.index[k] = sp
			s.parts = append(s.parts, sp)
		}
		sp.offset, sp.maxBytes = fp.offset, fp.maxBytes
		fp.sp = sp
	}
	s.epoch = 0
}

// update applies an incremental request: new or moved partitions, then
// forgotten ones.
func (s *fetchSession) update(req *kmsg.FetchRequest, useIDs bool) {
	for i := range req.Topics {
		rt := &req.Topics[i]
		for j := range rt.Partitions {
			in := &rt.Partitions[j]
			k := keyOf(rt.Topic, rt.TopicID, in.Partition, useIDs)
			sp := s.index[k]
			if sp == nil {
				sp = &sessionPart{key: k}
				s.index[k] = sp
				s.parts = append(s.parts, sp)
			}
			sp.offset, sp.maxBytes = in.FetchOffset, in.PartitionMaxBytes
		}
	}
	forgot := false
	for _, ft := range req.ForgottenTopics {
		for _, p := range ft.Partitions {
			k := keyOf(ft.Topic, ft.TopicID, p, useIDs)
			if s.index[k] != nil {
				delete(s.index, k)
				forgot = true
			}
		}
	}
	if forgot {
		kept := s.parts[:0]
		for _, sp := range s.parts {
			if s.index[sp.key] == sp {
				kept = append(kept, sp)
			}
		}
		clear(s.parts[len(kept):])
		s.parts = kept
	}
}

// sent records what a response told the client about a partition.
func (s *fetchSession) sent(fp *fetchPart) {
	sp := fp.sp
	if sp == nil {
		return
	}
	sp.sent = true
	sp.hw, sp.logStart = fp.rp.HighWatermark, fp.rp.LogStartOffset
}
