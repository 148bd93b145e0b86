package action

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	sandboxprovider "github.com/kup-project/kup/internal/provider/sandbox"
	"github.com/kup-project/kup/internal/rehearse"
	"github.com/kup-project/kup/internal/sandbox"
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
