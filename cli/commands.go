package cli

import (
	"github.com/spf13/cobra"

	"github.com/herald-lb/herald/cli/inspect"
	"github.com/herald-lb/herald/cli/manifest"
	"github.com/herald-lb/herald/cli/validate"
)

func newStatusCommand(g *globals) *cobra.Command {
	var output string
	var all bool
	cmd := &cobra.Command{
		Use:   "status [SERVICE]",
		Short: "Per Service and IP: pool, mode, who announces it, BGP sessions, conflicts, and why an IP is not answered",
		Long: `Shows, for every Service of type LoadBalancer that Herald handles, each IP with its pool, its mode
(layer2, bgp), the node answering ARP/NDP for it or the nodes advertising it and to which BGP peers,
address conflicts, and for an IP that nobody answers, the reason in one line.

The reasons come from the rules the speakers run, applied to what the API server shows: Node
conditions and labels, the advertisements' selectors, EndpointSlices (externalTrafficPolicy: Local),
the configuration. Memberlist membership and the interfaces a speaker can answer on are known only
to the speakers; when they are what keeps an IP silent, status says so and quotes the speakers'
NotAnnounced event.

With a SERVICE name, every node's verdict is listed under each IP.

Without -n, all namespaces (-A is accepted for kubectl's habit); with a SERVICE and no -n, the
namespace of the kubeconfig context.`,
		Example: `  kubectl herald status
  kubectl herald status -n shop web
  kubectl herald status -o wide
  kubectl herald status -o json | jq '.services[].ips[] | select(.answered | not)'`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output, "wide", "json", "yaml"); err != nil {
				return err
			}
			c, ctxNS, explicit, err := g.client()
			if err != nil {
				return err
			}
			opts := inspect.StatusOptions{}
			if explicit && !all {
				opts.Namespace = ctxNS
			}
			if len(args) == 1 {
				opts.Service = args[0]
				opts.Namespace = ctxNS
			}
			cl, err := g.readCluster(cmd.Context(), c, opts.Namespace)
			if err != nil {
				return err
			}
			rep := inspect.Status(cl, opts)
			if opts.Service != "" && len(rep.Services) == 0 {
				return failure("Service %s/%s not found, or not of type LoadBalancer with Herald's load-balancer class", opts.Namespace, opts.Service)
			}
			switch output {
			case "json", "yaml":
				err = writeStructured(g.streams.Out, output, rep)
			default:
				err = rep.WriteTable(g.streams.Out, output == "wide", opts.Service != "")
			}
			if err != nil {
				return err
			}
			if rep.Problems > 0 {
				return problems()
			}
			return nil
		},
	}
	outputFlag(cmd.Flags(), &output, "wide", "json", "yaml")
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "All namespaces (the default without -n)")
	return cmd
}

func newPoolsCommand(g *globals) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "pools",
		Short: "Use of each pool and family, and the Services waiting for an address with the reason",
		Long: `Shows every IPAddressPool with, per address family, its addresses, the Services holding one, and the
counts the controller writes in the pool's status (assigned, available), with its Valid condition;
then the Services of type LoadBalancer still waiting for an address, the pool they ask for, and why
(the controller's AllocationFailed event).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output, "json", "yaml"); err != nil {
				return err
			}
			c, _, _, err := g.client()
			if err != nil {
				return err
			}
			cl, err := g.readCluster(cmd.Context(), c, "")
			if err != nil {
				return err
			}
			rep := inspect.Pools(cl)
			if output != "" {
				err = writeStructured(g.streams.Out, output, rep)
			} else {
				err = rep.WriteTable(g.streams.Out)
			}
			if err != nil {
				return err
			}
			if rep.Problems > 0 {
				return problems()
			}
			return nil
		},
	}
	outputFlag(cmd.Flags(), &output, "json", "yaml")
	return cmd
}

func newValidateCommand(g *globals) *cobra.Command {
	var (
		output    string
		files     []string
		recursive bool
	)
	cmd := &cobra.Command{
		Use:   "validate -f FILE|DIR ...",
		Short: "Check Herald configuration files offline with the controller's and the webhook's rules",
		Long: `Reads Herald configuration objects (IPAddressPool, L2Advertisement, BGPAdvertisement, BGPPeer,
BFDProfile, Community) and the Secrets holding BGP passwords from YAML or JSON files (several
documents per file, List objects, directories), and checks them together with the rules the
controller, the speakers and the validating webhook apply, reporting every problem with the same
message as the webhook, and the file and document it comes from. Nothing is sent to a cluster.

Objects without a namespace are taken to be in --herald-namespace; objects of other namespaces are
reported and left out (Herald ignores them). Other kinds are ignored.`,
		Example: `  kubectl herald validate -f config/
  kubectl herald validate -f pools.yaml -f peers.yaml -o json
  helm template ... | kubectl herald validate -f -`,
		Args: cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			if err := checkOutput(output, "json", "yaml"); err != nil {
				return err
			}
			if len(files) == 0 {
				return errNoFiles
			}
			objs, err := manifest.Load(files, recursive, g.streams.In)
			if err != nil {
				return failure("%w", err)
			}
			rep := validate.Validate(objs, validate.Options{Namespace: g.herald})
			if output != "" {
				if err := writeStructured(g.streams.Out, output, rep); err != nil {
					return err
				}
			} else if err := rep.WriteText(g.streams.Out); err != nil {
				return failure("writing the report: %w", err)
			}
			if !rep.Valid() {
				return problems()
			}
			return nil
		},
	}
	outputFlag(cmd.Flags(), &output, "json", "yaml")
	cmd.Flags().StringSliceVarP(&files, "filename", "f", nil, "File or directory to read (repeatable; - for stdin)")
	cmd.Flags().BoolVarP(&recursive, "recursive", "R", false, "Read the directories of -f recursively")
	return cmd
}
