// Package journal records an upgrade's progress where a later kup can
// find it: in the cluster (a ConfigMap in kup-system, written with
// resourceVersion preconditions) and mirrored in a local file (written
// .part → fsync → rename → fsync dir) for the moments the apiserver is
// away during a control-plane hop. Every step is recorded before and after
// it runs. The journal records intent; on resume the executor trusts the
// cluster over the journal when they disagree.
//
// It also holds the lock that keeps two kups from upgrading one cluster
// at once (lock.go).
package journal

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Namespace holds kup's in-cluster state.
const Namespace = "kup-system"

// ConfigMapName is the journal's ConfigMap; the JSON is under key DataKey.
const (
	ConfigMapName = "kup-journal"
	DataKey       = "journal.json"
)

// WindowName is the record of the rollback window (kup controlplane
// upgrade --rollback-safe, kup rollback): a store of its own, since an
// open window outlives the apply runs that come and go beside it.
const WindowName = "kup-rollback-window"

// Phases of a run.
const (
	PhasePreflight    = "preflight"
	PhaseBackup       = "backup"
	PhaseControlPlane = "controlplane"
	PhaseNodes        = "nodes"
	PhaseVerify       = "verify"
	PhaseDone         = "done"
	PhaseFailed       = "failed"
	PhaseInterrupted  = "interrupted"
	PhaseWaiting      = "waiting-for-window"
)

// Step statuses.
const (
	StatusStarted = "started"
	StatusDone    = "done"
	StatusFailed  = "failed"
	StatusSkipped = "skipped"
	// StatusInterrupted marks a step a killed kup started and never ended;
	// the resuming kup redoes it from what the cluster says.
	StatusInterrupted = "interrupted"
)

// Journal is one upgrade run's record.
type Journal struct {
	Schema  int       `json:"schema"`
	RunID   string    `json:"runID"`
	Cluster string    `json:"cluster"`
	From    string    `json:"from"`
	Target  string    `json:"target"`
	Started time.Time `json:"started"`
	Updated time.Time `json:"updated"`
	// Seq increases with every write; the newer of the cluster and the
	// local copy wins on load.
	Seq     int64  `json:"seq"`
	Phase   string `json:"phase"`
	Reason  string `json:"reason,omitempty"`
	Resumes int    `json:"resumes"`
	Holder  string `json:"holder"`
	// Hops are the control-plane hops planned at the start (versions).
	Hops []string `json:"hops,omitempty"`
	// Options are the apply options the run started with, so a resume
	// continues with the same policy.
	Options json.RawMessage `json:"options,omitempty"`
	// Baseline is the verification baseline taken at the start.
	Baseline json.RawMessage `json:"baseline,omitempty"`
	// Extra holds the executor's own records (backup, report parts).
	Extra map[string]json.RawMessage `json:"extra,omitempty"`
	Steps []Step                     `json:"steps"`
}

// Step is one recorded step.
type Step struct {
	ID      string    `json:"id"`
	Status  string    `json:"status"`
	Started time.Time `json:"started"`
	Ended   time.Time `json:"ended,omitzero"`
	Detail  string    `json:"detail,omitempty"`
}

// MarkInterrupted closes every step left "started" by a kup that stopped
// without ending it, and returns how many there were.
func (j *Journal) MarkInterrupted(now time.Time) int {
	n := 0
	for i := range j.Steps {
		if j.Steps[i].Status == StatusStarted {
			j.Steps[i].Status = StatusInterrupted
			j.Steps[i].Ended = now
			n++
		}
	}
	return n
}

// Finished reports whether the run needs nothing more.
func (j *Journal) Finished() bool { return j.Phase == PhaseDone }

// Step returns the last record of a step id, or nil.
func (j *Journal) Step(id string) *Step {
	for i := len(j.Steps) - 1; i >= 0; i-- {
		if j.Steps[i].ID == id {
			return &j.Steps[i]
		}
	}
	return nil
}

// Done reports whether step id was recorded done.
func (j *Journal) Done(id string) bool {
	s := j.Step(id)
	return s != nil && (s.Status == StatusDone || s.Status == StatusSkipped)
}

// Store reads and writes the journal of one cluster.
type Store struct {
	Client kubernetes.Interface
	// LocalDir holds the local mirror (default: StateDir()/journals).
	LocalDir string
	// Cluster identifies the cluster (its API URL) in file names.
	Cluster string
	// Name is the ConfigMap's name (default ConfigMapName). A store of
	// another name keeps another record beside the upgrade's: the
	// rollback window's (WindowName), which outlives any one run.
	Name string

	mu sync.Mutex
	rv string // resourceVersion of the ConfigMap we last read or wrote
	// pending is set while the cluster copy is behind the local one.
	pending bool
}

// StateDir is kup's state directory (the sandbox's, see sandbox.StateDir):
// $KUP_STATE_DIR, else $XDG_STATE_HOME/kup, else ~/.local/state/kup.
func StateDir() (string, error) {
	if d := os.Getenv("KUP_STATE_DIR"); d != "" {
		return filepath.Abs(d)
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "kup"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, ".local", "state", "kup"), nil
}

// LocalPath is the local mirror's path for the store's cluster.
func (s *Store) LocalPath() (string, error) {
	dir := s.LocalDir
	if dir == "" {
		d, err := StateDir()
		if err != nil {
			return "", err
		}
		dir = filepath.Join(d, "journals")
	}
	sum := sha256.Sum256([]byte(s.Cluster))
	name := hex.EncodeToString(sum[:8])
	if s.name() != ConfigMapName {
		name += "-" + s.name()
	}
	return filepath.Join(dir, name+".json"), nil
}

func (s *Store) name() string {
	if s.Name == "" {
		return ConfigMapName
	}
	return s.Name
}

// Load returns the newer of the cluster's and the local journal, or nil
// when neither exists. An unreachable cluster falls back to the local copy.
func (s *Store) Load(ctx context.Context) (*Journal, error) {
	var fromCluster, fromFile *Journal
	cm, err := s.Client.CoreV1().ConfigMaps(Namespace).Get(ctx, s.name(), metav1.GetOptions{})
	clusterErr := err
	switch {
	case err == nil:
		s.mu.Lock()
		s.rv = cm.ResourceVersion
		s.mu.Unlock()
		if data := cm.Data[DataKey]; data != "" {
			fromCluster = &Journal{}
			if err := json.Unmarshal([]byte(data), fromCluster); err != nil {
				return nil, fmt.Errorf("journal ConfigMap %s/%s is corrupt: %w (delete it to start over)", Namespace, s.name(), err)
			}
		}
		clusterErr = nil
	case apierrors.IsNotFound(err):
		clusterErr = nil
	}
	path, err := s.LocalPath()
	if err != nil {
		return nil, err
	}
	if data, err := os.ReadFile(path); err == nil {
		fromFile = &Journal{}
		if err := json.Unmarshal(data, fromFile); err != nil {
			return nil, fmt.Errorf("local journal %s is corrupt: %w (delete it to start over)", path, err)
		}
		if fromFile.Cluster != s.Cluster {
			fromFile = nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("reading local journal %s: %w", path, err)
	}
	switch {
	case fromCluster == nil && fromFile == nil:
		if clusterErr != nil {
			return nil, fmt.Errorf("reading the journal from the cluster: %w", clusterErr)
		}
		return nil, nil
	case fromCluster == nil:
		// The cluster lost it (or never got it): the local copy leads.
		s.pending = clusterErr == nil
		return fromFile, nil
	case fromFile == nil || fromCluster.RunID != fromFile.RunID || fromCluster.Seq >= fromFile.Seq:
		return fromCluster, nil
	default:
		s.pending = true
		return fromFile, nil
	}
}

// Save writes j: the local mirror first (always possible), then the
// cluster, with the resourceVersion precondition. A cluster write that
// fails because the apiserver is away is remembered and retried with the
// next Save; only a conflict (someone else wrote) is an error.
func (s *Store) Save(ctx context.Context, j *Journal) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	j.Seq++
	j.Updated = time.Now().UTC()
	data, err := json.MarshalIndent(j, "", " ")
	if err != nil {
		return err
	}
	path, err := s.LocalPath()
	if err != nil {
		return err
	}
	if err := writeFileAtomic(path, data); err != nil {
		return fmt.Errorf("writing local journal: %w", err)
	}
	if err := s.saveCluster(ctx, data); err != nil {
		if apierrors.IsConflict(err) {
			return fmt.Errorf("journal ConfigMap %s/%s was changed by someone else: %w", Namespace, s.name(), err)
		}
		s.pending = true // mirrored locally; the cluster catches up later
		return nil
	}
	s.pending = false
	return nil
}

// Pending reports whether the cluster copy is behind the local one.
func (s *Store) Pending() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pending
}

func (s *Store) saveCluster(ctx context.Context, data []byte) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cms := s.Client.CoreV1().ConfigMaps(Namespace)
	if err := ensureNamespace(ctx, s.Client); err != nil {
		return err
	}
	if s.rv == "" {
		cm, err := cms.Get(ctx, s.name(), metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			created, err := cms.Create(ctx, &corev1.ConfigMap{
				ObjectMeta: metav1.ObjectMeta{Name: s.name(), Namespace: Namespace, Labels: map[string]string{"app.kubernetes.io/managed-by": "kup"}},
				Data:       map[string]string{DataKey: string(data)},
			}, metav1.CreateOptions{})
			if err != nil {
				return err
			}
			s.rv = created.ResourceVersion
			return nil
		}
		if err != nil {
			return err
		}
		s.rv = cm.ResourceVersion
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: s.name(), Namespace: Namespace, ResourceVersion: s.rv, Labels: map[string]string{"app.kubernetes.io/managed-by": "kup"}},
		Data:       map[string]string{DataKey: string(data)},
	}
	updated, err := cms.Update(ctx, cm, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) {
		// Our own earlier write may have landed while we saw an error (the
		// apiserver restarting mid-request): if the stored copy is this
		// run's, older than what we write, it is ours — take its version.
		cur, gerr := cms.Get(ctx, s.name(), metav1.GetOptions{})
		if gerr != nil {
			return err
		}
		var stored, mine Journal
		if json.Unmarshal([]byte(cur.Data[DataKey]), &stored) != nil || json.Unmarshal(data, &mine) != nil ||
			stored.RunID != mine.RunID || stored.Seq >= mine.Seq {
			return err
		}
		cm.ResourceVersion = cur.ResourceVersion
		updated, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
	}
	if err != nil {
		return err
	}
	s.rv = updated.ResourceVersion
	return nil
}

// Discard deletes the journal from the cluster and the local mirror.
func (s *Store) Discard(ctx context.Context) error {
	err := s.Client.CoreV1().ConfigMaps(Namespace).Delete(ctx, s.name(), metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting journal ConfigMap: %w", err)
	}
	s.rv = ""
	path, err := s.LocalPath()
	if err != nil {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

func ensureNamespace(ctx context.Context, cs kubernetes.Interface) error {
	_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace}}, metav1.CreateOptions{})
	if apierrors.IsForbidden(err) {
		// An RBAC that may use kup's namespace but not create
		// namespaces (nor, often, read them): fine once an administrator
		// has created it, and the first object kup reads or writes in it
		// says whether they have.
		if _, gerr := cs.CoreV1().Namespaces().Get(ctx, Namespace, metav1.GetOptions{}); !apierrors.IsNotFound(gerr) {
			return nil
		}
		return fmt.Errorf("namespace %s does not exist and kup may not create it (%w): create it once with kubectl create namespace %s, as a user who may", Namespace, err, Namespace)
	}
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s: %w", Namespace, err)
	}
	return nil
}

// writeFileAtomic writes data to path through path.part, fsyncing the file
// and then the directory, so a crash leaves the old or the new content,
// never half of one.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp := path + ".part"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
