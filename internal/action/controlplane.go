package action

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kup-project/kup/internal/backup"
	"github.com/kup-project/kup/internal/controlplane"
	"github.com/kup-project/kup/internal/provider"
	"github.com/kup-project/kup/internal/version"
)

// ControlPlaneUpgrade is `kup controlplane upgrade`: an etcd backup, then
// the control plane one minor at a time to To, with a health gate after
// every hop.
type ControlPlaneUpgrade struct {
	Config       *rest.Config
	ControlPlane provider.ControlPlane
	To           string
	// ReleasesFile overrides the embedded release table.
	ReleasesFile string
	// SkipBackup walks without a backup.
	SkipBackup bool
	// BackupDir receives the backup (a file named by the time); empty
	// means DefaultBackupDir of the cluster.
	BackupDir string
	// Etcd reaches etcd for the backup when the provider cannot
	// (EtcdProvider); empty URL otherwise.
	Etcd      backup.Endpoint
	EncryptTo []string
	// ClusterName names the cluster in the backup's path and manifest;
	// the provider's name for it (ClusterName()) wins.
	ClusterName string
	// GateTimeout bounds each health gate (default
	// controlplane.DefaultGateTimeout).
	GateTimeout time.Duration
	// Progress receives one line per step (nil: none).
	Progress io.Writer
	Now      time.Time
	// LockTTL is the upgrade lock's lease (default journal.DefaultTTL).
	LockTTL time.Duration
}

// Run walks the control plane. The result is returned with the error, for
// the report; a failure after the start is a *controlplane.StopError.
func (a *ControlPlaneUpgrade) Run(ctx context.Context) (*controlplane.Result, error) {
	if a.To == "" {
		return nil, &ResultError{Code: CodeUsage, Err: fmt.Errorf("--to is required")}
	}
	to, err := version.Parse(a.To)
	if err != nil {
		return nil, &ResultError{Code: CodeUsage, Err: fmt.Errorf("--to: %w", err)}
	}
	rel := version.DefaultReleases()
	if a.ReleasesFile != "" {
		f, err := os.Open(a.ReleasesFile)
		if err != nil {
			return nil, &ResultError{Code: CodeUsage, Err: fmt.Errorf("--releases: %w", err)}
		}
		rel, err = version.LoadReleases(f)
		f.Close()
		if err != nil {
			return nil, &ResultError{Code: CodeUsage, Err: fmt.Errorf("--releases %s: %w", a.ReleasesFile, err)}
		}
	}
	cs, err := kubernetes.NewForConfig(a.Config)
	if err != nil {
		return nil, err
	}
	cluster := a.ClusterName
	if n, ok := a.ControlPlane.(clusterNamer); ok {
		cluster = n.ClusterName()
	}
	w := &controlplane.Walker{
		ControlPlane: a.ControlPlane, Client: cs,
		Options: controlplane.Options{Target: to, Releases: rel, SkipBackup: a.SkipBackup, GateTimeout: a.GateTimeout},
	}
	if a.Progress != nil {
		w.Options.Progress = ControlPlaneProgress(a.Progress)
	}
	if !a.SkipBackup {
		etcd := a.Etcd
		if p, ok := a.ControlPlane.(EtcdProvider); ok {
			etcd = p.EtcdEndpoint()
		}
		if etcd.URL == "" {
			return nil, &ResultError{Code: CodeUsage, Err: fmt.Errorf("no way to reach etcd for the backup before the first hop: give --etcd-endpoint (and TLS flags), or --skip-backup knowingly")}
		}
		w.Backup = func(ctx context.Context) (*backup.Manifest, error) {
			dir := a.BackupDir
			if dir == "" {
				d, err := DefaultBackupDir(cluster)
				if err != nil {
					return nil, err
				}
				dir = d
			}
			now := a.Now
			if now.IsZero() {
				now = time.Now()
			}
			var versions []string
			if comps, err := a.ControlPlane.Components(ctx); err == nil {
				for _, c := range comps {
					if c.Name == "kube-apiserver" {
						versions = append(versions, c.Version)
					}
				}
			}
			b := &Backup{Etcd: etcd, Path: filepath.Join(dir, backupFileName(now)), ClusterName: cluster, KubernetesVersions: versions, EncryptTo: a.EncryptTo}
			return b.Run(ctx)
		}
	}
	ctx, release, err := holdLock(ctx, cs, "controlplane upgrade to "+a.To, a.LockTTL, a.Progress)
	if err != nil {
		return nil, err
	}
	defer release()
	res, err := w.Run(ctx)
	return res, lockLost(ctx, err)
}

// ControlPlaneProgress prints one line per walker event.
func ControlPlaneProgress(w io.Writer) func(controlplane.Event) {
	return func(e controlplane.Event) {
		where := ""
		if e.Hop > 0 {
			where = fmt.Sprintf("hop %d/%d ", e.Hop, e.Of)
		}
		fmt.Fprintf(w, "%s %s%s: %s\n", e.Time.Format("15:04:05"), where, e.Step, e.Message)
	}
}

// WriteControlPlaneResult prints what a walk did: ✓/✗ per hop, the backup,
// and the control plane as it runs now.
func WriteControlPlaneResult(w io.Writer, res *controlplane.Result) {
	if res == nil || res.Route == nil {
		return
	}
	r := res.Route
	if len(r.Hops) == 0 {
		fmt.Fprintf(w, "The control plane is already at %s.\n", r.To)
		return
	}
	fmt.Fprintf(w, "\nControl plane %s → %s (%s provider), %d hop(s):\n", r.From, r.To, res.Provider, len(r.Hops))
	for _, n := range r.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
	switch {
	case res.Backup != nil:
		fmt.Fprintf(w, "  ✓ backup   %s (revision %d, %d keys, verified)\n", res.Backup.Path, res.Backup.Revision, res.Backup.TotalKeys)
	case res.BackupSkipped:
		fmt.Fprintf(w, "  - backup   skipped (--skip-backup)\n")
	}
	for _, h := range res.Hops {
		mark := map[string]string{controlplane.OutcomeDone: "✓", controlplane.OutcomeFailed: "✗", controlplane.OutcomeNotStarted: "·"}[h.Outcome]
		took := ""
		if h.Took > 0 {
			took = " in " + h.Took.Round(100*time.Millisecond).String()
		}
		fin := ""
		if h.Finish {
			fin = " (finishing an interrupted hop)"
		}
		fmt.Fprintf(w, "  %s hop %d    %s → %s%s: %s%s\n", mark, h.Index, h.From, h.To, fin, h.Outcome, took)
	}
	if len(res.Components) > 0 {
		var cs []string
		for _, c := range res.Components {
			cs = append(cs, c.Name+" "+c.Version)
		}
		fmt.Fprintf(w, "  now: %s\n", strings.Join(cs, ", "))
	}
}
