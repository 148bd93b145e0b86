package apply

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/kup-project/kup/internal/backup"
	"github.com/kup-project/kup/internal/report"
	"github.com/kup-project/kup/internal/sandbox"
)

// SandboxBackup is the Backup hook for a sandbox: a verified snapshot of
// its etcd (whose client URL the sandbox records) into dir.
func SandboxBackup(c *sandbox.Cluster, dir, target string) Backup {
	return EtcdBackup(backup.Endpoint{URL: fmt.Sprintf("http://127.0.0.1:%d", c.Ports.EtcdClient)}, dir, c.Name, target, []string{c.Version})
}

// EtcdBackup is the Backup hook for an etcd member kup can reach.
func EtcdBackup(ep backup.Endpoint, dir, cluster, target string, versions []string) Backup {
	return func(ctx context.Context) (*report.BackupRecord, error) {
		start := time.Now()
		path := filepath.Join(dir, time.Now().UTC().Format("20060102-150405")+"-before-"+target+".db")
		m, err := backup.Save(ctx, backup.SaveOptions{Etcd: ep, Path: path, ClusterName: cluster, KubernetesVersions: versions})
		if err != nil {
			return nil, err
		}
		return &report.BackupRecord{Path: m.Path, SHA256: m.SHA256, Size: m.Size, Revision: m.Revision, Keys: int64(m.TotalKeys), Verified: true, Duration: time.Since(start)}, nil
	}
}
