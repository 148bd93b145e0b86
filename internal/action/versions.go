// Package action holds kup's commands as library calls — an options
// struct and a Run method, as helm's pkg/action — so cmd/kup only wires
// flags, and tests call the same code the CLI runs.
package action

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"k8s.io/client-go/rest"

	"github.com/kup-project/kup/internal/inventory"
	"github.com/kup-project/kup/internal/provider"
	"github.com/kup-project/kup/internal/report"
	"github.com/kup-project/kup/internal/version"
)

// Exit codes a result maps to (shared with cmd/kup).
const (
	CodeUsage         = "usage"          // bad input: exit 2
	CodeNotUpgradable = "not-upgradable" // the cluster cannot be upgraded as asked: exit 1
	CodeSkew          = "skew-violation" // the cluster is already outside the skew policy: exit 1
)

// Versions is `kup versions`: the inventory, the skew verdict and, with
// To, the upgrade path. With From and no cluster it plans on paper.
type Versions struct {
	// Config reaches the cluster; nil with From set plans on paper.
	Config *rest.Config
	// ControlPlane, if known, reports components outside the cluster's pods.
	ControlPlane provider.ControlPlane
	From, To     string
	// ReleasesFile overrides the embedded release table.
	ReleasesFile string
	// NodeMaxMinorsPerRoll is the node upgrader's own limit (0: none).
	NodeMaxMinorsPerRoll int
	// Kubectl: see inventory.Options.
	Kubectl string
	Now     time.Time
}

// ResultError is an error carrying the code the result reports.
type ResultError struct {
	Code string
	Err  error
}

func (e *ResultError) Error() string { return e.Err.Error() }
func (e *ResultError) Unwrap() error { return e.Err }

// Run computes the result. The error is non-nil when the result carries
// an error (usage, not upgradable, skew); the result is still returned so
// JSON output can carry the reason.
func (a *Versions) Run(ctx context.Context) (*report.Versions, error) {
	res := &report.Versions{SkewOK: true, Skew: []version.SkewViolation{}}
	fail := func(code string, err error) (*report.Versions, error) {
		res.Error = &report.ResultError{Code: code, Message: err.Error()}
		return res, &ResultError{Code: code, Err: err}
	}
	now := a.Now
	if now.IsZero() {
		now = time.Now()
	}
	rel := version.DefaultReleases()
	if a.ReleasesFile != "" {
		f, err := os.Open(a.ReleasesFile)
		if err != nil {
			return fail(CodeUsage, fmt.Errorf("--releases: %w", err))
		}
		rel, err = version.LoadReleases(f)
		f.Close()
		if err != nil {
			return fail(CodeUsage, fmt.Errorf("--releases %s: %w", a.ReleasesFile, err))
		}
	}
	if stale := rel.Stale(now); stale != "" {
		res.Warnings = append(res.Warnings, stale)
	}
	var to version.Version
	if a.To != "" {
		v, err := version.Parse(a.To)
		if err != nil {
			return fail(CodeUsage, fmt.Errorf("--to: %w", err))
		}
		to = v
	}
	opts := version.PathOptions{NodeMaxMinorsPerRoll: a.NodeMaxMinorsPerRoll}
	var from version.Version
	if a.Config == nil {
		if a.From == "" || a.To == "" {
			return fail(CodeUsage, errors.New("without a cluster, give both --from and --to"))
		}
		v, err := version.Parse(a.From)
		if err != nil {
			return fail(CodeUsage, fmt.Errorf("--from: %w", err))
		}
		from = v
	} else {
		snap, err := inventory.Read(ctx, a.Config, inventory.Options{Scope: inventory.ScopeVersions, ControlPlane: a.ControlPlane, Kubectl: a.Kubectl, Now: now})
		if err != nil {
			return nil, err
		}
		res.Cluster = a.Config.Host
		res.Requests = snap.Requests
		res.Groups = report.GroupVersions(snap)
		for what, why := range snap.Unknown {
			res.Warnings = append(res.Warnings, fmt.Sprintf("could not read %s: %s", what, why))
		}
		cv, perrs := snap.ClusterVersions()
		for _, e := range perrs {
			res.Warnings = append(res.Warnings, e.Error())
		}
		// The local kubectl is the operator's client, not part of the
		// cluster: its skew is a warning, never a reason to refuse.
		for _, v := range version.CheckSkew(cv) {
			if v.Component == version.Kubectl {
				res.Warnings = append(res.Warnings, "local "+v.String())
				continue
			}
			res.Skew = append(res.Skew, v)
		}
		res.SkewOK = len(res.Skew) == 0
		if len(cv.APIServers) == 0 {
			return fail(CodeNotUpgradable, fmt.Errorf("the apiserver's version %q could not be read", snap.Server))
		}
		from = oldest(cv.APIServers)
		if a.From != "" {
			return fail(CodeUsage, errors.New("--from is for planning without a cluster; with a cluster the current version is read from it"))
		}
		opts.Cluster = &cv
		if a.ControlPlane != nil {
			if inst := a.ControlPlane.Capabilities().Installable; inst != nil {
				opts.Installable = func(v version.Version) bool { return inst(v.String()) }
			}
		}
	}
	if a.To != "" {
		p, err := version.Path(from, to, rel, opts)
		if err != nil {
			return fail(CodeNotUpgradable, err)
		}
		res.Path = p
	}
	if !res.SkewOK {
		return fail(CodeSkew, fmt.Errorf("the cluster is outside the Kubernetes version-skew policy (%d violation(s)); bring the components named above within it before upgrading", len(res.Skew)))
	}
	return res, nil
}

func oldest(vs []version.Version) version.Version {
	o := vs[0]
	for _, v := range vs[1:] {
		if v.Compare(o) < 0 {
			o = v
		}
	}
	return o
}

// Print writes res in format (table, json, yaml).
func Print(w io.Writer, res *report.Versions, format string, listNodes bool) error {
	switch format {
	case "", "table":
		return res.WriteTable(w, report.TableOptions{ListNodes: listNodes})
	case "json":
		return res.WriteJSON(w)
	case "yaml":
		return res.WriteYAML(w)
	}
	return fmt.Errorf("unknown output format %q (table, json, yaml)", format)
}
