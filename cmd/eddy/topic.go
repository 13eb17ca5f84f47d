package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { commands = append(commands, topicCmd) }

func topicCmd(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "topic",
		Short: "Create, list, describe, delete and configure topics",
	}
	c.AddCommand(topicCreateCmd(a), topicListCmd(a), topicDescribeCmd(a), topicDeleteCmd(a), topicAlterConfigCmd(a))
	return c
}

func topicCreateCmd(a *app) *cobra.Command {
	var (
		partitions  int32
		replication int16
		configs     []string
	)
	c := &cobra.Command{
		Use:   "create NAME...",
		Short: "Create topics",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := parseKV(configs, "--config")
			if err != nil {
				return err
			}
			ptrs := make(map[string]*string, len(cfg))
			for k, v := range cfg {
				ptrs[k] = &v
			}
			adm, err := a.admin()
			if err != nil {
				return err
			}
			defer adm.Close()
			resps, err := adm.CreateTopics(cmd.Context(), partitions, replication, ptrs, args...)
			if err != nil {
				return fmt.Errorf("create topics: %w", err)
			}
			var firstErr error
			for _, name := range args {
				r, ok := resps[name]
				switch {
				case !ok:
					firstErr = cmp(firstErr, fmt.Errorf("topic %s: missing from response", name))
				case r.Err != nil:
					firstErr = cmp(firstErr, fmt.Errorf("topic %s: %w%s", name, r.Err, errMessage(r.ErrMessage)))
				default:
					fmt.Fprintf(cmd.OutOrStdout(), "created topic %s (%d partitions)\n", name, r.NumPartitions)
				}
			}
			return firstErr
		},
	}
	c.Flags().Int32VarP(&partitions, "partitions", "p", 1, "number of partitions (-1: broker default)")
	c.Flags().Int16VarP(&replication, "replication-factor", "r", -1, "replication factor (-1: broker default)")
	c.Flags().StringArrayVarP(&configs, "config", "c", nil, "topic config key=value (repeatable), e.g. -c cleanup.policy=compact")
	return c
}

func topicListCmd(a *app) *cobra.Command {
	var internal bool
	c := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List topics",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			adm, err := a.admin()
			if err != nil {
				return err
			}
			defer adm.Close()
			list := adm.ListTopics
			if internal {
				list = adm.ListTopicsWithInternal
			}
			topics, err := list(cmd.Context())
			if err != nil {
				return fmt.Errorf("list topics: %w", err)
			}
			tw := table(cmd.OutOrStdout())
			fmt.Fprintln(tw, "NAME\tPARTITIONS\tREPLICAS")
			for _, t := range topics.Sorted() {
				if t.Err != nil {
					fmt.Fprintf(tw, "%s\terror: %v\t\n", t.Topic, t.Err)
					continue
				}
				fmt.Fprintf(tw, "%s\t%d\t%d\n", t.Topic, len(t.Partitions), t.Partitions.NumReplicas())
			}
			return tw.Flush()
		},
	}
	c.Flags().BoolVar(&internal, "internal", false, "include internal topics such as __consumer_offsets")
	return c
}

func topicDescribeCmd(a *app) *cobra.Command {
	var all bool
	c := &cobra.Command{
		Use:   "describe NAME...",
		Short: "Show a topic's partitions, offsets and configs",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			adm, err := a.admin()
			if err != nil {
				return err
			}
			defer adm.Close()
			ctx := cmd.Context()
			md, err := adm.ListTopicsWithInternal(ctx, args...)
			if err != nil {
				return fmt.Errorf("metadata: %w", err)
			}
			starts, err := adm.ListStartOffsets(ctx, args...)
			if err != nil {
				return fmt.Errorf("list start offsets: %w", err)
			}
			ends, err := adm.ListEndOffsets(ctx, args...)
			if err != nil {
				return fmt.Errorf("list end offsets: %w", err)
			}
			cfgs, err := adm.DescribeTopicConfigs(ctx, args...)
			if err != nil {
				return fmt.Errorf("describe configs: %w", err)
			}
			out := cmd.OutOrStdout()
			for i, name := range args {
				if i > 0 {
					fmt.Fprintln(out)
				}
				t, ok := md[name]
				if !ok || t.Err != nil {
					err := t.Err
					if err == nil {
						err = fmt.Errorf("missing from metadata")
					}
					return fmt.Errorf("topic %s: %w", name, err)
				}
				fmt.Fprintf(out, "NAME        %s\n", name)
				fmt.Fprintf(out, "INTERNAL    %v\n", t.IsInternal)
				fmt.Fprintf(out, "PARTITIONS  %d\n", len(t.Partitions))
				fmt.Fprintf(out, "REPLICAS    %d\n", t.Partitions.NumReplicas())
				if rc, err := cfgs.On(name, nil); err == nil && rc.Err == nil {
					fmt.Fprintln(out, "\nCONFIGS")
					tw := table(out)
					fmt.Fprintln(tw, "KEY\tVALUE\tSOURCE")
					for _, c := range rc.Configs {
						if !all && (c.Source == kmsg.ConfigSourceDefaultConfig || c.Source == kmsg.ConfigSourceUnknown) {
							continue
						}
						v := "(null)"
						if c.Value != nil {
							v = *c.Value
						}
						if c.Sensitive {
							v = "(sensitive)"
						}
						fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Key, v, strings.ToLower(c.Source.String()))
					}
					tw.Flush()
				}
				fmt.Fprintln(out, "\nPARTITIONS")
				tw := table(out)
				fmt.Fprintln(tw, "PARTITION\tLEADER\tEPOCH\tREPLICAS\tISR\tLOG-START-OFFSET\tHIGH-WATERMARK\tRECORDS")
				for _, p := range t.Partitions.Sorted() {
					start, end := offsetOrErr(starts, name, p.Partition), offsetOrErr(ends, name, p.Partition)
					n := "-"
					if so, ok := starts.Lookup(name, p.Partition); ok && so.Err == nil {
						if eo, ok := ends.Lookup(name, p.Partition); ok && eo.Err == nil {
							n = fmt.Sprint(eo.Offset - so.Offset)
						}
					}
					fmt.Fprintf(tw, "%d\t%d\t%d\t%v\t%v\t%s\t%s\t%s\n", p.Partition, p.Leader, p.LeaderEpoch, p.Replicas, p.ISR, start, end, n)
				}
				if err := tw.Flush(); err != nil {
					return err
				}
			}
			return nil
		},
	}
	c.Flags().BoolVarP(&all, "all", "a", false, "show every config, including broker and static defaults")
	return c
}

func topicDeleteCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME...",
		Short: "Delete topics",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			adm, err := a.admin()
			if err != nil {
				return err
			}
			defer adm.Close()
			resps, err := adm.DeleteTopics(cmd.Context(), args...)
			if err != nil {
				return fmt.Errorf("delete topics: %w", err)
			}
			var firstErr error
			for _, name := range args {
				r, ok := resps[name]
				switch {
				case !ok:
					firstErr = cmp(firstErr, fmt.Errorf("topic %s: missing from response", name))
				case r.Err != nil:
					firstErr = cmp(firstErr, fmt.Errorf("topic %s: %w%s", name, r.Err, errMessage(r.ErrMessage)))
				default:
					fmt.Fprintf(cmd.OutOrStdout(), "deleted topic %s\n", name)
				}
			}
			return firstErr
		},
	}
}

func topicAlterConfigCmd(a *app) *cobra.Command {
	var sets, deletes []string
	c := &cobra.Command{
		Use:   "alter-config NAME...",
		Short: "Set or delete per-topic config overrides (incremental)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(sets)+len(deletes) == 0 {
				return fmt.Errorf("nothing to do: give --set k=v or --delete k")
			}
			kv, err := parseKV(sets, "--set")
			if err != nil {
				return err
			}
			var alters []kadm.AlterConfig
			for _, k := range slices.Sorted(maps.Keys(kv)) {
				v := kv[k]
				alters = append(alters, kadm.AlterConfig{Op: kadm.SetConfig, Name: k, Value: &v})
			}
			for _, k := range deletes {
				alters = append(alters, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: k})
			}
			adm, err := a.admin()
			if err != nil {
				return err
			}
			defer adm.Close()
			resps, err := adm.AlterTopicConfigs(cmd.Context(), alters, args...)
			if err != nil {
				return fmt.Errorf("alter configs: %w", err)
			}
			var firstErr error
			for _, r := range resps {
				if r.Err != nil {
					firstErr = cmp(firstErr, fmt.Errorf("topic %s: %w%s", r.Name, r.Err, errMessage(r.ErrMessage)))
					continue
				}
				fmt.Fprintf(cmd.OutOrStdout(), "altered config of topic %s\n", r.Name)
			}
			return firstErr
		},
	}
	c.Flags().StringArrayVar(&sets, "set", nil, "set config key=value (repeatable)")
	c.Flags().StringArrayVar(&deletes, "delete", nil, "delete config override KEY, reverting to the default (repeatable)")
	return c
}

// table returns a tabwriter for aligned column output.
func table(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0) }

// cmp keeps the first non-nil error.
func cmp(first, next error) error {
	if first != nil {
		return first
	}
	return next
}

// errMessage formats an optional broker error message.
func errMessage(m string) string {
	if m == "" {
		return ""
	}
	return " (" + m + ")"
}

func offsetOrErr(l kadm.ListedOffsets, topic string, p int32) string {
	o, ok := l.Lookup(topic, p)
	if !ok {
		return "-"
	}
	if o.Err != nil {
		return "error: " + o.Err.Error()
	}
	return fmt.Sprint(o.Offset)
}
