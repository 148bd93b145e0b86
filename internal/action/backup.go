package action

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"filippo.io/age"
	"filippo.io/age/agessh"
	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/kup-project/kup/internal/backup"
	"github.com/kup-project/kup/internal/sandbox"
)

// Result codes of the backup commands.
const (
	// CodeManualRestore: kup cannot restore this cluster's etcd itself;
	// the procedure was printed.
	CodeManualRestore = "manual-restore-required"
	// CodeRestoreMismatch: the restore ran but the cluster's objects do
	// not match the snapshot's.
	CodeRestoreMismatch = "restore-mismatch"
)

// EtcdProvider is a control-plane provider that reaches its etcd itself
// (the sandbox), so no --etcd-* flags are needed.
type EtcdProvider interface {
	EtcdEndpoint() backup.Endpoint
}

// EtcdRestorer is a control-plane provider that can restore its etcd from
// a snapshot file: stop what writes, restore into a new data directory,
// start again on it. Only the sandbox can; for other clusters kup prints
// the procedure instead.
type EtcdRestorer interface {
	EtcdProvider
	RestoreSnapshot(ctx context.Context, snapshot string) error
}

// clusterNamer names the cluster in backup paths and manifests.
type clusterNamer interface{ ClusterName() string }

var unsafePathChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// DefaultBackupDir is where a cluster's backups go when no path is
// given: <kup state dir>/backups/<cluster>, the state directory being
// $KUP_STATE_DIR, $XDG_STATE_HOME/kup or ~/.local/state/kup.
func DefaultBackupDir(cluster string) (string, error) {
	state, err := sandbox.StateDir()
	if err != nil {
		return "", err
	}
	name := strings.Trim(unsafePathChars.ReplaceAllString(cluster, "_"), "._")
	if name == "" {
		name = "cluster"
	}
	return filepath.Join(state, "backups", name), nil
}

// backupFileName is a backup's name in its directory: the UTC time, so
// names sort by age.
func backupFileName(now time.Time) string {
	return now.UTC().Format("20060102T150405Z") + ".db"
}

// Backup is `kup backup`: one etcd snapshot, kept only once verified,
// with its manifest beside it.
type Backup struct {
	Etcd backup.Endpoint
	// Path of the snapshot; empty means DefaultBackupDir(ClusterName)
	// and a name from the time.
	Path               string
	ClusterName        string
	KubernetesVersions []string
	EncryptTo          []string
	// Progress is called with the bytes received so far.
	Progress func(received int64)
	Now      time.Time
}

// Run takes the backup.
func (a *Backup) Run(ctx context.Context) (*backup.Manifest, error) {
	if a.Etcd.URL == "" {
		return nil, &ResultError{Code: CodeUsage, Err: errors.New("no etcd endpoint: pass --etcd-endpoint (and --etcd-cacert, --etcd-cert, --etcd-key for TLS), as for etcdctl; kup finds it by itself only for a kup sandbox")}
	}
	path := a.Path
	if path == "" {
		dir, err := DefaultBackupDir(a.ClusterName)
		if err != nil {
			return nil, err
		}
		now := a.Now
		if now.IsZero() {
			now = time.Now()
		}
		path = filepath.Join(dir, backupFileName(now))
	}
	return backup.Save(ctx, backup.SaveOptions{
		Etcd: a.Etcd, Path: path, ClusterName: a.ClusterName, KubernetesVersions: a.KubernetesVersions,
		EncryptTo: a.EncryptTo, Progress: a.Progress,
	})
}

// WriteBackup prints a saved backup's manifest in a few lines.
func WriteBackup(w io.Writer, m *backup.Manifest) {
	fmt.Fprintf(w, "✓ etcd snapshot %s\n", m.Path)
	fmt.Fprintf(w, "  revision %d, %d keys, database %s, file %d bytes, sha256 %s\n", m.Revision, m.TotalKeys, mib(m.DBSize), m.Size, m.SHA256)
	if m.Encrypted {
		fmt.Fprintf(w, "  encrypted with age to %d recipient(s); the snapshot inside has sha256 %s\n", len(m.Recipients), m.PlaintextSHA256)
	}
	fmt.Fprintf(w, "  verified: %s; took %s\n", strings.Join(m.Verified, ", "), m.Took)
	fmt.Fprintf(w, "  manifest %s\n", backup.ManifestPath(m.Path))
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// Restore is `kup restore SNAPSHOT`: prove the snapshot good, restore it
// into the sandbox, and check the cluster's objects against the
// snapshot's; for any other cluster, print the procedure and refuse.
type Restore struct {
	Snapshot string
	// Restorer restores the cluster's etcd; nil means kup cannot (the
	// procedure is printed to Out).
	Restorer EtcdRestorer
	// IdentityFile decrypts an age-encrypted snapshot (an age identity
	// file or an ssh private key).
	IdentityFile string
	Out          io.Writer
}

// ResourceCheck compares one resource's objects in the snapshot with the
// cluster's after the restore.
type ResourceCheck struct {
	Resource   string `json:"resource"`
	InSnapshot int    `json:"inSnapshot"`
	After      int    `json:"after"`
	// SameUID counts snapshot objects back with the same UID.
	SameUID int `json:"sameUid"`
	// Missing and Changed name snapshot objects not back, or back with
	// another UID.
	Missing []string `json:"missing,omitempty"`
	Changed []string `json:"changed,omitempty"`
	// Finished are snapshot objects that were being deleted then
	// (deletionTimestamp set) and are gone now: the deletion completed,
	// as it would have without the restore. Not a failure.
	Finished []string `json:"finished,omitempty"`
	// Managed resources are rewritten by the control plane itself (events
	// expire, leases are renewed under new identities): differences there
	// are reported, not failures.
	Managed bool `json:"managed,omitempty"`
}

// RestoreResult is what a restore proved.
type RestoreResult struct {
	Snapshot string           `json:"snapshot"`
	Manifest *backup.Manifest `json:"manifest,omitempty"`
	Status   *backup.Status   `json:"status"`
	Restored bool             `json:"restored"`
	// Revision is etcd's revision after the restore.
	Revision int64           `json:"revision,omitempty"`
	Checks   []ResourceCheck `json:"checks,omitempty"`
	Problems []string        `json:"problems,omitempty"`
}

// managedResources are rewritten by the control plane on its own.
var managedResources = map[string]bool{
	"events": true, "leases": true, "masterleases": true, "peerserverleases": true, "ranges": true,
	"services/endpoints": true, "endpointslices": true,
	"apiregistration.k8s.io/apiservices": true, "flowschemas": true, "prioritylevelconfigurations": true,
}

// Run restores (or prints the procedure).
func (a *Restore) Run(ctx context.Context) (*RestoreResult, error) {
	res := &RestoreResult{Snapshot: a.Snapshot}
	if _, err := os.Stat(a.Snapshot); err != nil {
		return nil, &ResultError{Code: CodeUsage, Err: fmt.Errorf("snapshot: %w", err)}
	}
	if m, err := backup.ReadManifest(a.Snapshot); err == nil {
		res.Manifest = m
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("refusing to restore: %w", err)
	}
	plain := a.Snapshot
	if strings.HasSuffix(a.Snapshot, ".age") || (res.Manifest != nil && res.Manifest.Encrypted) {
		p, cleanup, err := a.decrypt()
		if err != nil {
			return nil, err
		}
		defer cleanup()
		plain = p
	}
	st, err := backup.Verify(plain)
	if err != nil {
		return nil, fmt.Errorf("refusing to restore: %w", err)
	}
	res.Status = st
	if m := res.Manifest; m != nil {
		want := m.SHA256
		if m.Encrypted {
			want = m.PlaintextSHA256
		}
		if want != st.SHA256 || m.Revision != st.Revision || m.TotalKeys != st.TotalKeys {
			return nil, fmt.Errorf("refusing to restore: %s is not the snapshot its manifest %s describes (sha256 %s, revision %d, %d keys; manifest: %s, %d, %d)",
				a.Snapshot, backup.ManifestPath(a.Snapshot), st.SHA256, st.Revision, st.TotalKeys, want, m.Revision, m.TotalKeys)
		}
	}
	if a.Restorer == nil {
		if a.Out != nil {
			fmt.Fprint(a.Out, ManualRestoreProcedure(a.Snapshot, res.Manifest, st, time.Now()))
		}
		return res, &ResultError{Code: CodeManualRestore, Err: errors.New("kup restores etcd only into clusters it runs itself (kup sandbox); for this cluster follow the procedure above — kup will not guess at your etcd members, data directories and manifests")}
	}

	before, err := SnapshotObjects(plain)
	if err != nil {
		return nil, fmt.Errorf("refusing to restore: %w", err)
	}
	if err := a.Restorer.RestoreSnapshot(ctx, plain); err != nil {
		return res, err
	}
	res.Restored = true
	after, rev, err := EtcdObjects(ctx, a.Restorer.EtcdEndpoint())
	if err != nil {
		return res, fmt.Errorf("the snapshot was restored but the objects could not be checked: %w", err)
	}
	res.Revision = rev
	res.Checks = CompareObjects(before, after)
	if rev <= st.Revision {
		res.Problems = append(res.Problems, fmt.Sprintf("etcd's revision after the restore is %d, not past the snapshot's %d: watchers may miss changes", rev, st.Revision))
	}
	for _, c := range res.Checks {
		if c.Managed || (len(c.Missing) == 0 && len(c.Changed) == 0) {
			continue
		}
		res.Problems = append(res.Problems, fmt.Sprintf("%s: %d of %d objects not back as in the snapshot (missing: %s; other UID: %s)",
			c.Resource, len(c.Missing)+len(c.Changed), c.InSnapshot, strings.Join(firstFew(c.Missing), ","), strings.Join(firstFew(c.Changed), ",")))
	}
	if len(res.Problems) > 0 {
		return res, &ResultError{Code: CodeRestoreMismatch, Err: fmt.Errorf("the snapshot was restored, but the cluster does not match it: %s", strings.Join(res.Problems, "; "))}
	}
	return res, nil
}

// decrypt writes the age-encrypted snapshot to a private temporary
// directory (it holds every Secret of the cluster) and returns its path
// and the function that removes it.
func (a *Restore) decrypt() (string, func(), error) {
	if a.IdentityFile == "" {
		return "", nil, &ResultError{Code: CodeUsage, Err: fmt.Errorf("%s is encrypted: pass --identity FILE (an age identity or the ssh private key of a recipient)", a.Snapshot)}
	}
	data, err := os.ReadFile(a.IdentityFile)
	if err != nil {
		return "", nil, &ResultError{Code: CodeUsage, Err: fmt.Errorf("--identity: %w", err)}
	}
	var ids []age.Identity
	if bytes.Contains(data, []byte("-----BEGIN")) {
		id, err := agessh.ParseIdentity(data)
		if err != nil {
			return "", nil, &ResultError{Code: CodeUsage, Err: fmt.Errorf("--identity %s: %w", a.IdentityFile, err)}
		}
		ids = append(ids, id)
	} else if ids, err = age.ParseIdentities(bytes.NewReader(data)); err != nil {
		return "", nil, &ResultError{Code: CodeUsage, Err: fmt.Errorf("--identity %s: %w", a.IdentityFile, err)}
	}
	dir, err := os.MkdirTemp("", "kup-restore-")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	plain := filepath.Join(dir, strings.TrimSuffix(filepath.Base(a.Snapshot), ".age"))
	if err := backup.Decrypt(a.Snapshot, plain, ids...); err != nil {
		cleanup()
		return "", nil, err
	}
	return plain, cleanup, nil
}

// ManualRestoreProcedure is the exact procedure for restoring etcd by
// hand, as the Kubernetes documentation gives it
// (https://kubernetes.io/docs/tasks/administer-cluster/configure-upgrade-etcd/#restoring-an-etcd-cluster),
// filled in with what kup knows of the snapshot; now names the new data
// directory.
func ManualRestoreProcedure(snapshot string, m *backup.Manifest, st *backup.Status, now time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Snapshot %s: revision %d, %d keys, sha256 %s — verified.\n", snapshot, st.Revision, st.TotalKeys, st.SHA256)
	if m != nil {
		fmt.Fprintf(&b, "Taken %s from %s (cluster %q, etcd %s, Kubernetes %s).\n", m.Created.Format(time.RFC3339), m.Endpoint, m.Cluster, m.EtcdVersion, strings.Join(m.KubernetesVersions, ", "))
	}
	stamp := now.UTC().Format("20060102T150405Z")
	b.WriteString(`
kup cannot restore this cluster's etcd itself. Restore it by hand; everything
written to the cluster since the snapshot is lost:

 1. Stop every kube-apiserver, so nothing writes to etcd while it changes
    (kubeadm: on each control-plane node,
      mv /etc/kubernetes/manifests/kube-apiserver.yaml /etc/kubernetes/
    and wait until 'crictl ps --name kube-apiserver' shows nothing).

 2. Copy the snapshot to every etcd member and restore it there into a NEW
    data directory — never over the current one — with that member's own
    name and peer URL and the full member list:
`)
	fmt.Fprintf(&b, `      etcdutl snapshot restore %s \
        --name MEMBER_NAME \
        --initial-advertise-peer-urls https://MEMBER_IP:2380 \
        --initial-cluster NAME1=https://IP1:2380,NAME2=https://IP2:2380,NAME3=https://IP3:2380 \
        --initial-cluster-token etcd-restored-%s \
        --bump-revision 1000000000 --mark-compacted \
        --data-dir /var/lib/etcd-restored-%s
`, filepath.Base(snapshot), stamp, stamp)
	b.WriteString(`    (--bump-revision and --mark-compacted make clients that watched the
    cluster relist instead of waiting for revisions that now mean other
    objects. Take MEMBER_NAME and the URLs from each member's current flags:
    kubeadm keeps them in /etc/kubernetes/manifests/etcd.yaml.)

 3. Point each etcd member at its new data directory and restart it
    (kubeadm: in /etc/kubernetes/manifests/etcd.yaml change --data-dir and
    the hostPath of the etcd-data volume to /var/lib/etcd-restored-…),
    then check: etcdctl endpoint health --cluster (with your TLS flags).

 4. Start the kube-apiservers again (kubeadm: move kube-apiserver.yaml back
    into /etc/kubernetes/manifests/), then restart kube-controller-manager,
    kube-scheduler and the kubelets so no component acts on stale caches.

 5. Check: kubectl get --raw /readyz?verbose, and that the objects you
    expect are back (kubectl get ns,deploy,sts,ds,pdb -A).
`)
	return b.String()
}

// Object is one Kubernetes object in etcd: its resource (from the key)
// and UID (empty when the value could not be read, e.g. encrypted at rest).
type Object struct {
	Resource string
	UID      string
	// Terminating: the object has a deletionTimestamp (a pod a kubelet
	// is stopping, an object waiting on finalizers). After a restore the
	// control plane finishes deleting it, so its absence is expected.
	Terminating bool
}

// kubernetesPrefix is the apiserver's default --etcd-prefix.
const kubernetesPrefix = "/registry/"

// SnapshotObjects reads every live Kubernetes object in a snapshot file
// (a bolt database): the newest revision of each key under /registry/
// that is not a deletion. The file is opened read-only.
func SnapshotObjects(path string) (objs map[string]Object, err error) {
	db, err := bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("opening snapshot %s: %w", path, err)
	}
	defer db.Close()
	defer func() {
		// bbolt reports some damage by panicking.
		if r := recover(); r != nil {
			err = fmt.Errorf("reading snapshot %s: %v", path, r)
		}
	}()
	objs = map[string]Object{}
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("key"))
		if b == nil {
			return fmt.Errorf("snapshot %s has no key bucket: not an etcd v3 database", path)
		}
		// Keys of the bucket are revisions (8-byte main, '_', 8-byte sub,
		// and a trailing 't' on a deletion), so the cursor walks history
		// in order and the last word on each key wins.
		return b.ForEach(func(rev, v []byte) error {
			var kv mvccpb.KeyValue
			if err := kv.Unmarshal(v); err != nil {
				return fmt.Errorf("revision %x: %w", rev, err)
			}
			key := string(kv.Key)
			if !strings.HasPrefix(key, kubernetesPrefix) {
				return nil
			}
			if len(rev) == 18 && rev[17] == 't' {
				delete(objs, key)
				return nil
			}
			objs[key] = Object{Resource: resourceOf(key), UID: uidOf(kv.Value), Terminating: terminating(kv.Value)}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("reading snapshot %s: %w", path, err)
	}
	return objs, nil
}

// EtcdObjects reads every Kubernetes object from a live etcd, a page at a
// time, and etcd's current revision.
func EtcdObjects(ctx context.Context, e backup.Endpoint) (map[string]Object, int64, error) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{e.URL}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return nil, 0, fmt.Errorf("connecting to etcd at %s: %w", e.URL, err)
	}
	defer cli.Close()
	objs := map[string]Object{}
	end := clientv3.GetPrefixRangeEnd(kubernetesPrefix)
	var rev int64
	for key := kubernetesPrefix; ; {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(500)}
		if rev > 0 {
			opts = append(opts, clientv3.WithRev(rev)) // one consistent view
		}
		gctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		resp, err := cli.Get(gctx, key, opts...)
		cancel()
		if err != nil {
			return nil, 0, fmt.Errorf("reading %s… from etcd at %s: %w", key, e.URL, err)
		}
		rev = resp.Header.Revision
		for _, kv := range resp.Kvs {
			objs[string(kv.Key)] = Object{Resource: resourceOf(string(kv.Key)), UID: uidOf(kv.Value)}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return objs, rev, nil
		}
		key = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// CompareObjects checks every object of the snapshot against the cluster
// after the restore, per resource, sorted by resource.
func CompareObjects(snapshot, after map[string]Object) []ResourceCheck {
	byRes := map[string]*ResourceCheck{}
	get := func(r string) *ResourceCheck {
		if byRes[r] == nil {
			byRes[r] = &ResourceCheck{Resource: r, Managed: managedResources[r]}
		}
		return byRes[r]
	}
	for key, o := range snapshot {
		c := get(o.Resource)
		c.InSnapshot++
		name := strings.TrimPrefix(key, kubernetesPrefix+o.Resource+"/")
		a, ok := after[key]
		switch {
		case !ok && o.Terminating:
			c.Finished = append(c.Finished, name)
		case !ok:
			c.Missing = append(c.Missing, name)
		case a.UID != o.UID:
			c.Changed = append(c.Changed, name)
		default:
			c.SameUID++
		}
	}
	for _, o := range after {
		get(o.Resource).After++
	}
	out := make([]ResourceCheck, 0, len(byRes))
	for _, c := range byRes {
		sort.Strings(c.Missing)
		sort.Strings(c.Changed)
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Resource < out[j].Resource })
	return out
}

// WriteRestore prints what a restore proved, one line per resource.
func WriteRestore(w io.Writer, res *RestoreResult) {
	if res == nil || res.Status == nil {
		return
	}
	if !res.Restored {
		return
	}
	fmt.Fprintf(w, "✓ restored %s (revision %d, %d keys); etcd now at revision %d\n", res.Snapshot, res.Status.Revision, res.Status.TotalKeys, res.Revision)
	fmt.Fprintf(w, "  %-40s %10s %8s %9s\n", "RESOURCE", "SNAPSHOT", "NOW", "SAME UID")
	rewritten := false
	for _, c := range res.Checks {
		mark := "✓"
		if len(c.Missing)+len(c.Changed) > 0 {
			mark = "✗"
			if c.Managed {
				mark = "~"
			}
		}
		fmt.Fprintf(w, "%s %-40s %10d %8d %9d\n", mark, c.Resource, c.InSnapshot, c.After, c.SameUID)
		rewritten = rewritten || mark == "~"
	}
	if rewritten {
		fmt.Fprintln(w, "  (~: rewritten by the control plane itself — events, leases, endpoints — not a failure)")
	}
	for _, c := range res.Checks {
		if len(c.Finished) > 0 {
			fmt.Fprintf(w, "  %s: %d being deleted in the snapshot finished deleting (%s)\n", c.Resource, len(c.Finished), strings.Join(firstFew(c.Finished), ","))
		}
	}
}

// resourceOf names the resource of a key: "/registry/deployments/ns/x" →
// "deployments", "/registry/apps.example.com/widgets/ns/x" →
// "apps.example.com/widgets", "/registry/services/specs/ns/x" →
// "services/specs".
func resourceOf(key string) string {
	parts := strings.SplitN(strings.TrimPrefix(key, kubernetesPrefix), "/", 3)
	if len(parts) >= 3 && (strings.Contains(parts[0], ".") || parts[0] == "services") {
		return parts[0] + "/" + parts[1]
	}
	return parts[0]
}

// protobufMagic starts every object the apiserver stores as protobuf.
var protobufMagic = []byte("k8s\x00")

// uidOf reads metadata.uid from a stored object without knowing its type:
// protobuf (runtime.Unknown{raw: 2}, every type's metadata is field 1 and
// ObjectMeta's uid field 5) or JSON (custom resources). Empty when it
// cannot (encrypted at rest, or no metadata).
func uidOf(value []byte) string {
	if bytes.HasPrefix(value, protobufMagic) {
		raw := protoField(value[len(protobufMagic):], 2)
		return string(protoField(protoField(raw, 1), 5))
	}
	if len(value) > 0 && value[0] == '{' {
		var o struct {
			Metadata struct {
				UID string `json:"uid"`
			} `json:"metadata"`
		}
		if json.Unmarshal(value, &o) == nil {
			return o.Metadata.UID
		}
	}
	return ""
}

// terminating reports whether a stored object has
// metadata.deletionTimestamp (ObjectMeta field 9), in protobuf or JSON.
func terminating(value []byte) bool {
	if bytes.HasPrefix(value, protobufMagic) {
		raw := protoField(value[len(protobufMagic):], 2)
		return protoField(protoField(raw, 1), 9) != nil
	}
	if len(value) > 0 && value[0] == '{' {
		var o struct {
			Metadata struct {
				DeletionTimestamp *string `json:"deletionTimestamp"`
			} `json:"metadata"`
		}
		return json.Unmarshal(value, &o) == nil && o.Metadata.DeletionTimestamp != nil
	}
	return false
}

// protoField returns the bytes of the first length-delimited field num of
// a protobuf message, or nil.
func protoField(msg []byte, num protowire.Number) []byte {
	for len(msg) > 0 {
		n, typ, l := protowire.ConsumeTag(msg)
		if l < 0 {
			return nil
		}
		msg = msg[l:]
		if n == num && typ == protowire.BytesType {
			v, l := protowire.ConsumeBytes(msg)
			if l < 0 {
				return nil
			}
			return v
		}
		l = protowire.ConsumeFieldValue(n, typ, msg)
		if l < 0 {
			return nil
		}
		msg = msg[l:]
	}
	return nil
}

func firstFew(s []string) []string {
	if len(s) <= 5 {
		return s
	}
	return append(s[:5:5], fmt.Sprintf("… (+%d)", len(s)-5))
}
