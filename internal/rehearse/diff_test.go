package rehearse

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestDifferences(t *testing.T) {
	sts := &unstructured.Unstructured{Object: map[string]any{"metadata": map[string]any{"name": "db", "namespace": "data"},
		"spec": map[string]any{"volumeClaimTemplates": []any{map[string]any{"metadata": map[string]any{"name": "data"}}}}}}
	secret := &unstructured.Unstructured{Object: map[string]any{"metadata": map[string]any{"name": "s", "namespace": "data"}}}
	src := &Source{
		AllNodes: make([]corev1.Node, 10), Nodes: make([]corev1.Node, 4),
		Scope:   ReadOptions{Namespaces: []string{"data"}},
		Objects: []Object{{Kind: kind("StatefulSet"), Obj: sts}, {Kind: kind("Secret"), Obj: secret}},
		Skipped: []Skip{{Key: "ReplicaSet data/x", Reason: "recreated by its owner Deployment/x"}, {Key: "ConfigMap data/kube-root-ca.crt", Reason: reasonControllerOwn},
			{Key: "Pod kube-system/etcd-cp", Reason: "a static pod's mirror (the twin's nodes run no static pods)"}},
	}
	b := &Built{Failed: []Failure{{Key: "Service quota/b", Reason: "exceeded quota"}}, NotSettled: []string{"Deployment data/web: 1 available, 3 in the real cluster"}}
	got := Differences(src, b, "the twin runs v1.35.4, the nearest patch", Delays{ByWorkload: map[string]time.Duration{"StatefulSet data/db": time.Second}, Measured: 3, Cluster: time.Second})
	var all []string
	for _, d := range got {
		all = append(all, d.What)
	}
	text := strings.Join(all, "\n")
	for _, want := range []string{"nearest patch", "node sample: 4 of the 10 nodes", "namespaces limited to data", "1 object(s) not copied: a static pod's mirror",
		"1 Secret(s) are empty placeholders", "StatefulSet data/db use volume claims", "Service quota/b could not be written", "Deployment data/web: 1 available", "measured from 3 pods"} {
		if !strings.Contains(text, want) {
			t.Errorf("differences lack %q:\n%s", want, text)
		}
	}
	for _, not := range []string{"recreated by its owner", reasonControllerOwn} {
		if strings.Contains(text, not) {
			t.Errorf("differences list what the twin makes itself (%q):\n%s", not, text)
		}
	}
}
