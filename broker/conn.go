package broker

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A connection runs three goroutines: the reader decodes frames into
// requests, the handler answers them one at a time in arrival order, and
// the writer writes the encoded responses, flushing when it runs out of
// queued responses. Pipelined requests are therefore answered in order.

// pipelineDepth is how many decoded requests (and encoded responses) may
// queue per connection.
const pipelineDepth = 16

// errMalformed is wrapped by every frame decoding error.
var errMalformed = errors.New("malformed request")

type conn struct {
	s      *Server
	nc     net.Conn
	ctx    context.Context // cancelled when the connection closes
	cancel context.CancelFunc
	br     *bufio.Reader
	remote string

	// pending counts requests read and not yet answered (or dropped);
	// lastActive is when a request was last read or a response written
	// (UnixNano). The maintenance loop closes a connection idle on both.
	pending    atomic.Int32
	lastActive atomic.Int64

	closeOnce sync.Once
}

// idleSince reports whether the connection has had nothing in flight and no
// traffic since before t.
func (c *conn) idleSince(t time.Time) bool {
	return c.pending.Load() == 0 && c.lastActive.Load() < t.UnixNano()
}

// request is one decoded request frame.
type request struct {
	key      int16
	version  int16
	corr     int32
	clientID *string
	req      kmsg.Request // nil when unsupportedApiVersions
	start    time.Time
	// arrived is the connection's context marked, for an EndTxn, with the
	// moment it was read (txn.Coordinator.Arrived): a delayed EndTxn cannot
	// end a transaction that began after it arrived.
	arrived context.Context
	// unsupportedApiVersions marks an ApiVersions request of a version we
	// do not know; it is answered as v0 with UNSUPPORTED_VERSION (KIP-511).
	unsupportedApiVersions bool
}

// close cancels the connection's work and closes the socket.
func (c *conn) close() {
	c.closeOnce.Do(func() {
		c.cancel()
		c.nc.Close()
	})
}

func (c *conn) serve() {
	m := c.s.metrics
	m.connections.Inc()
	defer m.connections.Dec()
	defer c.close()

	reqs := make(chan *request, pipelineDepth)
	out := make(chan outFrame, pipelineDepth)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer close(out)
		c.handleLoop(reqs, out)
	}()
	go func() {
		defer wg.Done()
		c.writeLoop(out)
	}()
	err := c.readLoop(reqs)
	close(reqs)
	switch {
	case err == nil, errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), c.ctx.Err() != nil:
		c.s.logger.Debug("connection closed", "remote", c.remote)
	default:
		c.s.logger.Warn("closing connection", "remote", c.remote, "reason", err)
	}
	// Stop long polls; queued requests are still processed (an acks=0
	// produce sent just before the client hung up is still appended).
	c.cancel()
	wg.Wait()
}

// readLoop reads frames until an error; a malformed or oversized frame
// ends it with an error describing why.
func (c *conn) readLoop(reqs chan<- *request) error {
	var sizeBuf [4]byte
	for {
		if _, err := io.ReadFull(c.br, sizeBuf[:]); err != nil {
			return err
		}
		size := int32(binary.BigEndian.Uint32(sizeBuf[:]))
		if size < 0 || size > c.s.cfg.MaxRequestBytes {
			return fmt.Errorf("%w: frame of %d bytes exceeds socket.request.max.bytes %d", errMalformed, uint32(size), c.s.cfg.MaxRequestBytes)
		}
		frame, err := readFrameBody(c.br, int(size))
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
				return fmt.Errorf("connection closed inside a %d byte frame", size)
			}
			return err
		}
		r, err := parseRequest(frame, c.s.apis)
		if err != nil {
			return err
		}
		r.start = time.Now()
		c.pending.Add(1)
		c.lastActive.Store(r.start.UnixNano())
		if r.key == 26 && c.s.txn != nil { // EndTxn
			r.arrived = c.s.txn.Arrived(c.ctx)
		}
		select {
		case reqs <- r:
		case <-c.ctx.Done():
			return c.ctx.Err()
		}
	}
}

// frameChunk is how much of a frame is allocated before its bytes arrive:
// a client announcing a huge frame and sending nothing does not make the
// broker allocate the announced size.
const frameChunk = 1 << 20

// readFrameBody reads size bytes, growing the buffer as they arrive.
func readFrameBody(r io.Reader, size int) ([]byte, error) {
	if size <= frameChunk {
		frame := make([]byte, size)
		_, err := io.ReadFull(r, frame)
		return frame, err
	}
	frame := make([]byte, 0, frameChunk)
	for len(frame) < size {
		if len(frame) == cap(frame) {
			frame = slices.Grow(frame, min(cap(frame), size-len(frame)))
		}
		n := min(cap(frame), size) - len(frame)
		got, err := io.ReadFull(r, frame[len(frame):len(frame)+n])
		frame = frame[:len(frame)+got]
		if err != nil {
			return nil, err
		}
	}
	return frame, nil
}

// parseRequest decodes one request frame (without its size prefix). It
// never panics; every error wraps errMalformed.
func parseRequest(frame []byte, apis *apiTable) (*request, error) {
	rd := kbin.Reader{Src: frame}
	r := &request{key: rd.Int16(), version: rd.Int16(), corr: rd.Int32()}
	r.clientID = rd.NullableString()
	if !rd.Ok() {
		return nil, fmt.Errorf("%w: short request header (%d bytes)", errMalformed, len(frame))
	}
	lo, hi, ok := apis.versions(r.key)
	if !ok {
		return nil, fmt.Errorf("%w: unsupported api key %d (version %d)", errMalformed, r.key, r.version)
	}
	if r.version < lo || r.version > hi {
		if r.key == apiVersionsKey {
			r.unsupportedApiVersions = true
			return r, nil
		}
		return nil, fmt.Errorf("%w: unsupported version %d of %s (supported %d-%d)", errMalformed, r.version, kmsg.NameForKey(r.key), lo, hi)
	}
	req := kmsg.RequestForKey(r.key)
	if req == nil {
		return nil, fmt.Errorf("%w: unsupported api key %d", errMalformed, r.key)
	}
	req.SetVersion(r.version)
	if req.IsFlexible() {
		skipTags(&rd)
		if !rd.Ok() {
			return nil, fmt.Errorf("%w: bad tagged fields in %s v%d header", errMalformed, kmsg.NameForKey(r.key), r.version)
		}
	}
	if err := req.ReadFrom(rd.Src); err != nil {
		return nil, fmt.Errorf("%w: %s v%d: %v", errMalformed, kmsg.NameForKey(r.key), r.version, err)
	}
	r.req = req
	return r, nil
}

// skipTags skips a tagged-field section, stopping at the first short
// read (kmsg.SkipTags would count a bogus 2^32 tag count down to zero).
func skipTags(rd *kbin.Reader) {
	for n := rd.Uvarint(); n > 0 && rd.Ok(); n-- {
		rd.Uvarint()
		rd.Span(int(rd.Uvarint()))
	}
}

// handleLoop answers requests in order.
func (c *conn) handleLoop(reqs <-chan *request, out chan<- outFrame) {
	for r := range reqs {
		resp, code, err := c.s.handle(c, r)
		if err != nil {
			c.s.logger.Warn("closing connection", "remote", c.remote, "api", kmsg.NameForKey(r.key), "reason", err)
			c.close()
			c.pending.Add(-1)
			continue // drain the queue; the socket is closed
		}
		c.s.metrics.observe(r.key, code, time.Since(r.start).Seconds())
		if resp == nil {
			c.pending.Add(-1)
			continue // acks=0 produce
		}
		if fr, ok := resp.(*fetchResponse); ok {
			f, err := encodeFetch(r, fr)
			if err != nil {
				c.s.logger.Error("closing connection", "remote", c.remote, "api", kmsg.NameForKey(r.key), "reason", err)
				c.close()
				c.pending.Add(-1)
				continue
			}
			out <- f
			continue
		}
		out <- outFrame{buf: encodeResponse(r, resp)}
	}
}

// encodeResponse frames resp: size, correlation id, response header tags
// for flexible versions (never for ApiVersions, whose header is always v0).
func encodeResponse(r *request, resp kmsg.Response) *[]byte {
	bp := getBuf()
	b := append((*bp)[:0], 0, 0, 0, 0)
	b = kbin.AppendInt32(b, r.corr)
	if resp.IsFlexible() && r.key != apiVersionsKey {
		b = append(b, 0)
	}
	b = resp.AppendTo(b)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	*bp = b
	return bp
}

// writeLoop writes responses, flushing whenever the queue is empty. After
// a write error it keeps draining so the handler never blocks.
func (c *conn) writeLoop(out <-chan outFrame) {
	bw := bufio.NewWriterSize(c.nc, 64<<10)
	var werr error
	for f := range out {
		if werr == nil {
			werr = c.writeFrame(bw, f)
			if werr == nil && len(out) == 0 {
				werr = bw.Flush()
			}
			if werr != nil {
				c.close()
			}
		}
		f.release()
		c.lastActive.Store(time.Now().UnixNano())
		c.pending.Add(-1)
	}
	if werr == nil {
		bw.Flush()
	}
}

// writeFrame writes one response: the encoded bytes, with the file ranges
// of its splices sent from their segment files in between.
func (c *conn) writeFrame(bw *bufio.Writer, f outFrame) error {
	b := *f.buf
	prev := 0
	for i := range f.splices {
		sp := &f.splices[i]
		if _, err := bw.Write(b[prev:sp.at]); err != nil {
			return err
		}
		if err := bw.Flush(); err != nil {
			return err
		}
		if err := sendFileRange(c.nc, sp.rng.File(), sp.rng.Pos, sp.rng.Size); err != nil {
			return fmt.Errorf("sending %d record bytes: %w", sp.rng.Size, err)
		}
		prev = sp.at
	}
	_, err := bw.Write(b[prev:])
	return err
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

func putBuf(bp *[]byte) {
	if cap(*bp) > 8<<20 {
		return // do not pin huge fetch buffers
	}
	bufPool.Put(bp)
}
