package action_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/rest"

	"github.com/kup-project/kup/internal/action"
	"github.com/kup-project/kup/internal/checks"
	"github.com/kup-project/kup/internal/plan"
	sandboxprovider "github.com/kup-project/kup/internal/provider/sandbox"
	"github.com/kup-project/kup/internal/report"
	"github.com/kup-project/kup/internal/sandbox"
	"github.com/kup-project/kup/internal/sandbox/sandboxtest"
)

// want is a finding a test expects: its ID and one object it must name.
type want struct {
	id  string
	obj checks.Object
}

func (w want) String() string { return w.id + " " + w.obj.String() }

func hasFinding(fs []checks.Finding, w want) bool {
	for _, f := range fs {
		if f.ID == w.id && slices.Contains(f.Objects, w.obj) {
			return true
		}
	}
	return false
}

func describe(fs []checks.Finding) string {
	var b strings.Builder
	for _, f := range fs {
		obj := ""
		if len(f.Objects) > 0 {
			obj = f.Objects[0].String()
		}
		fmt.Fprintf(&b, "  %-7s %-14s %-50s %s\n", f.Severity, f.ID, obj, f.Message)
	}
	return b.String()
}

func planFor(c *sandbox.Cluster, to string) *action.Plan {
	return &action.Plan{
		Config:         c.RESTConfig(),
		ControlPlane:   &sandboxprovider.ControlPlane{Cluster: c},
		EtcdEndpoint:   fmt.Sprintf("http://127.0.0.1:%d", c.Ports.EtcdClient),
		To:             to,
		MaxUnavailable: intstr.FromInt32(2),
		Kubectl:        "-",
	}
}

// helmRelease encodes a Helm 3 release record as helm's storage driver
// does: base64 of gzip of the release JSON (the Secret's own base64 is
// client-go's business).
func helmRelease(t *testing.T, name, namespace, chart, chartVersion, manifest string) []byte {
	t.Helper()
	rel, err := json.Marshal(map[string]any{
		"name": name, "namespace": namespace, "version": 1,
		"info":     map[string]any{"status": "deployed"},
		"chart":    map[string]any{"metadata": map[string]any{"name": chart, "version": chartVersion}},
		"manifest": manifest,
	})
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := zw.Write(rel); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return []byte(base64.StdEncoding.EncodeToString(gz.Bytes()))
}

// TestPlanFindsSeededProblems: a sandbox seeded with every problem
// --with-problems knows, plus use of APIs the 1.37 hop removes in all four
// places kup looks: a last-applied annotation, a Helm release, a manifests
// directory and the apiserver's deprecated-API metric. Each must be found
// with the right ID and object, nothing may be "could not check", and the
// plan must block until every blocker is waived.
//
// The removed API is the storage.k8s.io/v1beta1 and networking.k8s.io/v1beta1
// betas that 1.37 stops serving (apis.yaml, basis lifecycle): v1.36.3
// still serves networking.k8s.io/v1beta1 when --runtime-config turns it
// on, so a real request to it sets the metric.
func TestPlanFindsSeededProblems(t *testing.T) {
	c := sandboxtest.Start(t, sandbox.Options{Version: "v1.36.3", Nodes: 12, Workloads: "default", WithProblems: true,
		PodReadyDelay: time.Second, APIServerArgs: []string{"--runtime-config=networking.k8s.io/v1beta1=true"}})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cs := c.Client()

	// (a) An object last applied with storage.k8s.io/v1beta1, served now as v1.
	applied := `{"apiVersion":"storage.k8s.io/v1beta1","kind":"VolumeAttributesClass","metadata":{"annotations":{},"name":"fast"},"driverName":"csi.example.com","parameters":{"iops":"3000"}}`
	if _, err := cs.StorageV1().VolumeAttributesClasses().Create(ctx, &storagev1.VolumeAttributesClass{
		ObjectMeta: metav1.ObjectMeta{Name: "fast", Annotations: map[string]string{"kubectl.kubernetes.io/last-applied-configuration": applied}},
		DriverName: "csi.example.com", Parameters: map[string]string{"iops": "3000"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("seeding a VolumeAttributesClass: %v", err)
	}
	// (b) A Helm 3 release whose stored manifest uses the removed beta.
	manifest := "---\n# Source: storage-classes/templates/vac.yaml\napiVersion: storage.k8s.io/v1beta1\nkind: VolumeAttributesClass\nmetadata:\n  name: gold\ndriverName: csi.example.com\n" +
		"---\n# Source: storage-classes/templates/cm.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: storage-classes\n"
	if _, err := cs.CoreV1().Secrets("shop").Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "sh.helm.release.v1.storage-classes.v1", Namespace: "shop",
			Labels: map[string]string{"owner": "helm", "name": "storage-classes", "status": "deployed", "version": "1"}},
		Type: "helm.sh/release.v1",
		Data: map[string][]byte{"release": helmRelease(t, "storage-classes", "shop", "storage-classes", "0.3.0", manifest)},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("seeding a Helm release secret: %v", err)
	}
	// (c) A manifests directory: a beta the hop removes, one long gone, and
	// one deprecated but still served at 1.37.
	dir := filepath.Join(t.TempDir(), "deploy")
	if err := os.MkdirAll(filepath.Join(dir, "network"), 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"network/cidr.yaml": "apiVersion: networking.k8s.io/v1beta1\nkind: ServiceCIDR\nmetadata:\n  name: extra-range\nspec:\n  cidrs: [10.100.0.0/16]\n---\n" +
			"apiVersion: extensions/v1beta1\nkind: Ingress\nmetadata:\n  name: legacy\n  namespace: shop\n",
		"devices.yml": "apiVersion: resource.k8s.io/v1beta2\nkind: DeviceClass\nmetadata:\n  name: gpu\n",
		"app.yaml":    "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: fine\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// (d) A client calling the deprecated beta: the apiserver's metric
	// records it.
	if _, err := cs.Discovery().RESTClient().Get().AbsPath("/apis/networking.k8s.io/v1beta1/servicecidrs").DoRaw(ctx); err != nil {
		t.Fatalf("calling networking.k8s.io/v1beta1 (is --runtime-config applied?): %v", err)
	}

	a := planFor(c, "v1.37.2")
	a.Manifests = []string{dir}
	res, err := a.Run(ctx)
	var re *action.ResultError
	if !asResultError(err, &re) || re.Code != action.CodeBlockers || res == nil {
		t.Fatalf("want a blocked plan (code %s), got err=%v", action.CodeBlockers, err)
	}
	fs := res.Findings
	t.Logf("findings:\n%s", describe(fs))

	pdb := func(ns, name string) checks.Object {
		return checks.Object{Kind: "PodDisruptionBudget", Namespace: ns, Name: name}
	}
	deploy := func(ns, name string) checks.Object {
		return checks.Object{Kind: "Deployment", Namespace: ns, Name: name}
	}
	for _, w := range []want{
		{checks.NodeNotReady, checks.Object{Kind: "Node", Name: sandbox.NodeName(11)}},
		{checks.PDBZeroBudget, pdb("problems", "singleton")},
		{checks.PDBOverlap, pdb("problems", "double-covered-a")},
		{checks.PDBOverlap, pdb("problems", "double-covered-b")},
		{checks.PDBSelectsNothing, pdb("problems", "selects-nothing")},
		{checks.DrainUnmanaged, checks.Object{Kind: "Pod", Namespace: "problems", Name: "unmanaged"}},
		{checks.PodsCrashLooping, deploy("problems", "crashloop")},
		{checks.NoRequests, deploy("problems", "no-requests")},
		{checks.SingleReplica, deploy("problems", "singleton")},
		{checks.DrainEmptyDir, checks.Object{Kind: "StatefulSet", Namespace: "data", Name: "db"}},
		{checks.APIRemovedApplied, checks.Object{Kind: "VolumeAttributesClass", Name: "fast"}},
		{checks.APIRemovedHelm, checks.Object{Kind: "VolumeAttributesClass", Name: "gold"}},
		{checks.APIRemovedHelm, checks.Object{Kind: "HelmRelease", Namespace: "shop", Name: "storage-classes"}},
		{checks.APIRemovedManifest, checks.Object{Kind: "ServiceCIDR", Name: "extra-range"}},
		{checks.APIAlreadyRemoved, checks.Object{Kind: "Ingress", Namespace: "shop", Name: "legacy"}},
		{checks.APIDeprecated, checks.Object{Kind: "DeviceClass", Name: "gpu"}},
		{checks.APIRemovedCalled, checks.Object{Kind: "APIResource", Name: "networking.k8s.io/v1beta1/servicecidrs"}},
	} {
		if !hasFinding(fs, w) {
			t.Errorf("missing finding %s", w)
		}
	}
	for _, f := range fs {
		if f.Severity == checks.Unknown {
			t.Errorf("every source was readable, yet %s could not be checked: %s", f.ID, f.Message)
		}
		if c, _ := checks.Lookup(f.ID); f.Severity != checks.Unknown && f.Severity != c.Severity {
			t.Errorf("%s has severity %s, the catalogue says %s", f.ID, f.Severity, c.Severity)
		}
		if f.ID == checks.APIRemovedHelm && !strings.Contains(f.Message, "helm release shop/storage-classes revision 1 (storage-classes-0.3.0)") {
			t.Errorf("the Helm finding must name release, namespace and chart: %s", f.Message)
		}
		if strings.HasPrefix(f.ID, "KUP-API-00") && f.ID != checks.APIAlreadyRemoved && !strings.Contains(f.Message, "use ") {
			t.Errorf("%s names no replacement: %s", f.ID, f.Message)
		}
	}

	// The waves leave out the nodes no drain can finish: the singleton's
	// node is blocked — by its zero budget, or, when the scheduler put a
	// double-covered pod on the same node, by that (one cause per node).
	singletonNode := ""
	if pods, err := cs.CoreV1().Pods("problems").List(ctx, metav1.ListOptions{LabelSelector: "app=singleton"}); err == nil && len(pods.Items) == 1 {
		singletonNode = pods.Items[0].Spec.NodeName
	}
	blockedByPDB := false
	for _, b := range res.Rollout.Blocked {
		blockedByPDB = blockedByPDB || (b.Cause == plan.BlockedByPDB && slices.Contains(b.PDBs, "problems/singleton")) ||
			(b.Node == singletonNode && singletonNode != "")
	}
	if !blockedByPDB {
		t.Errorf("no node blocked by problems/singleton's budget: %+v", res.Rollout.Blocked)
	}
	if res.Backup == nil || res.Backup.Endpoint != a.EtcdEndpoint {
		t.Errorf("backup: %+v, want an etcd snapshot from %s", res.Backup, a.EtcdEndpoint)
	}
	if res.Requests > 80 {
		t.Errorf("the plan made %d API requests; want one LIST per resource type", res.Requests)
	}

	// JSON carries the same findings.
	var js bytes.Buffer
	if err := action.PrintPlan(&js, res, "json", report.PlanTableOptions{}); err != nil {
		t.Fatal(err)
	}
	var back report.Plan
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatalf("JSON does not parse: %v", err)
	}
	if len(back.Findings) != len(fs) || !back.Verdict.Blocked || back.Kind != report.PlanKind {
		t.Errorf("JSON lost information: %d findings (want %d), verdict %+v", len(back.Findings), len(fs), back.Verdict)
	}

	// Waiving every blocker ID by name unblocks the plan.
	var ids []string
	for _, f := range fs {
		if f.Severity == checks.Blocker && !slices.Contains(ids, f.ID) {
			ids = append(ids, f.ID)
		}
	}
	a.Waive = ids
	res, err = a.Run(ctx)
	if err != nil || res.Verdict.Blocked || res.Verdict.WaivedBlockers == 0 || res.Verdict.WaivedBlockers != res.Verdict.Blockers {
		t.Errorf("with --waive %v: err=%v verdict=%+v, want not blocked", ids, err, res.Verdict)
	}
}

// TestPlanCleanSandbox: the default workloads, no problems. Nothing may
// block or warn, nothing may be left unchecked, and the only information
// is what is true of the default workloads.
func TestPlanCleanSandbox(t *testing.T) {
	c := sandboxtest.Start(t, sandbox.Options{Version: "v1.36.3", Nodes: 6, Workloads: "default", PodReadyDelay: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := planFor(c, "v1.37.2").Run(ctx)
	if err != nil {
		t.Fatalf("clean sandbox: %v\n%s", err, describe(res.Findings))
	}
	allowed := []want{
		// data/db really keeps an emptyDir, which a drain deletes.
		{checks.DrainEmptyDir, checks.Object{Kind: "StatefulSet", Namespace: "data", Name: "db"}},
		// shop/search really spreads over zones, which the model ignores.
		{checks.CapacityUnmodelled, checks.Object{Kind: "Deployment", Namespace: "shop", Name: "search"}},
	}
	// True when it happens, not required: kube-apiserver's cluster-IP
	// repair loop may run at its first start before the kubernetes
	// Service's IP is recorded, and says so in a Warning event
	// (ClusterIPNotAllocated … repairing; seen once, in CI at 2a7f317).
	maybe := []want{{checks.WarningEvents, checks.Object{Kind: "Service", Namespace: "default", Name: "kubernetes"}}}
	for _, f := range res.Findings {
		ok := false
		for _, w := range append(slices.Clone(allowed), maybe...) {
			ok = ok || (f.ID == w.id && len(f.Objects) > 0 && f.Objects[0] == w.obj)
		}
		if !ok {
			t.Errorf("false positive on a clean sandbox: %s %s %v: %s", f.Severity, f.ID, f.Objects, f.Message)
		}
	}
	for _, w := range allowed {
		if !hasFinding(res.Findings, w) {
			t.Errorf("missing true information %s", w)
		}
	}
	if res.Verdict.Blocked || res.NodesToRoll != 6 || len(res.Rollout.Blocked) != 0 {
		t.Errorf("verdict %+v, %d nodes to roll, blocked %v; want 6 nodes in waves, none blocked", res.Verdict, res.NodesToRoll, res.Rollout.Blocked)
	}
	waved := 0
	for _, w := range res.Rollout.Waves {
		waved += len(w.Nodes)
		if len(w.Nodes) > 2 {
			t.Errorf("wave %d has %d nodes, more than --max-unavailable 2", w.Index, len(w.Nodes))
		}
	}
	if waved != 6 {
		t.Errorf("waves cover %d nodes, want 6", waved)
	}
}

// TestPlanUsage: bad input is a usage error carried in the result.
func TestPlanUsage(t *testing.T) {
	ctx := context.Background()
	for _, a := range []*action.Plan{
		{Config: &rest.Config{Host: "https://127.0.0.1:1"}},
		{Config: &rest.Config{Host: "https://127.0.0.1:1"}, To: "one.two"},
		{Config: &rest.Config{Host: "https://127.0.0.1:1"}, To: "v1.37.2", Waive: []string{"KUP-NOPE-001"}},
		{Config: &rest.Config{Host: "https://127.0.0.1:1"}, To: "v1.37.2", MaxUnavailable: intstr.FromString("-5%")},
		{Config: &rest.Config{Host: "https://127.0.0.1:1"}, To: "v1.37.2", Manifests: []string{"/no/such/dir"}},
	} {
		res, err := a.Run(ctx)
		var re *action.ResultError
		if !asResultError(err, &re) || re.Code != action.CodeUsage || res == nil || res.Error == nil || res.Error.Code != action.CodeUsage {
			t.Errorf("%+v: err=%v, want a usage error in the result", a, err)
		}
	}
}
