package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func init() { commands = append(commands, consumeCmd) }

// offsetSpec is a parsed --offset value.
type offsetSpec struct {
	kind byte  // 's' start, 'e' end, 'a' absolute, 'r' relative to end, 't' timestamp
	n    int64 // absolute offset, count back from end, or timestamp ms
}

// parseOffset parses start|beginning|end|N|-N|@timestamp-ms.
func parseOffset(s string) (offsetSpec, error) {
	switch s {
	case "start", "beginning", "earliest", "oldest":
		return offsetSpec{kind: 's'}, nil
	case "end", "latest", "newest":
		return offsetSpec{kind: 'e'}, nil
	}
	if ts, ok := strings.CutPrefix(s, "@"); ok {
		n, err := strconv.ParseInt(ts, 10, 64)
		if err != nil || n < 0 {
			return offsetSpec{}, fmt.Errorf("invalid --offset %q: @ needs a Unix timestamp in milliseconds", s)
		}
		return offsetSpec{kind: 't', n: n}, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return offsetSpec{}, fmt.Errorf("invalid --offset %q: want start, end, N, -N or @timestamp-ms", s)
	}
	if n < 0 {
		return offsetSpec{kind: 'r', n: -n}, nil
	}
	return offsetSpec{kind: 'a', n: n}, nil
}

// kgoOffset converts the spec into a franz-go consume offset.
func (o offsetSpec) kgoOffset() kgo.Offset {
	switch o.kind {
	case 'e':
		return kgo.NewOffset().AtEnd()
	case 'a':
		return kgo.NewOffset().At(o.n)
	case 'r':
		return kgo.NewOffset().AtEnd().Relative(-o.n)
	case 't':
		return kgo.NewOffset().AfterMilli(o.n)
	default:
		return kgo.NewOffset().AtStart()
	}
}

// resolve computes the concrete starting offset of one partition given its
// log start and end offsets and, for timestamps, the listed offset.
func (o offsetSpec) resolve(start, end int64, byTime kadm.ListedOffsets, topic string, p int32) int64 {
	switch o.kind {
	case 'e':
		return end
	case 'a':
		return min(max(o.n, start), end)
	case 'r':
		return max(end-o.n, start)
	case 't':
		if lo, ok := byTime.Lookup(topic, p); ok && lo.Err == nil && lo.Offset >= 0 {
			return lo.Offset
		}
		return end
	default:
		return start
	}
}

type consumeOpts struct {
	topic         string
	offset        string
	count         int64
	group         string
	format        string
	readCommitted bool
	partition     int32
	exitAtEnd     bool
	keyFormat     string
	valueFormat   string
	registry      string
}

func consumeCmd(a *app) *cobra.Command {
	var o consumeOpts
	c := &cobra.Command{
		Use:   "consume TOPIC",
		Short: "Consume records and print them with a kcat-like format",
		Long: `Consume prints records of TOPIC to stdout, formatted by --format.

--offset picks where to start: start, end, an absolute offset N, -N (N records
before the end of each partition) or @T (the first record with timestamp >= T,
Unix milliseconds). With --group, the group's committed offsets win and
--offset only applies to partitions without one; consumed records are
committed. The command runs until --count records are printed, until the end
of every partition as of start-up is reached (--exit-at-end), or SIGINT.

Format verbs: %k key, %v value, %p partition, %o offset, %t topic,
%T timestamp (Unix ms), %h headers (k=v,k=v), %K key length, %S value length,
%% a percent sign; escapes \n \t \r \\.

--key-format and --value-format decode what %k and %v print: raw (the bytes
as they are, the default), json (validated, printed compact on one line),
msgpack (printed as JSON), avro (the Confluent wire format: the writer
schema is fetched by id from the schema registry at --registry, once per id,
and the datum is printed as JSON), string (printed as a JSON string), int64,
int32, float64 (Kafka's big-endian serializer layouts, printed as JSON
numbers). Except with raw, a null key or value prints as null. A key or
value that cannot be decoded (for avro: a wrong magic byte, an unknown
schema id, truncated data) prints as "!decode error: <reason>" and the
command goes on; the number of such records is reported on stderr.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.topic = args[0]
			return runConsume(cmd.Context(), a, o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	c.Flags().StringVarP(&o.offset, "offset", "o", "start", "start offset: start, end, N, -N or @timestamp-ms")
	c.Flags().Int64VarP(&o.count, "count", "c", 0, "exit after this many records (0: no limit)")
	c.Flags().StringVarP(&o.group, "group", "G", "", "consume as a member of this consumer group and commit offsets")
	c.Flags().StringVarP(&o.format, "format", "f", `%v\n`, "output format (kcat-like, see above)")
	c.Flags().BoolVar(&o.readCommitted, "read-committed", false, "only read committed transactional records")
	c.Flags().Int32VarP(&o.partition, "partition", "p", -1, "consume only this partition (-1: all; not with --group)")
	c.Flags().BoolVarP(&o.exitAtEnd, "exit-at-end", "e", false, "exit once the end of every partition (as of start-up) is reached")
	c.Flags().StringVar(&o.keyFormat, "key-format", "raw", "decode keys for %k: "+dataFormats)
	c.Flags().StringVar(&o.valueFormat, "value-format", "raw", "decode values for %v: "+dataFormats)
	registryURLFlag(c.Flags(), &o.registry)
	return c
}

func runConsume(ctx context.Context, a *app, o consumeOpts, out, errw io.Writer) error {
	spec, err := parseOffset(o.offset)
	if err != nil {
		return err
	}
	format, err := parseFormat(o.format)
	if err != nil {
		return err
	}
	keyDec, err := parseDataFormat("key-format", o.keyFormat, o.registry)
	if err != nil {
		return err
	}
	valueDec, err := parseDataFormat("value-format", o.valueFormat, o.registry)
	if err != nil {
		return err
	}
	if o.group != "" && o.partition >= 0 {
		return errors.New("--partition cannot be combined with --group")
	}
	if o.count < 0 {
		return errors.New("--count must be >= 0")
	}
	opts := []kgo.Opt{kgo.KeepControlRecords()}
	if o.readCommitted {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	switch {
	case o.group != "":
		opts = append(opts, kgo.ConsumerGroup(o.group), kgo.ConsumeTopics(o.topic),
			kgo.ConsumeResetOffset(spec.kgoOffset()), kgo.AutoCommitMarks())
	case o.partition >= 0:
		opts = append(opts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{o.topic: {o.partition: spec.kgoOffset()}}))
	default:
		opts = append(opts, kgo.ConsumeTopics(o.topic), kgo.ConsumeResetOffset(spec.kgoOffset()))
	}

	// With --exit-at-end, snapshot every partition's end and where reading
	// starts; a partition is done once its position reaches its end.
	// Records at or past a partition's end are not printed.
	var (
		ends      map[int32]int64 // partition → end offset as of start-up
		remaining map[int32]bool  // partitions whose end is not reached yet
		positions map[int32]int64 // partition → next offset to read
	)
	if o.exitAtEnd {
		ends, positions, err = endTargets(ctx, a, o, spec)
		if err != nil {
			return err
		}
		remaining = map[int32]bool{}
		for p, end := range ends {
			if positions[p] < end {
				remaining[p] = true
			}
		}
		if len(remaining) == 0 {
			return nil
		}
	}

	cl, err := a.client(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()

	prog := startProgress(errw, "consumed")
	defer prog.stop()
	bw := bufio.NewWriterSize(out, 64<<10)
	var (
		printed int64
		failed  int64 // records whose key or value could not be decoded
		buf     []byte
		runErr  error
		keyText []byte // decoded key / value, with the decoders
		valText []byte
	)
poll:
	for {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			break
		}
		if fetches.IsClientClosed() {
			break
		}
		for _, fe := range fetches.Errors() {
			if errors.Is(fe.Err, context.Canceled) {
				break poll
			}
			runErr = fmt.Errorf("fetch %s[%d]: %w", fe.Topic, fe.Partition, fe.Err)
			break poll
		}
		for it := fetches.RecordIter(); !it.Done(); {
			r := it.Next()
			if ends != nil {
				if end, ok := ends[r.Partition]; !ok || r.Offset >= end {
					continue
				}
				positions[r.Partition] = r.Offset + 1
			}
			if !r.Attrs.IsControl() {
				if keyDec == nil && valueDec == nil {
					buf = format.append(buf[:0], r)
				} else {
					var kerr, verr error
					keyText, kerr = decodeText(keyDec, keyText[:0], r.Topic, r.Key)
					valText, verr = decodeText(valueDec, valText[:0], r.Topic, r.Value)
					if kerr != nil || verr != nil {
						failed++
					}
					buf = format.appendKV(buf[:0], r, keyText, valText)
				}
				if _, err := bw.Write(buf); err != nil {
					runErr = fmt.Errorf("write: %w", err)
					break poll
				}
				printed++
				prog.add(1, int64(len(r.Key)+len(r.Value)))
			}
			if o.group != "" {
				cl.MarkCommitRecords(r)
			}
			if o.count > 0 && printed >= o.count {
				break poll
			}
		}
		if err := bw.Flush(); err != nil {
			runErr = fmt.Errorf("write: %w", err)
			break
		}
		if remaining != nil {
			for p := range remaining {
				if positions[p] >= ends[p] {
					delete(remaining, p)
				}
			}
			if len(remaining) == 0 {
				break
			}
		}
	}
	if err := bw.Flush(); err != nil && runErr == nil {
		runErr = fmt.Errorf("write: %w", err)
	}
	prog.stop()
	if failed > 0 {
		fmt.Fprintf(errw, "%d of %d records could not be decoded (printed with %q)\n", failed, printed, decodeMarker+"…")
	}
	if o.group != "" {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := cl.CommitMarkedOffsets(cctx); err != nil && runErr == nil {
			runErr = fmt.Errorf("commit offsets: %w", err)
		}
		cl.LeaveGroupContext(cctx) //nolint:errcheck // best effort: the session times out otherwise
	}
	return runErr
}

// endTargets lists, for each partition to read, the end offset to reach
// (high watermark, or last stable offset with --read-committed) and the
// offset reading starts from.
func endTargets(ctx context.Context, a *app, o consumeOpts, spec offsetSpec) (ends, positions map[int32]int64, err error) {
	adm, err := a.admin()
	if err != nil {
		return nil, nil, err
	}
	defer adm.Close()
	starts, err := adm.ListStartOffsets(ctx, o.topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, nil, fmt.Errorf("list start offsets of %s: %w", o.topic, err)
	}
	listEnd := adm.ListEndOffsets
	if o.readCommitted {
		listEnd = adm.ListCommittedOffsets
	}
	listed, err := listEnd(ctx, o.topic)
	if err == nil {
		err = listed.Error()
	}
	if err != nil {
		return nil, nil, fmt.Errorf("list end offsets of %s: %w", o.topic, err)
	}
	var byTime kadm.ListedOffsets
	if spec.kind == 't' {
		if byTime, err = adm.ListOffsetsAfterMilli(ctx, spec.n, o.topic); err != nil {
			return nil, nil, fmt.Errorf("list offsets by time of %s: %w", o.topic, err)
		}
	}
	var committed kadm.OffsetResponses
	if o.group != "" {
		if committed, err = adm.FetchOffsets(ctx, o.group); err != nil {
			return nil, nil, fmt.Errorf("fetch committed offsets of group %s: %w", o.group, err)
		}
	}
	ends, positions = map[int32]int64{}, map[int32]int64{}
	found := false
	listed.Each(func(e kadm.ListedOffset) {
		if o.partition >= 0 && e.Partition != o.partition {
			return
		}
		found = true
		s, _ := starts.Lookup(o.topic, e.Partition)
		pos := spec.resolve(s.Offset, e.Offset, byTime, o.topic, e.Partition)
		if c, ok := committed.Lookup(o.topic, e.Partition); ok && c.Err == nil && c.At >= 0 {
			pos = c.At
		}
		ends[e.Partition] = e.Offset
		positions[e.Partition] = pos
	})
	if !found {
		return nil, nil, fmt.Errorf("topic %s: no such partition", o.topic)
	}
	return ends, positions, nil
}

// decodeText appends the text of a key or value b onto dst: b as it is
// when dec is nil (raw), its decoded form, or the decode error marker.
// It returns the decode error, if any, for counting.
func decodeText(dec dataDecoder, dst []byte, topic string, b []byte) ([]byte, error) {
	if dec == nil {
		return append(dst, b...), nil
	}
	out, err := dec(dst, topic, b)
	if err != nil {
		// One line per record: a message never spans lines.
		msg := strings.ReplaceAll(err.Error(), "\n", " ")
		return append(append(dst, decodeMarker...), msg...), err
	}
	return out, nil
}
