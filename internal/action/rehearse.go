package action

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	sandboxprovider "github.com/kup-project/kup/internal/provider/sandbox"
	"github.com/kup-project/kup/internal/rehearse"
	"github.com/kup-project/kup/internal/sandbox"
	"github.com/kup-project/kup/internal/version"
)

// Default bounds of what a rehearsal twin may hold on this machine: the
// sandbox was measured at 500 nodes and 10,000 pods (kube-apiserver RSS
// 1.4 GB, docs/testbed.md); twice that still fits a developer machine.
const (
	DefaultTwinMaxNodes = 1000
	DefaultTwinMaxPods  = 20000
)

// TwinBuild reads a real cluster (read-only) and starts its sandbox twin.
type TwinBuild struct {
	// Config reaches the real cluster. It is only ever read.
	Config *rest.Config
	// Name of the twin sandbox (default "rehearsal"); StateDir as in
	// sandbox.Options.
	Name, StateDir string
	// Scope: --namespaces and --node-sample.
	Namespaces []string
	NodeSample int
	// MaxNodes and MaxPods bound the twin (defaults above).
	MaxNodes, MaxPods int
	// Served overrides the versions the sandbox can install (tests);
	// nil asks the Go module proxy.
	Served []string
	// DieWithParent: see sandbox.Options.
	DieWithParent bool
	// SettleTimeout: see rehearse.BuildOptions.
	SettleTimeout time.Duration
	Progress      io.Writer
}

// TwinResult is a running twin and how it was made.
type TwinResult struct {
	Twin        *sandbox.Cluster
	Source      *rehearse.Source
	Built       *rehearse.Built
	Delays      rehearse.Delays
	Version     string
	VersionNote string
	Differences []rehearse.Difference
}

// ErrTooLarge is returned (wrapped) when the real cluster does not fit.
var ErrTooLarge = errors.New("cluster too large to rehearse on this machine")

func (b *TwinBuild) progressf(format string, args ...any) {
	if b.Progress != nil {
		fmt.Fprintf(b.Progress, format+"\n", args...)
	}
}

// Run reads the real cluster and starts the twin. On error the twin (if
// started) is stopped again.
func (b *TwinBuild) Run(ctx context.Context) (*TwinResult, error) {
	if b.Config == nil {
		return nil, &ResultError{Code: CodeUsage, Err: errors.New("no real cluster to rehearse")}
	}
	if b.Name == "" {
		b.Name = "rehearsal"
	}
	maxNodes, maxPods := b.MaxNodes, b.MaxPods
	if maxNodes == 0 {
		maxNodes = DefaultTwinMaxNodes
	}
	if maxPods == 0 {
		maxPods = DefaultTwinMaxPods
	}
	b.progressf("reading the real cluster at %s (read-only: one LIST per type)", b.Config.Host)
	src, err := rehearse.Read(ctx, b.Config, rehearse.ReadOptions{Namespaces: b.Namespaces, NodeSample: b.NodeSample})
	if err != nil {
		return nil, err
	}
	live := 0
	for _, o := range src.Pods {
		if o.Status.Phase != "Succeeded" && o.Status.Phase != "Failed" {
			live++
		}
	}
	b.progressf("read %d nodes, %d pods, %d objects to copy, %d CRDs in %d requests", len(src.AllNodes), live, len(src.Objects), src.CRDs, src.Requests)
	if len(src.Nodes) > maxNodes || live > maxPods {
		return nil, &ResultError{Code: CodeUsage, Err: fmt.Errorf("%w: %d nodes and %d pods in scope; this machine's twin holds at most %d nodes and %d pods — rehearse a part with --namespaces NS,… and/or --node-sample N (or raise --max-twin-nodes/--max-twin-pods on a larger machine)",
			ErrTooLarge, len(src.Nodes), live, maxNodes, maxPods)}
	}
	served := b.Served
	if served == nil {
		served = sandboxprovider.ServedVersions()
	}
	v, note, err := rehearse.TwinVersion(src.Server, served)
	if err != nil {
		return nil, &ResultError{Code: CodeNotUpgradable, Err: err}
	}
	if note != "" {
		b.progressf("%s", note)
	}
	delays := rehearse.ReadyDelays(src.Pods, src.Owners, rehearse.DefaultDelayBounds)

	if old, err := sandbox.Load(b.StateDir, b.Name); err == nil {
		b.progressf("replacing the earlier twin %q", b.Name)
		if err := old.StopContext(ctx); err != nil {
			return nil, err
		}
	}
	b.progressf("starting the twin %q: Kubernetes %s", b.Name, v)
	twin, err := sandbox.Start(ctx, sandbox.Options{
		Name: b.Name, Version: v, StateDir: b.StateDir, Progress: b.Progress,
		PodReadyDelay: delays.Cluster, DieWithParent: b.DieWithParent,
	})
	if err != nil {
		return nil, fmt.Errorf("starting the twin: %w", err)
	}
	dyn, err := dynamic.NewForConfig(twin.RESTConfig())
	if err != nil {
		_ = twin.StopContext(context.WithoutCancel(ctx))
		return nil, err
	}
	built, err := rehearse.Build(ctx, rehearse.Twin{Client: twin.Client(), Dynamic: dyn}, src, rehearse.BuildOptions{
		Delays: delays.ByWorkload, SettleTimeout: b.SettleTimeout,
		Progress: func(f string, a ...any) { b.progressf(f, a...) },
	})
	if err != nil {
		_ = twin.StopContext(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("building the twin: %w", err)
	}
	res := &TwinResult{Twin: twin, Source: src, Built: built, Delays: delays, Version: v, VersionNote: note}
	res.Differences = rehearse.Differences(src, built, note, delays)
	b.progressf("twin ready in %s: %d nodes, %d objects written, %d refused", built.Took.Round(100*time.Millisecond), built.Nodes, sum(built.Written), len(built.Failed))
	return res, nil
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// ClusterFingerprint identifies a cluster beyond its address: the UID of
// its kube-system namespace (what kubeadm, Cluster API and most tools use
// as a cluster ID). One GET; nothing is written.
func ClusterFingerprint(ctx context.Context, cfg *rest.Config) (string, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return "", err
	}
	ns, err := cs.CoreV1().Namespaces().Get(ctx, "kube-system", metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("identifying the cluster at %s (reading namespace kube-system): %w", cfg.Host, err)
	}
	return string(ns.UID), nil
}

// ReapplyOnTwin brings the twin's control plane to target if the apply did
// not (a preflight blocker stops it before the hops; the manifests are
// still worth checking), applies the afterHops manifests, then re-applies
// every copied object's last-applied configuration as a dry run and
// returns what the target apiserver refuses.
func ReapplyOnTwin(ctx context.Context, tw *TwinResult, target string, afterHops []string, progress io.Writer) ([]rehearse.Failure, error) {
	say := func(format string, args ...any) {
		if progress != nil {
			fmt.Fprintf(progress, format+"\n", args...)
		}
	}
	cur, err := tw.Twin.ServerVersion(ctx)
	if err != nil {
		return nil, err
	}
	if cur != target {
		from, err := version.Parse(cur)
		if err != nil {
			return nil, err
		}
		to, err := version.Parse(target)
		if err != nil {
			return nil, err
		}
		p, err := version.Path(from, to, version.DefaultReleases(), version.PathOptions{})
		if err != nil {
			return nil, fmt.Errorf("the twin's control plane stayed at %s: %w", cur, err)
		}
		for _, h := range p.Hops {
			say("twin control plane %s → %s (to re-apply the manifests at the target version)", h.From, h.To)
			if err := tw.Twin.SetControlPlaneVersion(ctx, h.To.String()); err != nil {
				return nil, err
			}
		}
		cur = p.To.String()
	}
	dyn, err := dynamic.NewForConfig(tw.Twin.RESTConfig())
	if err != nil {
		return nil, err
	}
	disc := tw.Twin.Client().Discovery()
	var refused []rehearse.Failure
	if len(afterHops) > 0 {
		refused = append(refused, applyFiles(ctx, disc, dyn, afterHops, say)...)
	}
	ms := rehearse.Manifests(tw.Source)
	say("re-applying %d last-applied configuration(s) to kube-apiserver %s (dry run)", len(ms), cur)
	got, err := rehearse.Reapply(ctx, disc, dyn, cur, ms)
	return append(refused, got...), err
}

// applyFiles server-side applies manifests to the twin; what cannot be
// read or is refused is returned.
func applyFiles(ctx context.Context, disc discovery.DiscoveryInterface, dyn dynamic.Interface, paths []string, say func(string, ...any)) []rehearse.Failure {
	var out []rehearse.Failure
	for _, p := range paths {
		files, err := manifestFiles(p)
		if err != nil {
			out = append(out, rehearse.Failure{Key: p, Reason: err.Error()})
			continue
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				out = append(out, rehearse.Failure{Key: f, Reason: err.Error()})
				continue
			}
			say("applying %s to the twin", f)
			out = append(out, rehearse.ApplyDocuments(ctx, disc, dyn, f, data)...)
		}
	}
	return out
}

func manifestFiles(p string) ([]string, error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return []string{p}, nil
	}
	var out []string
	err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if ext := filepath.Ext(path); !d.IsDir() && (ext == ".yaml" || ext == ".yml" || ext == ".json") {
			out = append(out, path)
		}
		return nil
	})
	return out, err
}
