package main

import (
	"fmt"
	"net"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kfake"
)

func init() { commands = append(commands, kfakeCmd) }

// kfakeCmd runs franz-go's in-memory fake Kafka cluster (one broker) as a
// process of its own. It is hidden: it exists so that `eddy perf compare`
// can measure eddy's broker and kfake the same way, each in a subprocess.
func kfakeCmd(a *app) *cobra.Command {
	var listen, readyFile string
	c := &cobra.Command{
		Use:    "kfake",
		Short:  "Run franz-go's in-memory fake Kafka (one broker), for benchmarks",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := kfake.NewCluster(
				kfake.NumBrokers(1),
				kfake.Ports(0),
				kfake.AllowAutoTopicCreation(),
				kfake.ListenFn(func(network, _ string) (net.Listener, error) { return net.Listen(network, listen) }),
			)
			if err != nil {
				return fmt.Errorf("kfake: %w", err)
			}
			defer cl.Close()
			addr := cl.ListenAddrs()[0]
			fmt.Fprintln(cmd.ErrOrStderr(), "kfake listening on", addr)
			if readyFile != "" {
				if err := writeFileAtomic(readyFile, []byte(addr+"\n")); err != nil {
					return fmt.Errorf("ready file: %w", err)
				}
			}
			<-cmd.Context().Done()
			return nil
		},
	}
	c.Flags().StringVar(&listen, "listen", "127.0.0.1:0", "listen host:port (port 0: any free port)")
	c.Flags().StringVar(&readyFile, "ready-file", "", "write the listen address to this file once listening")
	return c
}
