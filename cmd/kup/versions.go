package main

import (
	"errors"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/kup-project/kup/internal/action"
	"github.com/kup-project/kup/internal/provider"
	sandboxprovider "github.com/kup-project/kup/internal/provider/sandbox"
)

func newVersionsCommand() *cobra.Command {
	a := &action.Versions{}
	var output string
	var listNodes bool
	var flags *genericclioptions.ConfigFlags
	cmd := &cobra.Command{
		Use:   "versions",
		Short: "Show every component's version, the skew verdict and the upgrade path to --to",
		Example: `  kup versions
  kup versions --to v1.37.2 -o json
  kup versions --from v1.33.9 --to v1.37.2     # on paper, no cluster`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "table" && output != "json" && output != "yaml" {
				return usageError("-o %q: want table, json or yaml", output)
			}
			if a.From == "" {
				cfg, err := restConfig(flags)
				if err != nil {
					return usageError("no cluster to read (%v): pass --kubeconfig/--context, or plan on paper with --from and --to", err)
				}
				a.Config = cfg
				a.ControlPlane = detectControlPlane(cfg.Host)
			}
			res, err := a.Run(cmd.Context())
			if res != nil {
				if perr := action.Print(cmd.OutOrStdout(), res, output, listNodes); perr != nil {
					return perr
				}
			}
			return resultError(err, output != "table")
		},
	}
	flags = clusterFlags(cmd)
	f := cmd.Flags()
	f.StringVar(&a.To, "to", "", "target Kubernetes version: show the upgrade path")
	f.StringVar(&a.From, "from", "", "plan on paper from this version (no cluster is read)")
	f.StringVarP(&output, "output", "o", "table", "output format: table, json or yaml")
	f.BoolVar(&listNodes, "nodes", false, "list every node instead of counting them")
	f.StringVar(&a.ReleasesFile, "releases", "", "release table file overriding the embedded one (JSON or YAML)")
	f.IntVar(&a.NodeMaxMinorsPerRoll, "node-max-minors-per-roll", 0, "how many minors one node upgrade may move (kubeadm upgrade node: 1); 0 = only the skew policy limits")
	return cmd
}

// detectControlPlane recognises a cluster `kup sandbox` started from its
// API address alone; other clusters get no provider (versions come from
// their kube-system pods).
func detectControlPlane(host string) provider.ControlPlane {
	if c, err := sandboxprovider.Detect(host); err == nil {
		return &sandboxprovider.ControlPlane{Cluster: c}
	}
	return nil
}

// resultError maps an action's error to kup's exit codes. When the result
// was already printed as JSON/YAML (carrying the reason), the message is
// not printed again.
func resultError(err error, printed bool) error {
	if err == nil {
		return nil
	}
	var re *action.ResultError
	if errors.As(err, &re) {
		code := exitError
		if re.Code == action.CodeUsage {
			code = exitUsage
		}
		if printed {
			return &codedError{code: code, err: silent{err}}
		}
		return &codedError{code: code, err: err}
	}
	return err
}

// silent is an error already shown in the output.
type silent struct{ error }
