package eks_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awseks "github.com/aws/aws-sdk-go-v2/service/eks"
	"github.com/aws/aws-sdk-go-v2/service/eks/types"

	"github.com/kup-project/kup/internal/provider/eks"
	"github.com/kup-project/kup/internal/provider/eks/eksstandin"
	"github.com/kup-project/kup/internal/sandbox"
	"github.com/kup-project/kup/internal/sandbox/sandboxtest"
)

// releases are the sandbox releases the stand-in runs for each EKS minor.
var releases = map[string]string{"1.35": "v1.35.4", "1.36": "v1.36.3", "1.37": "v1.37.2"}

// addonCatalogue is a small DescribeAddonVersions catalogue: vpc-cni has
// a minor per Kubernetes minor (so a hop moves it through one minor),
// coredns two builds.
var addonCatalogue = []eksstandin.AddonVersion{
	{Addon: "vpc-cni", Version: "v1.19.2-eksbuild.1", Clusters: []string{"1.35"}, Default: true},
	{Addon: "vpc-cni", Version: "v1.20.0-eksbuild.1", Clusters: []string{"1.35", "1.36"}},
	{Addon: "vpc-cni", Version: "v1.20.4-eksbuild.2", Clusters: []string{"1.35", "1.36", "1.37"}},
	{Addon: "vpc-cni", Version: "v1.21.1-eksbuild.1", Clusters: []string{"1.36", "1.37"}, Default: true},
	{Addon: "coredns", Version: "v1.12.1-eksbuild.2", Clusters: []string{"1.35", "1.36"}, Default: true},
	{Addon: "coredns", Version: "v1.13.1-eksbuild.1", Clusters: []string{"1.36", "1.37"}},
	{Addon: "kube-proxy", Version: "v1.35.4-eksbuild.1", Clusters: []string{"1.35"}, Default: true},
	{Addon: "kube-proxy", Version: "v1.36.3-eksbuild.1", Clusters: []string{"1.36"}, Default: true},
	{Addon: "kube-proxy", Version: "v1.37.2-eksbuild.1", Clusters: []string{"1.37"}, Default: true},
}

// awsEnv points the SDK's standard configuration at the stand-in, with
// dummy static credentials: the way a user's environment configures kup.
func awsEnv(t *testing.T, s *eksstandin.Server) {
	t.Setenv("AWS_ENDPOINT_URL_EKS", s.URL())
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDSTANDIN")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "standin-secret")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

var fastPoll = eks.Poll{Initial: 200 * time.Millisecond, Max: 2 * time.Second, Deadline: 10 * time.Minute}

func TestControlPlaneHopWithStandin(t *testing.T) {
	c := sandboxtest.Start(t, sandbox.Options{Version: "v1.35.4", Nodes: 2})
	s, err := eksstandin.Start(eksstandin.Options{Name: "demo", Sandbox: c, Releases: releases,
		Addons:        map[string]string{"vpc-cni": "v1.19.2-eksbuild.1", "coredns": "v1.12.1-eksbuild.2", "kube-proxy": "v1.35.4-eksbuild.1"},
		AddonVersions: addonCatalogue})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	awsEnv(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	p, err := eks.New(ctx, "demo", "", c.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	p.Poll = fastPoll
	p.Progress = func(s string) { t.Log(s) }

	// Skipping a minor: EKS refuses with InvalidParameterException, and
	// kup shows EKS's error as it came.
	_, err = p.API.UpdateClusterVersion(ctx, &awseks.UpdateClusterVersionInput{Name: aws.String("demo"), Version: aws.String("1.37")})
	var invalid *types.InvalidParameterException
	if !errors.As(err, &invalid) {
		t.Fatalf("UpdateClusterVersion 1.35 → 1.37: want InvalidParameterException, got %v", err)
	}
	t.Logf("skip refused: %v", err)

	hop := make(chan error, 1)
	go func() { hop <- p.Upgrade(ctx, "v1.36.3") }()
	// Once kup's update has started, a second one is refused with
	// ResourceInUseException.
	for s.Calls()["UpdateClusterVersion"] < 2 {
		time.Sleep(20 * time.Millisecond)
	}
	var inUse *types.ResourceInUseException
	for deadline := time.Now().Add(30 * time.Second); ; {
		_, err := p.API.UpdateClusterVersion(ctx, &awseks.UpdateClusterVersionInput{Name: aws.String("demo"), Version: aws.String("1.36")})
		if errors.As(err, &inUse) {
			t.Logf("second update refused: %v", err)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ResourceInUseException for a second update while one runs (last: %v)", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := <-hop; err != nil {
		t.Fatalf("hop to 1.36: %v", err)
	}
	v, err := c.ServerVersion(ctx)
	if err != nil || v != "v1.36.3" {
		t.Fatalf("sandbox API server after the hop: %q, %v; want v1.36.3", v, err)
	}
	comps, err := p.Components(ctx)
	if err != nil || len(comps) != 1 || comps[0].Version != "v1.36.3" {
		t.Fatalf("Components after the hop: %+v, %v", comps, err)
	}
	// Add-ons followed the hop: vpc-cni one minor at a time to 1.36's
	// default, kube-proxy to 1.36's, coredns (already compatible and
	// the default) left alone.
	for name, want := range map[string]string{"vpc-cni": "v1.21.1-eksbuild.1", "kube-proxy": "v1.36.3-eksbuild.1", "coredns": "v1.12.1-eksbuild.2"} {
		if got, status := s.Addon(name); got != want || status != "ACTIVE" {
			t.Errorf("add-on %s: %s %s, want %s ACTIVE", name, got, status, want)
		}
	}
	if n := s.Calls()["UpdateAddon"]; n != 3 {
		t.Errorf("UpdateAddon called %d times, want 3 (vpc-cni 1.19→1.20→1.21, kube-proxy)", n)
	}
	h, err := p.Health(ctx)
	if err != nil || !h.Healthy() {
		t.Fatalf("Health after the hop: %+v, %v", h, err)
	}
	// Upgrade is idempotent: again to the same minor changes nothing.
	before := s.Calls()["UpdateClusterVersion"]
	if err := p.Upgrade(ctx, "v1.36.3"); err != nil {
		t.Fatal(err)
	}
	if after := s.Calls()["UpdateClusterVersion"]; after != before {
		t.Errorf("a second Upgrade to the same minor called UpdateClusterVersion again")
	}
}
