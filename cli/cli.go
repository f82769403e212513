// Package cli is kubectl herald, the kubectl plugin of Herald: its commands, their flags, reading
// the cluster and printing. The decisions it explains are made by the packages the controller and
// the speakers run (config, speaker/plan, speaker/election) through package inspect; package
// validate checks files offline, package metallb translates a MetalLB configuration.
//
// Exit codes, for scripts: 0 when all is well, 1 when problems were found (an IP not answered, a
// Service pending, a conflict, an invalid configuration, something MetalLB has that Herald
// cannot express), 2 for a usage error or when the API server or the files cannot be read.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/client-go/tools/clientcmd"
	sigsyaml "sigs.k8s.io/yaml"
)

// Exit codes.
const (
	ExitOK       = 0
	ExitProblems = 1
	ExitError    = 2
)

// DefaultNamespace is where Herald is installed by default.
const DefaultNamespace = "herald-system"

// exitError ends a command with a code; Err (if any) is printed to stderr.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// problems ends a command that found problems (already printed).
func problems() error { return &exitError{code: ExitProblems} }

// failure ends a command that could not do its work.
func failure(format string, args ...any) error {
	return &exitError{code: ExitError, err: fmt.Errorf(format, args...)}
}

// Streams are the standard streams of a command.
type Streams struct {
	In       io.Reader
	Out, Err io.Writer
}

// globals are the flags every command has.
type globals struct {
	streams   Streams
	loading   *clientcmd.ClientConfigLoadingRules
	overrides *clientcmd.ConfigOverrides
	herald    string
	lbClass   string
}

// Run runs kubectl herald with args (without the program name) and returns the exit code.
func Run(ctx context.Context, args []string, streams Streams) int {
	cmd := NewCommand(streams)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			_, _ = fmt.Fprintln(streams.Err, "error:", ee.err)
		}
		return ee.code
	}
	// Usage errors: unknown command or flag, wrong arguments.
	_, _ = fmt.Fprintf(streams.Err, "error: %v\nSee '%s --help'.\n", err, cmd.DisplayName())
	return ExitError
}

// NewCommand returns the root command.
func NewCommand(streams Streams) *cobra.Command {
	g := &globals{
		streams:   streams,
		loading:   clientcmd.NewDefaultClientConfigLoadingRules(),
		overrides: &clientcmd.ConfigOverrides{},
	}
	root := &cobra.Command{
		Use:   "kubectl-herald",
		Short: "Inspect Herald, the bare-metal LoadBalancer: who announces which IP and why not, pool use, offline validation, migration from MetalLB",
		Long: `kubectl herald explains what Herald does with a cluster.

  status                 per Service and IP: pool, mode, who announces it, BGP sessions, conflicts,
                         and for an IP nobody answers, why
  pools                  use of each pool and family, Services waiting for an address and why
  validate -f PATH       the configuration rules of the controller and the webhook, offline
  migrate-from-metallb   translate a MetalLB configuration and Service annotations into Herald's

Exit codes: 0 all is well; 1 problems found (IP not answered, Service pending, conflict, invalid
configuration, MetalLB settings without an equivalent); 2 usage error, or the API server or the
files cannot be read.`,
		SilenceErrors: true,
		SilenceUsage:  true,
		Annotations:   map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl herald"},
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.Err)
	fs := root.PersistentFlags()
	fs.StringVar(&g.loading.ExplicitPath, "kubeconfig", "", "Path to the kubeconfig file to use for CLI requests")
	clientcmd.BindOverrideFlags(g.overrides, fs, clientcmd.RecommendedConfigOverrideFlags(""))
	fs.StringVar(&g.herald, "herald-namespace", DefaultNamespace, "Namespace where Herald is installed (its configuration and status objects)")
	fs.StringVar(&g.lbClass, "lb-class", "", "Load-balancer class Herald handles (its --lb-class); empty: Services without spec.loadBalancerClass")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return err })

	root.AddCommand(newStatusCommand(g), newPoolsCommand(g), newValidateCommand(g), newMigrateCommand(g))
	return root
}

// outputFlag adds -o to a command.
func outputFlag(fs *pflag.FlagSet, p *string, formats ...string) {
	fs.StringVarP(p, "output", "o", "", "Output format: "+strings.Join(formats, ", ")+" (default: a table)")
}

// checkOutput refuses an unknown output format.
func checkOutput(got string, formats ...string) error {
	if got == "" {
		return nil
	}
	for _, f := range formats {
		if got == f {
			return nil
		}
	}
	return fmt.Errorf("unknown output format %q: use one of %s", got, strings.Join(formats, ", "))
}

// writeStructured prints v as JSON or YAML.
func writeStructured(w io.Writer, format string, v any) error {
	switch format {
	case "json":
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return failure("encoding the report: %w", err)
		}
		if _, err := fmt.Fprintf(w, "%s\n", b); err != nil {
			return failure("writing the report: %w", err)
		}
		return nil
	case "yaml":
		b, err := sigsyaml.Marshal(v)
		if err != nil {
			return failure("encoding the report: %w", err)
		}
		_, err = w.Write(b)
		return err
	}
	return fmt.Errorf("unknown output format %q", format)
}

var errNoFiles = errors.New("no file given: use -f FILE or -f DIR (repeatable), or -f - for stdin")
