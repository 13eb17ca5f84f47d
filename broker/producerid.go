package broker

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// producerIDFile holds the first producer id not yet handed out in a block.
const producerIDFile = "producer-id-block"

// producerIDBlock is how many producer ids are reserved with one durable
// write, as Kafka's producer id manager reserves blocks of 1000.
const producerIDBlock = 1000

// producerIDs hands out producer ids that are never reused, across restarts
// too: before an id of a new block is handed out, the block's end is written
// durably, and a restart continues from that end (ids left in a block that
// was in use at a crash are skipped, as in Kafka).
type producerIDs struct {
	path string

	mu   sync.Mutex
	next int64 // next id to hand out
	end  int64 // first id of the next block; next == end means reserve
}

// loadProducerIDs reads the allocator's state from dataDir.
func loadProducerIDs(dataDir string) (*producerIDs, error) {
	p := &producerIDs{path: filepath.Join(dataDir, producerIDFile)}
	b, err := os.ReadFile(p.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return p, nil
	case err != nil:
		return nil, fmt.Errorf("reading %s: %w", p.path, err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || n < 0 {
		return nil, fmt.Errorf("%s holds %q, not a producer id", p.path, b)
	}
	p.next, p.end = n, n
	return p, nil
}

// allocate returns a producer id never returned before.
func (p *producerIDs) allocate() (int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.next == p.end {
		end := p.end + producerIDBlock
		if err := writeFileAtomic(p.path, []byte(strconv.FormatInt(end, 10)+"\n")); err != nil {
			return -1, fmt.Errorf("reserving producer ids: %w", err)
		}
		p.end = end
	}
	id := p.next
	p.next++
	return id, nil
}

// handleInitProducerID answers InitProducerId for idempotent producers (no
// transactional id): as Kafka does, every request gets a new producer id
// with epoch 0, including a KIP-360 request naming its current id and epoch.
// A transactional id needs the transaction coordinator, which eddy does not
// have yet: such a request gets COORDINATOR_NOT_AVAILABLE, as FindCoordinator
// for a transactional id does.
func (s *Server) handleInitProducerID(rc *reqCtx, req *kmsg.InitProducerIDRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID != nil {
		resp.ErrorCode = rc.note(kerr.CoordinatorNotAvailable.Code)
		return resp
	}
	id, err := s.producerIDs.allocate()
	if err != nil {
		s.logger.Error("allocating a producer id", "err", err)
		resp.ErrorCode = rc.note(kerr.UnknownServerError.Code)
		return resp
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return resp
}
