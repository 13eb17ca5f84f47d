package main

import (
	"context"
	"errors"
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

func init() { commands = append(commands, groupCmd) }

func groupCmd(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "group",
		Short: "List, describe, delete consumer groups and reset their offsets",
	}
	c.AddCommand(groupListCmd(a), groupDescribeCmd(a), groupDeleteCmd(a), groupResetCmd(a))
	return c
}

func groupListCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List consumer groups",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			adm, err := a.admin()
			if err != nil {
				return err
			}
			defer adm.Close()
			groups, err := adm.ListGroups(cmd.Context())
			if err != nil {
				return fmt.Errorf("list groups: %w", err)
			}
			tw := table(cmd.OutOrStdout())
			fmt.Fprintln(tw, "GROUP\tSTATE\tPROTOCOL-TYPE\tCOORDINATOR")
			for _, g := range groups.Sorted() {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", g.Group, orDash(g.State), orDash(g.ProtocolType), g.Coordinator)
			}
			return tw.Flush()
		},
	}
}

func groupDescribeCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "describe GROUP...",
		Short: "Show a group's state, members, assignments, committed offsets and lag",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			adm, err := a.admin()
			if err != nil {
				return err
			}
			defer adm.Close()
			lags, err := adm.Lag(cmd.Context(), args...)
			if err != nil {
				return fmt.Errorf("describe groups: %w", err)
			}
			out := cmd.OutOrStdout()
			for i, g := range args {
				if i > 0 {
					fmt.Fprintln(out)
				}
				l, ok := lags[g]
				if !ok {
					return fmt.Errorf("group %s: missing from response", g)
				}
				if err := l.Error(); err != nil {
					return fmt.Errorf("group %s: %w", g, err)
				}
				// Brokers before DescribeGroups v6 describe an unknown group
				// as Dead with no error.
				if l.State == "Dead" && len(l.Members) == 0 && len(l.Lag) == 0 {
					return fmt.Errorf("group %s: %w", g, kerr.GroupIDNotFound)
				}
				printGroupLag(out, l)
			}
			return nil
		},
	}
}

func printGroupLag(out io.Writer, l kadm.DescribedGroupLag) {
	fmt.Fprintf(out, "GROUP        %s\n", l.Group)
	fmt.Fprintf(out, "COORDINATOR  %d (%s:%d)\n", l.Coordinator.NodeID, l.Coordinator.Host, l.Coordinator.Port)
	fmt.Fprintf(out, "STATE        %s\n", l.State)
	fmt.Fprintf(out, "PROTOCOL     %s/%s\n", orDash(l.ProtocolType), orDash(l.Protocol))
	fmt.Fprintf(out, "MEMBERS      %d\n", len(l.Members))
	fmt.Fprintf(out, "TOTAL-LAG    %d\n", l.Lag.Total())
	if len(l.Members) > 0 {
		fmt.Fprintln(out, "\nMEMBERS")
		tw := table(out)
		fmt.Fprintln(tw, "MEMBER-ID\tINSTANCE-ID\tCLIENT-ID\tHOST\tASSIGNMENTS")
		for _, m := range l.Members {
			inst := "-"
			if m.InstanceID != nil {
				inst = *m.InstanceID
			}
			var parts []string
			if ca, ok := m.Assigned.AsConsumer(); ok {
				for _, t := range ca.Topics {
					ps := slices.Clone(t.Partitions)
					slices.Sort(ps)
					parts = append(parts, fmt.Sprintf("%s%v", t.Topic, ps))
				}
			}
			slices.Sort(parts)
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", m.MemberID, inst, m.ClientID, m.ClientHost, orDash(strings.Join(parts, " ")))
		}
		tw.Flush()
	}
	fmt.Fprintln(out, "\nOFFSETS")
	tw := table(out)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tCURRENT-OFFSET\tLOG-START-OFFSET\tLOG-END-OFFSET\tLAG\tMEMBER-ID\tCLIENT-ID\tHOST")
	for _, p := range l.Lag.Sorted() {
		cur := "-"
		if p.Commit.At >= 0 {
			cur = strconv.FormatInt(p.Commit.At, 10)
		}
		start, end := "-", "-"
		if p.Start.Err == nil {
			start = strconv.FormatInt(p.Start.Offset, 10)
		}
		if p.End.Err == nil {
			end = strconv.FormatInt(p.End.Offset, 10)
		}
		lag := "-"
		if p.Lag >= 0 {
			lag = strconv.FormatInt(p.Lag, 10)
		}
		mid, cid, host := "-", "-", "-"
		if p.Member != nil {
			mid, cid, host = p.Member.MemberID, p.Member.ClientID, p.Member.ClientHost
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Topic, p.Partition, cur, start, end, lag, mid, cid, host)
	}
	tw.Flush()
}

func groupDeleteCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "delete GROUP...",
		Short: "Delete consumer groups (they must have no active members)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			adm, err := a.admin()
			if err != nil {
				return err
			}
			defer adm.Close()
			resps, err := adm.DeleteGroups(cmd.Context(), args...)
			if err != nil {
				return fmt.Errorf("delete groups: %w", err)
			}
			var firstErr error
			for _, g := range args {
				r, ok := resps[g]
				switch {
				case !ok:
					firstErr = cmp(firstErr, fmt.Errorf("group %s: missing from response", g))
				case r.Err != nil:
					firstErr = cmp(firstErr, fmt.Errorf("group %s: %w", g, r.Err))
				default:
					fmt.Fprintf(cmd.OutOrStdout(), "deleted group %s\n", g)
				}
			}
			return firstErr
		},
	}
}

type resetOpts struct {
	topics     []string
	toEarliest bool
	toLatest   bool
	toOffset   int64
	toDatetime string
	shiftBy    int64
	execute    bool
	changed    func(string) bool
}

func groupResetCmd(a *app) *cobra.Command {
	var o resetOpts
	c := &cobra.Command{
		Use:   "reset-offsets GROUP --topic T[:P,P...] (--to-earliest|--to-latest|--to-offset N|--to-datetime TS|--shift-by N) [--execute]",
		Short: "Reset a group's committed offsets (dry run unless --execute)",
		Long: `reset-offsets computes new committed offsets for GROUP on the given topics
(all partitions, or the listed ones with T:0,1,2) and prints them. Nothing is
changed unless --execute is given. The group must have no active members.
New offsets are clamped to each partition's [log start, log end].
--to-datetime takes RFC 3339 (2026-01-02T15:04:05Z), a local
2006-01-02T15:04:05[.000] time, or Unix milliseconds.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.changed = cmd.Flags().Changed
			return runReset(cmd.Context(), a, args[0], o, cmd.OutOrStdout())
		},
	}
	f := c.Flags()
	f.StringArrayVar(&o.topics, "topic", nil, "topic to reset, optionally with partitions: T or T:0,1 (repeatable)")
	f.BoolVar(&o.toEarliest, "to-earliest", false, "reset to the log start offset")
	f.BoolVar(&o.toLatest, "to-latest", false, "reset to the log end offset")
	f.Int64Var(&o.toOffset, "to-offset", 0, "reset to this offset")
	f.StringVar(&o.toDatetime, "to-datetime", "", "reset to the first offset with timestamp >= this time")
	f.Int64Var(&o.shiftBy, "shift-by", 0, "move the committed offset by N (negative: back)")
	f.BoolVar(&o.execute, "execute", false, "commit the new offsets (default: dry run)")
	return c
}

func runReset(ctx context.Context, a *app, group string, o resetOpts, out io.Writer) error {
	if len(o.topics) == 0 {
		return errors.New("--topic is required")
	}
	n := 0
	for _, f := range []string{"to-earliest", "to-latest", "to-offset", "to-datetime", "shift-by"} {
		if o.changed(f) {
			n++
		}
	}
	if n != 1 {
		return errors.New("give exactly one of --to-earliest, --to-latest, --to-offset, --to-datetime, --shift-by")
	}
	var tsMillis int64
	if o.changed("to-datetime") {
		t, err := parseDatetime(o.toDatetime)
		if err != nil {
			return err
		}
		tsMillis = t.UnixMilli()
	}
	want := map[string][]int32{} // topic → explicit partitions (nil: all)
	var names []string
	for _, t := range o.topics {
		name, ps, hasParts := strings.Cut(t, ":")
		if name == "" {
			return fmt.Errorf("invalid --topic %q", t)
		}
		names = append(names, name)
		if !hasParts {
			want[name] = nil
			continue
		}
		for p := range strings.SplitSeq(ps, ",") {
			v, err := strconv.ParseInt(p, 10, 32)
			if err != nil || v < 0 {
				return fmt.Errorf("invalid partition %q in --topic %q", p, t)
			}
			want[name] = append(want[name], int32(v))
		}
	}

	adm, err := a.admin()
	if err != nil {
		return err
	}
	defer adm.Close()
	desc, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return fmt.Errorf("describe group %s: %w", group, err)
	}
	if d, ok := desc[group]; ok && d.Err == nil && d.State != "Empty" && d.State != "Dead" && d.State != "" {
		return fmt.Errorf("group %s is %s with %d members: stop its consumers before resetting offsets", group, d.State, len(d.Members))
	}
	starts, err := adm.ListStartOffsets(ctx, names...)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return fmt.Errorf("list start offsets: %w", err)
	}
	ends, err := adm.ListEndOffsets(ctx, names...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Errorf("list end offsets: %w", err)
	}
	var byTime kadm.ListedOffsets
	if o.changed("to-datetime") {
		if byTime, err = adm.ListOffsetsAfterMilli(ctx, tsMillis, names...); err != nil {
			return fmt.Errorf("list offsets by time: %w", err)
		}
	}
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return fmt.Errorf("fetch offsets of group %s: %w", group, err)
	}

	next := kadm.Offsets{}
	tw := table(out)
	fmt.Fprintln(tw, "GROUP\tTOPIC\tPARTITION\tCURRENT-OFFSET\tNEW-OFFSET")
	for _, name := range slices.Compact(slices.Sorted(slices.Values(names))) {
		parts := want[name]
		if parts == nil {
			ends.Each(func(e kadm.ListedOffset) {
				if e.Topic == name {
					parts = append(parts, e.Partition)
				}
			})
		}
		slices.Sort(parts)
		for _, p := range slices.Compact(parts) {
			s, okS := starts.Lookup(name, p)
			e, okE := ends.Lookup(name, p)
			if !okS || !okE {
				return fmt.Errorf("topic %s has no partition %d", name, p)
			}
			cur := int64(-1)
			if c, ok := committed.Lookup(name, p); ok && c.Err == nil {
				cur = c.At
			}
			var to int64
			switch {
			case o.toEarliest:
				to = s.Offset
			case o.toLatest:
				to = e.Offset
			case o.changed("to-offset"):
				to = o.toOffset
			case o.changed("to-datetime"):
				to = e.Offset
				if bt, ok := byTime.Lookup(name, p); ok && bt.Err == nil && bt.Offset >= 0 {
					to = bt.Offset
				}
			case o.changed("shift-by"):
				base := cur
				if base < 0 {
					base = e.Offset // no commit: shift from the end, like Kafka's tool with auto.offset.reset=latest
				}
				to = base + o.shiftBy
			}
			to = min(max(to, s.Offset), e.Offset)
			curS := "-"
			if cur >= 0 {
				curS = strconv.FormatInt(cur, 10)
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\n", group, name, p, curS, to)
			next.Add(kadm.Offset{Topic: name, Partition: p, At: to, LeaderEpoch: -1})
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if !o.execute {
		fmt.Fprintln(out, "dry run: nothing changed; add --execute to commit these offsets")
		return nil
	}
	if err := adm.CommitAllOffsets(ctx, group, next); err != nil {
		return fmt.Errorf("commit offsets of group %s: %w", group, err)
	}
	fmt.Fprintf(out, "committed new offsets for group %s\n", group)
	return nil
}

// parseDatetime accepts RFC 3339, a local "2006-01-02T15:04:05[.000]" time
// (as Kafka's tool does) or Unix milliseconds.
func parseDatetime(s string) (time.Time, error) {
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.UnixMilli(ms), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02T15:04:05.000", "2006-01-02T15:04:05", "2006-01-02 15:04:05"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("invalid --to-datetime %q: want RFC 3339, 2006-01-02T15:04:05[.000] or Unix ms", s)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
