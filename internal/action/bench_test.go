package action_test

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kup-project/kup/internal/action"
	sandboxprovider "github.com/kup-project/kup/internal/provider/sandbox"
	"github.com/kup-project/kup/internal/sandbox"
	"github.com/kup-project/kup/internal/sandbox/sandboxtest"
)

// BenchmarkVersions1000Nodes measures `kup versions --to` on a sandbox of
// 1,000 nodes: wall time per run, API requests per run, and the ratio to
// a single bare LIST of the nodes (the floor any inventory pays).
//
//	go test -run '^$' -bench Versions1000 -benchtime 10x ./internal/action/
func BenchmarkVersions1000Nodes(b *testing.B) {
	c := sandboxtest.Start(b, sandbox.Options{Version: "v1.36.3", NodeVersion: "v1.36.3,v1.35.4,v1.34.4", Nodes: 1000})
	ctx := context.Background()
	cp := &sandboxprovider.ControlPlane{Cluster: c}

	// The floor: one LIST of all nodes with the same client settings.
	const floorRuns = 5
	start := time.Now()
	for range floorRuns {
		if _, err := c.Client().CoreV1().Nodes().List(ctx, metav1.ListOptions{ResourceVersion: "0"}); err != nil {
			b.Fatal(err)
		}
	}
	floor := time.Since(start) / floorRuns

	var requests int64
	b.ResetTimer()
	for range b.N {
		a := &action.Versions{Config: c.RESTConfig(), ControlPlane: cp, To: "v1.37.2", Kubectl: "-"}
		res, err := a.Run(ctx)
		if err != nil {
			b.Fatal(err)
		}
		requests = res.Requests
	}
	b.StopTimer()
	perOp := b.Elapsed() / time.Duration(b.N)
	b.ReportMetric(float64(requests), "requests/op")
	b.ReportMetric(float64(perOp.Milliseconds()), "ms/op")
	b.ReportMetric(float64(perOp)/float64(floor), "x-bare-node-list")
}
