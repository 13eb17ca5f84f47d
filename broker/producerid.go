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
