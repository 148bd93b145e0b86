package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kup-project/kup/internal/provider/eks/eksstandin"
	"github.com/kup-project/kup/internal/report"
	"github.com/kup-project/kup/internal/rollout"
	"github.com/kup-project/kup/internal/sandbox"
	"github.com/kup-project/kup/internal/sandbox/sandboxtest"
)

// standinAWSEnv configures the AWS SDK the way a user's environment does,
// pointing EKS at the stand-in with dummy static credentials.
func standinAWSEnv(t *testing.T, s *eksstandin.Server) {
	t.Setenv("AWS_ENDPOINT_URL_EKS", s.URL())
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDSTANDIN")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "standin-secret")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

// TestEKSApplyWithStandin is the "done when", through the CLI:
// a v1.35.4 "EKS" cluster (stand-in + sandbox) with managed add-ons and
// two managed node groups. First an ERROR upgrade insight for 1.36 shows
// in kup plan with its recommendation and blocks kup apply before any
// change; once EKS no longer reports it, kup apply --provider eks takes
// the cluster to v1.37.2: two control-plane hops, the add-ons updated
// after each, and no PodDisruptionBudget violated (an independent
// watcher). The node groups roll after each hop, not once at the end as
// the issue asked: EKS refuses UpdateClusterVersion while a managed node
// group is behind the cluster (API reference, UpdateClusterVersion), and
// the stand-in does too.
func TestEKSApplyWithStandin(t *testing.T) {
	t.Setenv("KUP_STATE_DIR", t.TempDir())
	t.Setenv("NO_COLOR", "1")
	c := sandboxtest.Start(t, sandbox.Options{Version: "v1.35.4", Nodes: 4, Workloads: "default", PodReadyDelay: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	groups := map[string][]string{
		"ng-a": {sandbox.NodeName(0), sandbox.NodeName(1)},
		"ng-b": {sandbox.NodeName(2), sandbox.NodeName(3)},
	}
	for g, nodes := range groups {
		if err := eksstandin.LabelNodegroup(ctx, c, g, nodes...); err != nil {
			t.Fatal(err)
		}
	}
	blocking := eksstandin.Insight{ID: "a1b2c3d4-0000-4000-8000-000000000001", Name: "Cluster health issues", Category: "UPGRADE_READINESS",
		KubernetesVersion: "1.36", Status: "ERROR", Reason: "The cluster's subnets have too few free IP addresses for the upgrade.",
		Description:    "Checks for any cluster health issues that prevent a successful upgrade.",
		Recommendation: "Free at least five IP addresses in each of the cluster's subnets, then refresh the insights."}
	s, err := eksstandin.Start(eksstandin.Options{Name: "demo", Sandbox: c,
		Releases: map[string]string{"1.35": "v1.35.4", "1.36": "v1.36.3", "1.37": "v1.37.2"},
		Addons:   map[string]string{"vpc-cni": "v1.19.2-eksbuild.1", "coredns": "v1.12.1-eksbuild.2", "kube-proxy": "v1.35.4-eksbuild.1"},
		AddonVersions: []eksstandin.AddonVersion{
			{Addon: "vpc-cni", Version: "v1.19.2-eksbuild.1", Clusters: []string{"1.35"}, Default: true},
			{Addon: "vpc-cni", Version: "v1.20.4-eksbuild.2", Clusters: []string{"1.35", "1.36", "1.37"}},
			{Addon: "vpc-cni", Version: "v1.21.1-eksbuild.1", Clusters: []string{"1.37"}, Default: true},
			{Addon: "coredns", Version: "v1.12.1-eksbuild.2", Clusters: []string{"1.35", "1.36"}, Default: true},
			{Addon: "coredns", Version: "v1.13.1-eksbuild.1", Clusters: []string{"1.36", "1.37"}},
			{Addon: "kube-proxy", Version: "v1.35.4-eksbuild.1", Clusters: []string{"1.35"}, Default: true},
			{Addon: "kube-proxy", Version: "v1.36.3-eksbuild.1", Clusters: []string{"1.36"}, Default: true},
			{Addon: "kube-proxy", Version: "v1.37.2-eksbuild.1", Clusters: []string{"1.37"}, Default: true},
		},
		Nodegroups: []string{"ng-a", "ng-b"},
		Insights:   []eksstandin.Insight{blocking},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	standinAWSEnv(t, s)
	flags := []string{"--kubeconfig", c.Kubeconfig, "--provider", "eks", "--cluster", "demo", "--to", "v1.37.2"}

	// 1. The insight is a blocker in the plan, with EKS's words.
	out, code := kup(t, append([]string{"plan", "-o", "json"}, flags...)...)
	if code != exitBlockers {
		t.Fatalf("kup plan: exit %d, want %d (blockers); output:\n%s", code, exitBlockers, out)
	}
	var plan report.Plan
	if err := json.Unmarshal([]byte(out[:strings.LastIndex(out, "}")+1]), &plan); err != nil {
		t.Fatalf("plan JSON: %v\n%s", err, out)
	}
	found := false
	for _, f := range plan.Findings {
		if f.ID == "KUP-PROV-001" && f.Severity == "blocker" && f.Action == blocking.Recommendation && strings.Contains(f.Message, blocking.Reason) {
			found = true
		}
	}
	if !found {
		t.Fatalf("kup plan does not show the ERROR insight as a blocker with its recommendation:\n%s", out)
	}
	out, _ = kup(t, append([]string{"plan"}, flags...)...)
	if !strings.Contains(out, "Free at least five IP addresses") {
		t.Errorf("the plan table does not show the insight's recommendation:\n%s", out)
	}
	if !strings.Contains(out, "EKS runs etcd") {
		t.Errorf("the plan does not say why there is no etcd snapshot on EKS:\n%s", out)
	}

	// 2. kup apply refuses before changing anything.
	out, code = kup(t, append([]string{"apply", "--eks-poll", "500ms"}, flags...)...)
	if code == exitOK || !strings.Contains(out, "KUP-PROV-001") {
		t.Fatalf("kup apply with an ERROR insight for the next hop: exit %d; want a refusal naming KUP-PROV-001:\n%s", code, out)
	}
	if n := s.Calls()["UpdateClusterVersion"]; n != 0 {
		t.Fatalf("kup apply called UpdateClusterVersion %d times despite the blocker", n)
	}
	t.Logf("refused as expected:\n%s", lastLines(out, 6))

	// 3. EKS's next refresh no longer finds the problem: the upgrade runs,
	// watched by an independent PDB referee.
	s.SetInsights()
	cs := c.Client()
	w, err := rollout.Watch(ctx, cs)
	if err != nil {
		t.Fatal(err)
	}
	reportDir := t.TempDir()
	start := time.Now()
	out, code = kup(t, append([]string{"apply", "--eks-poll", "500ms", "--report-dir", reportDir, "--discard-journal"}, flags...)...)
	w.Stop()
	t.Logf("kup apply took %s:\n%s", time.Since(start).Round(time.Second), out)
	if code != exitOK {
		t.Fatalf("kup apply: exit %d", code)
	}
	if v := w.Violations(); len(v) > 0 {
		t.Errorf("PDB violations seen by the independent watcher: %+v", v)
	}
	calls := s.Calls()
	if calls["UpdateClusterVersion"] != 2 {
		t.Errorf("UpdateClusterVersion called %d times, want 2 (1.35 → 1.36 → 1.37)", calls["UpdateClusterVersion"])
	}
	if calls["UpdateNodegroupVersion"] != 4 {
		t.Errorf("UpdateNodegroupVersion called %d times, want 4 (each group to 1.36 before the second hop, then to 1.37)", calls["UpdateNodegroupVersion"])
	}
	// Add-ons per hop: vpc-cni 1.19 → 1.20 (hop 1) → 1.21 (hop 2);
	// coredns stays on 1.12 at 1.36 (its default there) → 1.13 at 1.37;
	// kube-proxy follows each minor: 5 updates in all.
	if calls["UpdateAddon"] != 5 {
		t.Errorf("UpdateAddon called %d times, want 5", calls["UpdateAddon"])
	}
	for name, want := range map[string]string{"vpc-cni": "v1.21.1-eksbuild.1", "coredns": "v1.13.1-eksbuild.1", "kube-proxy": "v1.37.2-eksbuild.1"} {
		if got, st := s.Addon(name); got != want || st != "ACTIVE" {
			t.Errorf("add-on %s: %s %s, want %s ACTIVE", name, got, st, want)
		}
	}
	for g := range groups {
		if v, _ := s.Nodegroup(g); v != "1.37" {
			t.Errorf("node group %s at %s, want 1.37", g, v)
		}
	}
	if v, err := c.ServerVersion(ctx); err != nil || v != "v1.37.2" {
		t.Errorf("API server %s (%v), want v1.37.2", v, err)
	}
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes.Items {
		if n.Status.NodeInfo.KubeletVersion != "v1.37.2" || n.Spec.Unschedulable {
			t.Errorf("node %s: kubelet %s, cordoned %v; want v1.37.2, schedulable", n.Name, n.Status.NodeInfo.KubeletVersion, n.Spec.Unschedulable)
		}
	}
	var rep report.UpgradeReport
	data, err := os.ReadFile(filepath.Join(reportDir, "upgrade-report.json"))
	if err != nil || json.Unmarshal(data, &rep) != nil {
		t.Fatalf("report: %v", err)
	}
	if rep.Reason != "" {
		t.Errorf("a succeeded report carries a reason: %q", rep.Reason)
	}
	if rep.Outcome != "succeeded" || len(rep.Hops) != 2 || rep.Rollout.PDBViolations != 0 || rep.Rollout.Upgraded != 8 {
		t.Errorf("report: outcome %s, %d hops, %d PDB violations, %d node upgrades; want succeeded, 2, 0, 8 (4 nodes, twice)", rep.Outcome, len(rep.Hops), rep.Rollout.PDBViolations, rep.Rollout.Upgraded)
	}
	t.Logf("measured: %d hops, %d node-group waves, worst availability %.2f, %d PDB violations", len(rep.Hops), len(rep.Waves), rep.Rollout.WorstAvailability, len(w.Violations()))

	// 4. Rollback. Eight days after the upgrade, EKS's window is closed:
	// kup refuses, says why, and changes nothing.
	rollback := []string{"rollback", "--kubeconfig", c.Kubeconfig, "--provider", "eks", "--cluster", "demo", "--eks-poll", "500ms"}
	s.SetUpgradedAt(time.Now().Add(-8 * 24 * time.Hour))
	before := s.Calls()
	out, code = kup(t, rollback...)
	if code == exitOK || !strings.Contains(out, "outside the rollback window") || !strings.Contains(out, "within 7 days") {
		t.Fatalf("kup rollback 8 days after the upgrade: exit %d; want a refusal giving the 7-day window:\n%s", code, out)
	}
	if after := s.Calls(); after["UpdateNodegroupVersion"] != before["UpdateNodegroupVersion"] || after["UpdateClusterVersion"] != before["UpdateClusterVersion"] {
		t.Fatalf("a refused rollback changed something: calls %v → %v", before, after)
	}
	t.Logf("refused outside the window: %s", lastLines(out, 1))

	// An hour after it: node groups back to 1.36, then the control plane
	// (the stand-in, as EKS, refuses the control plane while a node
	// group is newer than the target, so success proves the order).
	s.SetUpgradedAt(time.Now().Add(-time.Hour))
	w, err = rollout.Watch(ctx, cs)
	if err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	out, code = kup(t, rollback...)
	w.Stop()
	t.Logf("kup rollback took %s:\n%s", time.Since(start).Round(time.Second), out)
	if code != exitOK {
		t.Fatalf("kup rollback inside the window: exit %d", code)
	}
	if v := w.Violations(); len(v) > 0 {
		t.Errorf("PDB violations during the rollback: %+v", v)
	}
	if v, err := c.ServerVersion(ctx); err != nil || v != "v1.36.3" {
		t.Errorf("API server after the rollback: %s (%v), want v1.36.3", v, err)
	}
	for g := range groups {
		if v, _ := s.Nodegroup(g); v != "1.36" {
			t.Errorf("node group %s at %s after the rollback, want 1.36", g, v)
		}
	}
	nodes, err = cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes.Items {
		if n.Status.NodeInfo.KubeletVersion != "v1.36.3" || n.Spec.Unschedulable {
			t.Errorf("node %s after the rollback: kubelet %s, cordoned %v", n.Name, n.Status.NodeInfo.KubeletVersion, n.Spec.Unschedulable)
		}
	}
	// EKS goes back one minor only.
	out, code = kup(t, rollback...)
	if code == exitOK || !strings.Contains(out, "already rolled back") {
		t.Errorf("a second rollback: exit %d; want a refusal:\n%s", code, out)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
