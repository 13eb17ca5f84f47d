package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

func init() { commands = append(commands, txnCmd) }

// txnStates are the transaction states Kafka's coordinator reports, in
// ListTransactions and DescribeTransactions, with their canonical spelling.
var txnStates = []string{
	"Empty", "Ongoing", "PrepareCommit", "PrepareAbort",
	"CompleteCommit", "CompleteAbort", "Dead", "PrepareEpochFence",
}

// timeLayout formats the millisecond timestamps the transaction APIs return.
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

func txnCmd(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "txn",
		Short: "List and describe transactions and the producers writing them",
	}
	c.AddCommand(txnListCmd(a), txnDescribeCmd(a), txnProducersCmd(a))
	return c
}

func txnListCmd(a *app) *cobra.Command {
	var (
		states []string
		pids   []int64
	)
	c := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List transactional ids with their state and producer id",
		Long: `list asks every broker's transaction coordinator for the transactional ids
it knows, optionally only those in the given states (--state, repeatable or
comma-separated, any case) or of the given producer ids (--producer-id).
States: ` + strings.Join(txnStates, ", ") + `.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			filter, err := parseTxnStates(states)
			if err != nil {
				return err
			}
			for _, p := range pids {
				if p < 0 {
					return fmt.Errorf("invalid --producer-id %d: must be >= 0", p)
				}
			}
			adm, err := a.admin()
			if err != nil {
				return err
			}
			defer adm.Close()
			txns, err := adm.ListTransactions(cmd.Context(), pids, filter)
			if err != nil {
				return fmt.Errorf("list transactions: %w", err)
			}
			tw := table(cmd.OutOrStdout())
			fmt.Fprintln(tw, "TRANSACTIONAL-ID\tCOORDINATOR\tPRODUCER-ID\tSTATE")
			for _, t := range txns.Sorted() {
				// Brokers before ListTransactions v1 ignore the state
				// filter, so it is applied here as well.
				if len(filter) > 0 && !slices.Contains(filter, t.State) {
					continue
				}
				fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", t.TxnID, t.Coordinator, t.ProducerID, orDash(t.State))
			}
			return tw.Flush()
		},
	}
	c.Flags().StringSliceVar(&states, "state", nil, "only transactions in this state (repeatable or comma-separated)")
	c.Flags().Int64SliceVar(&pids, "producer-id", nil, "only transactions of this producer id (repeatable or comma-separated)")
	return c
}

// parseTxnStates validates --state values case-insensitively and returns
// them in Kafka's spelling, which brokers match exactly.
func parseTxnStates(in []string) ([]string, error) {
	var out []string
	for _, s := range in {
		i := slices.IndexFunc(txnStates, func(k string) bool { return strings.EqualFold(k, strings.TrimSpace(s)) })
		if i < 0 {
			return nil, fmt.Errorf("invalid --state %q: want one of %s", s, strings.Join(txnStates, ", "))
		}
		if !slices.Contains(out, txnStates[i]) {
			out = append(out, txnStates[i])
		}
	}
	return out, nil
}

func txnDescribeCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "describe TXN_ID...",
		Short: "Show a transaction's coordinator, state, producer, timeout, start time and partitions",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			adm, err := a.admin()
			if err != nil {
				return err
			}
			defer adm.Close()
			txns, err := adm.DescribeTransactions(ctx, args...)
			if err != nil && len(txns) == 0 {
				return fmt.Errorf("describe transactions: %w", err)
			}
			firstErr := err
			if firstErr != nil {
				firstErr = fmt.Errorf("describe transactions: %w", err)
			}
			brokers := brokerAddrs(ctx, adm)
			out := cmd.OutOrStdout()
			printed, seen := 0, map[string]bool{}
			for _, id := range args {
				if seen[id] {
					continue
				}
				seen[id] = true
				t, ok := txns[id]
				switch {
				case !ok:
					firstErr = cmp(firstErr, fmt.Errorf("transaction %s: missing from response", id))
					continue
				case t.Err != nil:
					firstErr = cmp(firstErr, fmt.Errorf("transaction %s: %w", id, t.Err))
					continue
				}
				if printed > 0 {
					fmt.Fprintln(out)
				}
				printed++
				printTxn(out, t, brokers, time.Now())
			}
			return firstErr
		},
	}
}

// brokerAddrs maps node ids to host:port, best effort: on error the
// coordinator is shown by id alone.
func brokerAddrs(ctx context.Context, adm *kadm.Client) map[int32]string {
	m := map[int32]string{}
	bs, err := adm.BrokerMetadata(ctx)
	if err != nil {
		return m
	}
	for _, b := range bs.Brokers {
		m[b.NodeID] = fmt.Sprintf("%s:%d", b.Host, b.Port)
	}
	return m
}

func printTxn(out io.Writer, t kadm.DescribedTransaction, brokers map[int32]string, now time.Time) {
	coord := strconv.Itoa(int(t.Coordinator))
	if addr, ok := brokers[t.Coordinator]; ok {
		coord += " (" + addr + ")"
	}
	start, running := "-", "-"
	if t.StartTimestamp >= 0 {
		st := time.UnixMilli(t.StartTimestamp)
		start = st.UTC().Format(timeLayout)
		// A completed transaction keeps its start time, but its age is
		// only worth showing while it is open.
		switch t.State {
		case "Empty", "CompleteCommit", "CompleteAbort", "Dead":
		default:
			running = now.Sub(st).Truncate(time.Millisecond).String()
		}
	}
	fmt.Fprintf(out, "TRANSACTIONAL-ID  %s\n", t.TxnID)
	fmt.Fprintf(out, "COORDINATOR       %s\n", coord)
	fmt.Fprintf(out, "STATE             %s\n", orDash(t.State))
	fmt.Fprintf(out, "PRODUCER-ID       %d\n", t.ProducerID)
	fmt.Fprintf(out, "PRODUCER-EPOCH    %d\n", t.ProducerEpoch)
	fmt.Fprintf(out, "TIMEOUT           %s\n", time.Duration(t.TimeoutMillis)*time.Millisecond)
	fmt.Fprintf(out, "START-TIME        %s\n", start)
	fmt.Fprintf(out, "DURATION          %s\n", running)
	n := 0
	t.Topics.Each(func(string, int32) { n++ })
	fmt.Fprintf(out, "PARTITIONS        %d\n", n)
	if n == 0 {
		return
	}
	fmt.Fprintln(out)
	tw := table(out)
	fmt.Fprintln(tw, "TOPIC\tPARTITION")
	t.Topics.Sorted().Each(func(topic string, p int32) { fmt.Fprintf(tw, "%s\t%d\n", topic, p) })
	tw.Flush()
}

func txnProducersCmd(a *app) *cobra.Command {
	var partitions []int32
	c := &cobra.Command{
		Use:   "producers TOPIC [-p PARTITION]...",
		Short: "Show the producers with an open transaction on a topic's partitions",
		Long: `producers asks each partition leader of TOPIC (or only of the partitions
given with -p) for its active producers: those whose state the broker keeps,
which includes every producer with an open transaction on the partition.
A TXN-START-OFFSET other than "-" is the first offset of the producer's open
transaction there; the partition's last stable offset cannot pass it.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runTxnProducers(cmd.Context(), a, args[0], partitions, cmd.OutOrStdout())
		},
	}
	c.Flags().Int32SliceVarP(&partitions, "partition", "p", nil, "only this partition (repeatable or comma-separated)")
	return c
}

func runTxnProducers(ctx context.Context, a *app, topic string, partitions []int32, out io.Writer) error {
	adm, err := a.admin()
	if err != nil {
		return err
	}
	defer adm.Close()
	md, err := adm.Metadata(ctx, topic)
	if err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	td, ok := md.Topics[topic]
	switch {
	case !ok:
		return fmt.Errorf("topic %s: missing from metadata", topic)
	case td.Err != nil:
		return fmt.Errorf("topic %s: %w", topic, td.Err)
	}
	var set kadm.TopicsSet
	if len(partitions) == 0 {
		for p := range td.Partitions {
			set.Add(topic, p)
		}
	}
	for _, p := range partitions {
		if _, ok := td.Partitions[p]; !ok {
			return fmt.Errorf("topic %s partition %d: %w", topic, p, kerr.UnknownTopicOrPartition)
		}
		set.Add(topic, p)
	}
	if len(set) == 0 { // a topic without partitions: nothing to ask
		set.Add(topic)
	}
	described, err := adm.DescribeProducers(ctx, set)
	if err != nil {
		return fmt.Errorf("describe producers: %w", err)
	}
	var firstErr error
	tw := table(out)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tLEADER\tPRODUCER-ID\tEPOCH\tLAST-SEQUENCE\tLAST-TIMESTAMP\tCOORDINATOR-EPOCH\tTXN-START-OFFSET")
	for _, dp := range described.SortedPartitions() {
		if dp.Err != nil {
			firstErr = cmp(firstErr, fmt.Errorf("topic %s partition %d: %w%s", dp.Topic, dp.Partition, dp.Err, errMessage(dp.ErrMessage)))
			continue
		}
		for _, p := range dp.ActiveProducers.Sorted() {
			last := "-"
			if p.LastTimestamp >= 0 {
				last = time.UnixMilli(p.LastTimestamp).UTC().Format(timeLayout)
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\n", p.Topic, p.Partition, p.Leader, p.ProducerID, p.ProducerEpoch,
				dashIfNegative(int64(p.LastSequence)), last, dashIfNegative(int64(p.CoordinatorEpoch)), dashIfNegative(p.CurrentTxnStartOffset))
		}
	}
	for _, p := range set.Sorted() {
		for _, part := range p.Partitions {
			if _, ok := described[topic].Partitions[part]; !ok {
				firstErr = cmp(firstErr, fmt.Errorf("topic %s partition %d: missing from response", topic, part))
			}
		}
	}
	return cmp(tw.Flush(), firstErr)
}

// dashIfNegative formats v, or "-" for the -1 (or any negative) that Kafka
// uses for "none".
func dashIfNegative(v int64) string {
	if v < 0 {
		return "-"
	}
	return strconv.FormatInt(v, 10)
}
