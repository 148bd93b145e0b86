package action

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/kup-project/kup/internal/backup"
)

// The golden files are rewritten with -update (defined once, whichever
// test file of the package gets there first).
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite golden files")
	}
}

func updating() bool { return flag.Lookup("update").Value.String() == "true" }

// stored encodes obj the way kube-apiserver writes it to etcd: protobuf
// behind the "k8s\x00" magic.
func stored(t testing.TB, obj runtime.Object) []byte {
	t.Helper()
	var buf bytes.Buffer
	s := protobuf.NewSerializer(scheme.Scheme, scheme.Scheme)
	if err := s.Encode(obj, &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestUIDOf(t *testing.T) {
	ns := &corev1.Namespace{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"}, ObjectMeta: metav1.ObjectMeta{Name: "shop", UID: "0b7c1a2e-ns"}}
	dep := &appsv1.Deployment{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: "cart", Namespace: "shop", UID: "5d9-dep", Labels: map[string]string{"app": "cart"}, Annotations: map[string]string{"a": strings.Repeat("x", 300)}},
		Spec:       appsv1.DeploymentSpec{Replicas: new(int32(6))}}
	for _, tc := range []struct {
		name  string
		value []byte
		want  string
	}{
		{"protobuf namespace", stored(t, ns), "0b7c1a2e-ns"},
		{"protobuf deployment with long metadata", stored(t, dep), "5d9-dep"},
		{"JSON custom resource", []byte(`{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w","uid":"cr-uid-1"}}`), "cr-uid-1"},
		{"encrypted at rest", []byte("k8s:enc:aescbc:v1:key1:\x00\x01\x02"), ""},
		{"truncated protobuf", stored(t, ns)[:12], ""},
		{"empty", nil, ""},
	} {
		if got := uidOf(tc.value); got != tc.want {
			t.Errorf("%s: uidOf = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestTerminating: an object with a deletionTimestamp is recognised in
// protobuf and JSON, so a restore does not count its finished deletion
// as a lost object.
func TestTerminating(t *testing.T) {
	now := metav1.Now()
	going := &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}, ObjectMeta: metav1.ObjectMeta{Name: "cart-1", Namespace: "shop", UID: "p1", DeletionTimestamp: &now}}
	staying := &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}, ObjectMeta: metav1.ObjectMeta{Name: "cart-2", Namespace: "shop", UID: "p2", Labels: map[string]string{"app": "cart"}}}
	for _, tc := range []struct {
		name  string
		value []byte
		want  bool
	}{
		{"protobuf pod being deleted", stored(t, going), true},
		{"protobuf pod", stored(t, staying), false},
		{"JSON with deletionTimestamp", []byte(`{"metadata":{"name":"w","deletionTimestamp":"2026-11-25T20:00:00Z"}}`), true},
		{"JSON without", []byte(`{"metadata":{"name":"w"}}`), false},
		{"encrypted at rest", []byte("k8s:enc:aescbc:v1:key1:\x00"), false},
	} {
		if got := terminating(tc.value); got != tc.want {
			t.Errorf("%s: terminating = %v, want %v", tc.name, got, tc.want)
		}
	}
	// Compared after a restore: the finished deletion is not missing.
	checks := CompareObjects(
		map[string]Object{"/registry/pods/shop/cart-1": {Resource: "pods", UID: "p1", Terminating: true}, "/registry/pods/shop/cart-2": {Resource: "pods", UID: "p2"}},
		map[string]Object{"/registry/pods/shop/cart-2": {Resource: "pods", UID: "p2"}})
	if len(checks) != 1 || len(checks[0].Missing) != 0 || len(checks[0].Finished) != 1 || checks[0].SameUID != 1 {
		t.Errorf("checks %+v: want cart-1 finished, cart-2 back, nothing missing", checks)
	}
}

// FuzzUIDOf: whatever etcd holds, reading a UID never panics.
func FuzzUIDOf(f *testing.F) {
	f.Add(stored(f, &corev1.Namespace{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"}, ObjectMeta: metav1.ObjectMeta{Name: "a", UID: "u"}}))
	f.Add([]byte(`{"metadata":{"uid":"x"}}`))
	f.Add([]byte("k8s\x00\x12\xff\xff\xff\xff\x0f"))
	f.Fuzz(func(t *testing.T, v []byte) {
		_ = uidOf(v)
	})
}

func TestResourceOf(t *testing.T) {
	for key, want := range map[string]string{
		"/registry/namespaces/shop":                            "namespaces",
		"/registry/deployments/shop/cart":                      "deployments",
		"/registry/minions/node-000":                           "minions",
		"/registry/services/specs/shop/cart":                   "services/specs",
		"/registry/services/endpoints/shop/cart":               "services/endpoints",
		"/registry/apiregistration.k8s.io/apiservices/v1.apps": "apiregistration.k8s.io/apiservices",
		"/registry/example.com/widgets/shop/w":                 "example.com/widgets",
		"/registry/ranges/serviceips":                          "ranges",
	} {
		if got := resourceOf(key); got != want {
			t.Errorf("resourceOf(%q) = %q, want %q", key, got, want)
		}
	}
}

func TestCompareObjects(t *testing.T) {
	snap := map[string]Object{
		"/registry/namespaces/shop":       {Resource: "namespaces", UID: "ns-1"},
		"/registry/deployments/shop/cart": {Resource: "deployments", UID: "d-1"},
		"/registry/deployments/shop/gone": {Resource: "deployments", UID: "d-2"},
		"/registry/deployments/shop/new":  {Resource: "deployments", UID: "d-3"},
		"/registry/events/shop/e1":        {Resource: "events", UID: "e-1"},
	}
	after := map[string]Object{
		"/registry/namespaces/shop":       {Resource: "namespaces", UID: "ns-1"},
		"/registry/deployments/shop/cart": {Resource: "deployments", UID: "d-1"},
		"/registry/deployments/shop/new":  {Resource: "deployments", UID: "d-9"},
		"/registry/deployments/shop/more": {Resource: "deployments", UID: "d-4"},
		"/registry/leases/kube-system/x":  {Resource: "leases", UID: "l-1"},
	}
	got := CompareObjects(snap, after)
	want := []ResourceCheck{
		{Resource: "deployments", InSnapshot: 3, After: 3, SameUID: 1, Missing: []string{"shop/gone"}, Changed: []string{"shop/new"}},
		{Resource: "events", InSnapshot: 1, Missing: []string{"shop/e1"}, Managed: true},
		{Resource: "leases", After: 1, Managed: true},
		{Resource: "namespaces", InSnapshot: 1, After: 1, SameUID: 1},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("CompareObjects =\n%+v\nwant\n%+v", got, want)
	}
}

func TestDefaultBackupDir(t *testing.T) {
	state := t.TempDir()
	t.Setenv("KUP_STATE_DIR", state)
	for cluster, want := range map[string]string{
		"sandbox-default":           "sandbox-default",
		"https://10.0.0.1:6443":     "https_10.0.0.1_6443",
		"arn:aws:eks:eu/prod":       "arn_aws_eks_eu_prod",
		"../../etc":                 "etc",
		"":                          "cluster",
		"gke_proj_europe-west1_dev": "gke_proj_europe-west1_dev",
	} {
		got, err := DefaultBackupDir(cluster)
		if err != nil {
			t.Fatal(err)
		}
		if want := filepath.Join(state, "backups", want); got != want {
			t.Errorf("DefaultBackupDir(%q) = %s, want %s", cluster, got, want)
		}
	}
	if got := backupFileName(time.Date(2026, 11, 25, 16, 8, 9, 0, time.FixedZone("CET", 3600))); got != "20261125T150809Z.db" {
		t.Errorf("backupFileName = %s", got)
	}
}

func TestManualRestoreProcedure(t *testing.T) {
	m := &backup.Manifest{Cluster: "prod", Endpoint: "https://10.0.0.1:2379", EtcdVersion: "3.6.16", KubernetesVersions: []string{"v1.36.3"},
		Created: time.Date(2026, 11, 25, 15, 0, 0, 0, time.UTC)}
	st := &backup.Status{Revision: 12345, TotalKeys: 678, SHA256: "ab12"}
	got := ManualRestoreProcedure("/srv/backups/prod/20261125T150000Z.db", m, st, time.Date(2026, 11, 26, 9, 30, 0, 0, time.UTC))
	golden := filepath.Join("testdata", "manual-restore.golden")
	if updating() {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("procedure differs from %s (run with -update if intended):\n%s", golden, got)
	}
	for _, s := range []string{"etcdutl snapshot restore 20261125T150000Z.db", "--data-dir /var/lib/etcd-restored-20261126T093000Z", "Stop every kube-apiserver", "--bump-revision"} {
		if !strings.Contains(got, s) {
			t.Errorf("procedure lacks %q", s)
		}
	}
}
