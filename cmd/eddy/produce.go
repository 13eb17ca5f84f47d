package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"
)

func init() { commands = append(commands, produceCmd) }

func produceCmd(a *app) *cobra.Command {
	var (
		keyDelim    string
		partition   int32
		acks        string
		compression string
		headers     []string
		maxLine     int
	)
	c := &cobra.Command{
		Use:   "produce TOPIC",
		Short: "Produce one record per line of stdin",
		Long: `Produce reads stdin line by line and sends one record per line to TOPIC.
With --key-delim, each line is split at the first occurrence of the delimiter
into key and value; a line without the delimiter has a null key. Records are
sent asynchronously in batches; the command waits for every acknowledgement and
reports the count on stderr.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			hdrs, err := parseHeaders(headers)
			if err != nil {
				return err
			}
			opts, err := producerOpts(acks, compression)
			if err != nil {
				return err
			}
			// Like kcat, ask the broker to auto-create a missing topic (it only
			// does when its auto.create.topics.enable is on).
			opts = append(opts, kgo.DefaultProduceTopic(args[0]), kgo.MaxBufferedRecords(100_000), kgo.AllowAutoTopicCreation())
			if partition >= 0 {
				opts = append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
			}
			cl, err := a.client(opts...)
			if err != nil {
				return err
			}
			defer cl.Close()
			return produceLines(cmd.Context(), cl, cmd.InOrStdin(), cmd.ErrOrStderr(), produceSpec{
				topic: args[0], keyDelim: []byte(keyDelim), partition: partition, headers: hdrs, maxLine: maxLine,
			})
		},
	}
	c.Flags().StringVarP(&keyDelim, "key-delim", "K", "", "split each line into key and value at the first occurrence of this delimiter")
	c.Flags().Int32Var(&partition, "partition", -1, "produce every record to this partition (-1: the default key-hash/sticky partitioner)")
	c.Flags().StringVar(&acks, "acks", "all", "required acks: all (-1), 1 or 0")
	c.Flags().StringVarP(&compression, "compression", "z", "none", "batch compression: none, gzip, snappy, lz4, zstd")
	c.Flags().StringArrayVarP(&headers, "header", "H", nil, "add header key=value to every record (repeatable)")
	c.Flags().IntVar(&maxLine, "max-line-bytes", 1<<20, "longest accepted input line (records are limited by the topic's max.message.bytes too)")
	return c
}

type produceSpec struct {
	topic     string
	keyDelim  []byte
	partition int32
	headers   []kgo.RecordHeader
	maxLine   int
}

// produceLines sends one record per line of in and reports on errw.
func produceLines(ctx context.Context, cl *kgo.Client, in io.Reader, errw io.Writer, s produceSpec) error {
	var (
		acked    atomic.Int64
		errMu    sync.Mutex
		firstErr error
		failed   atomic.Int64
	)
	prog := startProgress(errw, "produced")
	defer prog.stop()
	start := time.Now()
	promise := func(r *kgo.Record, err error) {
		if err != nil {
			failed.Add(1)
			errMu.Lock()
			if firstErr == nil {
				firstErr = err
			}
			errMu.Unlock()
			return
		}
		acked.Add(1)
		prog.add(1, int64(len(r.Key)+len(r.Value)))
	}
	lines, readErrc, stopReading := readLines(in, s.maxLine)
	defer stopReading()
	var readErr error
	interrupted := false
loop:
	for {
		select {
		case <-ctx.Done():
			interrupted = true
			break loop
		case line, ok := <-lines:
			if !ok {
				readErr = <-readErrc
				break loop
			}
			r := &kgo.Record{Topic: s.topic, Value: line, Headers: s.headers}
			if s.partition >= 0 {
				r.Partition = s.partition
			}
			if len(s.keyDelim) > 0 {
				if k, v, ok := bytes.Cut(line, s.keyDelim); ok {
					r.Key, r.Value = k, v
				}
			}
			// Records are not tied to ctx: on interrupt, what was read is
			// still delivered by the bounded flush below.
			cl.Produce(context.Background(), r, promise)
		}
	}
	flushCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	flushErr := cl.Flush(flushCtx)
	prog.stop()
	el := time.Since(start)
	fmt.Fprintf(errw, "produced %d records to %s in %s", acked.Load(), s.topic, el.Round(time.Millisecond))
	if n := failed.Load(); n > 0 {
		fmt.Fprintf(errw, " (%d failed)", n)
	}
	fmt.Fprintln(errw)
	switch {
	case readErr != nil:
		return fmt.Errorf("reading stdin: %w", readErr)
	case firstErr != nil:
		return fmt.Errorf("produce: %w", firstErr)
	case flushErr != nil:
		return fmt.Errorf("flush: %w", flushErr)
	}
	if interrupted {
		fmt.Fprintln(errw, "interrupted")
	}
	return nil
}

// readLines reads lines from in on a goroutine and delivers them on the
// returned channel, which is closed at end of input; the read error (nil at
// clean EOF) is then sent on errc. stop asks the reader to quit after its
// current read; a reader blocked on a terminal read ends with the process.
func readLines(in io.Reader, max int) (lines <-chan []byte, errc <-chan error, stop func()) {
	out := make(chan []byte, 1024)
	ec := make(chan error, 1)
	quit := make(chan struct{})
	go func() {
		defer close(out)
		br := bufio.NewReaderSize(in, 1<<20)
		for {
			line, err := readLine(br, max)
			if len(line) > 0 || err == nil {
				select {
				case out <- line:
				case <-quit:
					ec <- nil
					return
				}
			}
			if err != nil {
				if errors.Is(err, io.EOF) {
					err = nil
				}
				ec <- err
				return
			}
		}
	}()
	var once sync.Once
	return out, ec, func() { once.Do(func() { close(quit) }) }
}

// readLine returns the next line without its "\n" or "\r\n" terminator, as a
// fresh slice. At end of input it returns the final unterminated line (if
// any) with io.EOF.
func readLine(br *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		frag, err := br.ReadSlice('\n')
		line = append(line, frag...)
		if len(line) > max {
			return nil, fmt.Errorf("line longer than %d bytes (raise --max-line-bytes)", max)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err == nil {
			line = bytes.TrimSuffix(line[:len(line)-1], []byte{'\r'})
		}
		return line, err
	}
}

// parseHeaders parses repeated --header k=v flags.
func parseHeaders(hs []string) ([]kgo.RecordHeader, error) {
	var out []kgo.RecordHeader
	for _, h := range hs {
		k, v, ok := bytes.Cut([]byte(h), []byte("="))
		if !ok || len(k) == 0 {
			return nil, fmt.Errorf("invalid --header %q: want key=value", h)
		}
		out = append(out, kgo.RecordHeader{Key: string(k), Value: v})
	}
	return out, nil
}
