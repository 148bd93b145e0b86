package sandbox

import (
	"context"
	"fmt"

	"github.com/kup-project/kup/internal/backup"
	sbx "github.com/kup-project/kup/internal/sandbox"
)

// EtcdEndpoint is the sandbox's one etcd member: plain http on loopback,
// so `kup backup` needs no --etcd-* flags for a sandbox.
func (p *ControlPlane) EtcdEndpoint() backup.Endpoint {
	return backup.Endpoint{URL: fmt.Sprintf("http://127.0.0.1:%d", p.Cluster.Ports.EtcdClient)}
}

// ClusterName names the sandbox in backup manifests and paths.
func (p *ControlPlane) ClusterName() string { return "sandbox-" + p.Cluster.Name }

// RestoreSnapshot replaces the sandbox's etcd data with a verified
// snapshot file: the sandbox stops its control plane, the snapshot is
// restored into a new data directory for the sandbox's etcd member, and
// everything is started again on it (see Cluster.RestoreEtcd; on failure
// the old data is put back). The revision is raised past every revision
// clients have seen, so their watches relist instead of waiting.
func (p *ControlPlane) RestoreSnapshot(ctx context.Context, snapshot string) error {
	return p.Cluster.RestoreEtcd(ctx, func(ctx context.Context, dataDir string, m sbx.EtcdMember) error {
		return backup.Restore(ctx, snapshot, dataDir, backup.RestoreOptions{
			Name: m.Name, PeerURL: m.PeerURL, InitialCluster: m.InitialCluster, ClusterToken: m.ClusterToken,
		})
	})
}
