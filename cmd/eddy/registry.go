package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/eddy-streams/eddy/registry"
)

func init() { commands = append(commands, registryCmd) }

// defaultRegistry is the schema registry URL used when neither --registry
// nor EDDY_REGISTRY is given: eddy broker's default --http address, which
// is also Confluent Schema Registry's default port.
const defaultRegistry = "http://127.0.0.1:8081"

// registryEnv names the environment variable that supplies the default for
// --registry.
const registryEnv = "EDDY_REGISTRY"

// registryRequestTimeout bounds each command's registry requests.
const registryRequestTimeout = 30 * time.Second

// maxSchemaFileBytes bounds a schema read from a file or stdin: the
// registry's default request size limit.
const maxSchemaFileBytes = registry.DefaultMaxBodyBytes

// errIncompatible is returned by `registry check` for an incompatible
// schema, after the reasons are printed, so that the command exits 1.
var errIncompatible = errors.New("schema is incompatible")

// registryURLFlag adds --registry to f, defaulting to EDDY_REGISTRY or
// defaultRegistry.
func registryURLFlag(f *pflag.FlagSet, url *string) {
	def := os.Getenv(registryEnv)
	if def == "" {
		def = defaultRegistry
	}
	f.StringVar(url, "registry", def, "schema registry base URL (env "+registryEnv+")")
}

// registryBaseURL checks a --registry value and adds http:// when it has
// no scheme.
func registryBaseURL(url string) (string, error) {
	if url == "" {
		return "", errors.New("--registry is empty")
	}
	if !strings.Contains(url, "://") {
		url = "http://" + url
	}
	return url, nil
}

// newRegistryClient returns a franz-go schema registry client for url.
func newRegistryClient(url string) (*sr.Client, error) {
	url, err := registryBaseURL(url)
	if err != nil {
		return nil, err
	}
	cl, err := sr.NewClient(sr.URLs(url), sr.UserAgent("eddy-cli"))
	if err != nil {
		return nil, fmt.Errorf("schema registry client: %w", err)
	}
	return cl, nil
}

// registryError wraps a registry client error with what was attempted,
// spelling out the registry's error code and message.
func registryError(what string, err error) error {
	var re *sr.ResponseError
	if errors.As(err, &re) {
		msg := re.Message
		if msg == "" {
			msg = strings.TrimSpace(string(re.Raw))
		}
		if re.ErrorCode != 0 {
			return fmt.Errorf("%s: registry error %d: %s", what, re.ErrorCode, msg)
		}
		return fmt.Errorf("%s: registry answered HTTP %d: %s", what, re.StatusCode, msg)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func registryCmd(_ *app) *cobra.Command {
	var url string
	c := &cobra.Command{
		Use:   "registry",
		Short: "List, get, register, check and delete schemas in a schema registry",
		Long: `registry talks to a Confluent-compatible schema registry: eddy broker's own
(served on its --http address) or Confluent Schema Registry, Redpanda,
Karapace, Apicurio. --registry is its base URL (env ` + registryEnv + `, default
` + defaultRegistry + `).

Errors from the registry are printed with its error code, for example
"registry error 40401: Subject 'x' not found.".`,
	}
	registryURLFlag(c.PersistentFlags(), &url)
	client := func() (*sr.Client, error) { return newRegistryClient(url) }
	c.AddCommand(
		registrySubjectsCmd(client),
		registryGetCmd(client),
		registryRegisterCmd(client),
		registryCheckCmd(client),
		registryDeleteCmd(client),
		registryConfigCmd(client),
	)
	return c
}

// requestCtx bounds a command's registry requests.
func requestCtx(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	return context.WithTimeout(cmd.Context(), registryRequestTimeout)
}

func registrySubjectsCmd(client func() (*sr.Client, error)) *cobra.Command {
	var (
		deleted bool
		prefix  string
	)
	c := &cobra.Command{
		Use:   "subjects",
		Short: "List subjects, one per line",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := client()
			if err != nil {
				return err
			}
			ctx, cancel := requestCtx(cmd)
			defer cancel()
			var params []sr.Param
			if deleted {
				params = append(params, sr.ShowDeleted)
			}
			if prefix != "" {
				params = append(params, sr.SubjectPrefix(prefix))
			}
			subjects, err := cl.Subjects(sr.WithParams(ctx, params...))
			if err != nil {
				return registryError("list subjects", err)
			}
			out := cmd.OutOrStdout()
			for _, s := range subjects {
				// Registries filter by prefix, but not all: filter again.
				if strings.HasPrefix(s, prefix) {
					fmt.Fprintln(out, s)
				}
			}
			return nil
		},
	}
	c.Flags().BoolVar(&deleted, "deleted", false, "include soft-deleted subjects")
	c.Flags().StringVar(&prefix, "prefix", "", "only subjects starting with this prefix")
	return c
}

// parseVersion parses a VERSION argument: a positive number or "latest"
// (-1, as the sr client spells it).
func parseVersion(s string) (int, error) {
	if s == "latest" {
		return -1, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 1 {
		return 0, fmt.Errorf("invalid version %q: want a number >= 1 or latest", s)
	}
	return v, nil
}

func registryGetCmd(client func() (*sr.Client, error)) *cobra.Command {
	var id int
	c := &cobra.Command{
		Use:   "get SUBJECT [VERSION|latest] | get --id N",
		Short: "Show a schema by subject and version (default latest) or by id",
		Args: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("id") {
				if len(args) > 0 {
					return errors.New("give either --id or SUBJECT [VERSION], not both")
				}
				return nil
			}
			return cobra.RangeArgs(1, 2)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := client()
			if err != nil {
				return err
			}
			ctx, cancel := requestCtx(cmd)
			defer cancel()
			out := cmd.OutOrStdout()
			if cmd.Flags().Changed("id") {
				if id < 1 {
					return fmt.Errorf("invalid --id %d: want a number >= 1", id)
				}
				s, err := cl.SchemaByID(ctx, id)
				if err != nil {
					return registryError(fmt.Sprintf("get schema id %d", id), err)
				}
				uses, err := cl.SchemaVersionsByID(ctx, id)
				if err != nil {
					return registryError(fmt.Sprintf("get the versions of schema id %d", id), err)
				}
				fmt.Fprintf(out, "ID       %d\n", id)
				fmt.Fprintf(out, "TYPE     %s\n", s.Type)
				for _, u := range uses {
					fmt.Fprintf(out, "USED-BY  %s version %d\n", u.Subject, u.Version)
				}
				fmt.Fprintf(out, "SCHEMA   %s\n", s.Schema)
				return nil
			}
			version := -1
			if len(args) == 2 {
				if version, err = parseVersion(args[1]); err != nil {
					return err
				}
			}
			ss, err := cl.SchemaByVersion(ctx, args[0], version)
			if err != nil {
				v := "latest"
				if version > 0 {
					v = strconv.Itoa(version)
				}
				return registryError(fmt.Sprintf("get subject %q version %s", args[0], v), err)
			}
			fmt.Fprintf(out, "SUBJECT  %s\n", ss.Subject)
			fmt.Fprintf(out, "VERSION  %d\n", ss.Version)
			fmt.Fprintf(out, "ID       %d\n", ss.ID)
			fmt.Fprintf(out, "TYPE     %s\n", ss.Type)
			fmt.Fprintf(out, "SCHEMA   %s\n", ss.Schema.Schema)
			return nil
		},
	}
	c.Flags().IntVar(&id, "id", 0, "get the schema with this id instead")
	return c
}

// readSchemaArg reads the schema text named by a FILE|- argument.
func readSchemaArg(cmd *cobra.Command, arg string) (string, error) {
	var r io.Reader
	name := arg
	if arg == "-" {
		r, name = cmd.InOrStdin(), "stdin"
	} else {
		f, err := os.Open(arg)
		if err != nil {
			return "", err
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, maxSchemaFileBytes+1))
	if err != nil {
		return "", fmt.Errorf("reading the schema from %s: %w", name, err)
	}
	if len(b) > maxSchemaFileBytes {
		return "", fmt.Errorf("schema in %s is larger than %d bytes", name, maxSchemaFileBytes)
	}
	text := strings.TrimSpace(string(b))
	if text == "" {
		return "", fmt.Errorf("schema in %s is empty", name)
	}
	return text, nil
}

func registryRegisterCmd(client func() (*sr.Client, error)) *cobra.Command {
	return &cobra.Command{
		Use:   "register SUBJECT FILE|-",
		Short: "Register a schema (from a file, or stdin with -) under a subject and print its id",
		Long: `register registers the Avro schema in FILE (or read from stdin with -) under
SUBJECT and prints its id. Registering a schema the subject already has prints
its existing id. A schema the subject's compatibility level rejects fails
with the registry's reasons.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			text, err := readSchemaArg(cmd, args[1])
			if err != nil {
				return err
			}
			cl, err := client()
			if err != nil {
				return err
			}
			ctx, cancel := requestCtx(cmd)
			defer cancel()
			id, err := cl.RegisterSchema(ctx, args[0], sr.Schema{Schema: text}, -1, -1)
			if err != nil {
				return registryError(fmt.Sprintf("register under subject %q", args[0]), err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), id)
			return nil
		},
	}
}

func registryCheckCmd(client func() (*sr.Client, error)) *cobra.Command {
	var version string
	c := &cobra.Command{
		Use:   "check SUBJECT FILE|-",
		Short: "Check whether a schema is compatible with a subject's schemas",
		Long: `check asks the registry whether the schema in FILE (or stdin with -) may be
registered under SUBJECT: it prints "compatible", or "incompatible" followed
by the registry's reasons, one per line, and then exits with status 1. The
check uses the subject's compatibility level; without --version the registry
picks the versions to check against, with --version (a number or latest)
only that version is.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			v := -2 // every version the level asks for
			if version != "" {
				var err error
				if v, err = parseVersion(version); err != nil {
					return fmt.Errorf("--version: %w", err)
				}
			}
			text, err := readSchemaArg(cmd, args[1])
			if err != nil {
				return err
			}
			cl, err := client()
			if err != nil {
				return err
			}
			ctx, cancel := requestCtx(cmd)
			defer cancel()
			res, err := cl.CheckCompatibility(sr.WithParams(ctx, sr.Verbose), args[0], v, sr.Schema{Schema: text})
			if err != nil {
				return registryError(fmt.Sprintf("check against subject %q", args[0]), err)
			}
			out := cmd.OutOrStdout()
			if res.Is {
				fmt.Fprintln(out, "compatible")
				return nil
			}
			fmt.Fprintln(out, "incompatible")
			for _, m := range res.Messages {
				fmt.Fprintln(out, "  "+strings.ReplaceAll(m, "\n", " "))
			}
			return errIncompatible
		},
	}
	c.Flags().StringVar(&version, "version", "", "check against this version only (a number or latest)")
	return c
}

func registryDeleteCmd(client func() (*sr.Client, error)) *cobra.Command {
	var permanent bool
	c := &cobra.Command{
		Use:   "delete SUBJECT [VERSION|latest]",
		Short: "Delete a subject, or one version of it (soft, or --permanent)",
		Long: `delete deletes every version of SUBJECT, or only VERSION. By default the
deletion is soft: the registry stops listing the versions but keeps their ids,
so records written with them still decode. --permanent removes them for good
(soft-deleting first, as the registry requires).`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			subject := args[0]
			version := 0
			if len(args) == 2 {
				var err error
				if version, err = parseVersion(args[1]); err != nil {
					return err
				}
			}
			cl, err := client()
			if err != nil {
				return err
			}
			ctx, cancel := requestCtx(cmd)
			defer cancel()
			out := cmd.OutOrStdout()
			kind := "soft-deleted"
			if permanent {
				kind = "permanently deleted"
			}
			if version == 0 {
				versions, err := cl.DeleteSubject(ctx, subject, sr.SoftDelete)
				if err != nil && !(permanent && isRegistryCode(err, 40404)) { // already soft-deleted
					return registryError(fmt.Sprintf("delete subject %q", subject), err)
				}
				if permanent {
					if versions, err = cl.DeleteSubject(ctx, subject, sr.HardDelete); err != nil {
						return registryError(fmt.Sprintf("permanently delete subject %q", subject), err)
					}
				}
				fmt.Fprintf(out, "%s subject %s: versions %s\n", kind, subject, joinInts(versions))
				return nil
			}
			if version == -1 {
				// Resolve latest once: after a soft delete, latest would
				// name the version before.
				ss, err := cl.SchemaByVersion(ctx, subject, -1)
				if err != nil {
					return registryError(fmt.Sprintf("get subject %q version latest", subject), err)
				}
				version = ss.Version
			}
			what := fmt.Sprintf("subject %q version %d", subject, version)
			if err := cl.DeleteSchema(ctx, subject, version, sr.SoftDelete); err != nil &&
				!(permanent && isRegistryCode(err, 40406)) { // already soft-deleted
				return registryError("delete "+what, err)
			}
			if permanent {
				if err := cl.DeleteSchema(ctx, subject, version, sr.HardDelete); err != nil {
					return registryError("permanently delete "+what, err)
				}
			}
			fmt.Fprintf(out, "%s subject %s version %d\n", kind, subject, version)
			return nil
		},
	}
	c.Flags().BoolVar(&permanent, "permanent", false, "delete for good (ids can no longer be looked up)")
	return c
}

// isRegistryCode reports whether err is a registry answer with error code.
func isRegistryCode(err error, code int) bool {
	var re *sr.ResponseError
	return errors.As(err, &re) && re.ErrorCode == code
}

func joinInts(vs []int) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, ", ")
}

func registryConfigCmd(client func() (*sr.Client, error)) *cobra.Command {
	var (
		set string
		del bool
	)
	c := &cobra.Command{
		Use:   "config [SUBJECT]",
		Short: "Show, set (--set LEVEL) or delete (--delete) the global or a subject's compatibility level",
		Long: `config prints the compatibility level of SUBJECT, or the global one without
SUBJECT. A subject without a level of its own prints the global level it
follows. --set LEVEL sets it (NONE, BACKWARD, BACKWARD_TRANSITIVE, FORWARD,
FORWARD_TRANSITIVE, FULL, FULL_TRANSITIVE); --delete removes it, so the
subject follows the global level again (or, for the global level, the
registry's default).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if set != "" && del {
				return errors.New("give --set or --delete, not both")
			}
			subject := sr.GlobalSubject
			what := "the global compatibility level"
			if len(args) == 1 {
				subject = args[0]
				what = fmt.Sprintf("the compatibility level of subject %q", subject)
			}
			cl, err := client()
			if err != nil {
				return err
			}
			ctx, cancel := requestCtx(cmd)
			defer cancel()
			var res sr.CompatibilityResult
			switch {
			case set != "":
				var level sr.CompatibilityLevel
				if err := level.UnmarshalText([]byte(strings.ToUpper(set))); err != nil {
					return fmt.Errorf("invalid --set %q: want NONE, BACKWARD, BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE, FULL or FULL_TRANSITIVE", set)
				}
				res = cl.SetCompatibility(ctx, sr.SetCompatibility{Level: level}, subject)[0]
				if res.Err != nil {
					return registryError("set "+what, res.Err)
				}
			case del:
				if res = cl.ResetCompatibility(ctx, subject)[0]; res.Err != nil {
					return registryError("delete "+what, res.Err)
				}
				// Show what now applies.
				res = cl.Compatibility(sr.WithParams(ctx, sr.DefaultToGlobal), subject)[0]
			default:
				res = cl.Compatibility(sr.WithParams(ctx, sr.DefaultToGlobal), subject)[0]
			}
			if res.Err != nil {
				return registryError("get "+what, res.Err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), res.Level)
			return nil
		},
	}
	c.Flags().StringVar(&set, "set", "", "set the level (NONE, BACKWARD, ..., FULL_TRANSITIVE)")
	c.Flags().BoolVar(&del, "delete", false, "delete the level")
	return c
}
