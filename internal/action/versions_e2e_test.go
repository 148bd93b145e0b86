package action_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/kup-project/kup/internal/action"
	sandboxprovider "github.com/kup-project/kup/internal/provider/sandbox"
	"github.com/kup-project/kup/internal/report"
	"github.com/kup-project/kup/internal/sandbox"
	"github.com/kup-project/kup/internal/sandbox/sandboxtest"
)

// TestVersionsOnMixedSandbox: a v1.36.3 control plane whose nodes run
// v1.36.3 and v1.34.4 — the inventory counts each, the skew verdict is
// clean (v1.34 is two minors behind, within n-3), and the path to v1.37.2
// is one hop with every node rolled once, straight to the target.
func TestVersionsOnMixedSandbox(t *testing.T) {
	c := sandboxtest.Start(t, sandbox.Options{Version: "v1.36.3", NodeVersion: "v1.36.3,v1.34.4", Nodes: 6})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a := &action.Versions{Config: c.RESTConfig(), ControlPlane: &sandboxprovider.ControlPlane{Cluster: c}, To: "v1.37.2", Kubectl: "-"}
	res, err := a.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{
		"kube-apiserver v1.36.3": 1, "kube-controller-manager v1.36.3": 1, "kube-scheduler v1.36.3": 1,
		"kubelet v1.36.3": 3, "kubelet v1.34.4": 3, "etcd " + sandbox.DefaultEtcdVersion: 1,
	}
	got := map[string]int{}
	for _, g := range res.Groups {
		got[g.Component+" "+g.Version] = g.Count
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("inventory: %s counted %d, want %d (all: %v)", k, got[k], n, got)
		}
	}
	if !res.SkewOK || len(res.Skew) != 0 {
		t.Errorf("skew: want clean, got %v", res.Skew)
	}
	p := res.Path
	if p == nil {
		t.Fatal("no path")
	}
	if len(p.Hops) != 1 || p.Hops[0].From.String() != "v1.36.3" || p.Hops[0].To.String() != "v1.37.2" {
		t.Errorf("hops: %+v, want one hop v1.36.3 → v1.37.2", p.Hops)
	}
	if len(p.FinalNodeRolls) != 6 || p.NodeRolls != 6 {
		t.Errorf("want every one of 6 nodes rolled once at the end, got %d final rolls, %d total", len(p.FinalNodeRolls), p.NodeRolls)
	}
	for _, r := range p.FinalNodeRolls {
		if r.To.String() != "v1.37.2" {
			t.Errorf("node %s rolled to %s, want v1.37.2", r.Node, r.To)
		}
	}
	if res.Requests == 0 || res.Requests > 20 {
		t.Errorf("the read made %d API requests; want a handful (one LIST per type)", res.Requests)
	}

	var table bytes.Buffer
	if err := action.Print(&table, res, "table", false); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"kubelet                   v1.34.4", "3 node(s) v1.34.4 → v1.37.2", "hop 1: control plane v1.36.3 → v1.37.2", "within the Kubernetes version-skew policy"} {
		if !strings.Contains(table.String(), line) {
			t.Errorf("table output lacks %q:\n%s", line, table.String())
		}
	}
	var js bytes.Buffer
	if err := action.Print(&js, res, "json", false); err != nil {
		t.Fatal(err)
	}
	var back report.Versions
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatalf("JSON output does not parse: %v", err)
	}
	if back.Path == nil || len(back.Path.Hops) != 1 || len(back.Groups) != len(res.Groups) || !back.SkewOK {
		t.Errorf("JSON lost information: %s", js.String())
	}

	// Bad input is reported in the result, with a code, in JSON too.
	for _, tc := range []struct{ to, code string }{{"v1.36.3", action.CodeNotUpgradable}, {"v1.35.4", action.CodeNotUpgradable}, {"v1.99.0", action.CodeNotUpgradable}, {"one.two", action.CodeUsage}} {
		a := &action.Versions{Config: c.RESTConfig(), To: tc.to, Kubectl: "-"}
		res, err := a.Run(ctx)
		var re *action.ResultError
		if err == nil || res == nil || res.Error == nil || res.Error.Code != tc.code {
			t.Errorf("--to %s: err=%v result=%+v, want code %s", tc.to, err, res, tc.code)
		} else if !asResultError(err, &re) || re.Code != tc.code {
			t.Errorf("--to %s: error %v does not carry code %s", tc.to, err, tc.code)
		}
	}
}

// TestVersionsUnreachableCluster: a kubeconfig that points nowhere gives
// an error naming the address.
func TestVersionsUnreachableCluster(t *testing.T) {
	a := &action.Versions{Config: restConfigFor("https://127.0.0.1:1"), Kubectl: "-"}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := a.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") || !strings.Contains(err.Error(), "--kubeconfig") {
		t.Fatalf("want an error naming the address and the flag to fix, got %v", err)
	}
}
