package rehearse

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func kind(name string) Kind {
	for _, k := range Kinds {
		if k.Kind == name {
			return k
		}
	}
	panic(name)
}

func obj(t *testing.T, s string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := json.Unmarshal([]byte(s), &u.Object); err != nil {
		t.Fatal(err)
	}
	return u
}

func TestPrepare(t *testing.T) {
	for _, tc := range []struct {
		name, kind, in string
		skip           string // substring of the skip reason; "" = copied
		want           string // the object after Prepare (JSON), when copied
	}{
		{
			name: "server fields, owner references and status are stripped",
			kind: "Deployment",
			in: `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"shop","uid":"u1","resourceVersion":"9","generation":3,"creationTimestamp":"2026-01-01T00:00:00Z","managedFields":[{}],
			  "ownerReferences":[{"apiVersion":"x/v1","kind":"App","name":"a","uid":"u0"}],"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{}"}},
			  "spec":{"replicas":3},"status":{"availableReplicas":3}}`,
			want: `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"shop","annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{}"}},"spec":{"replicas":3}}`,
		},
		{
			name: "a ReplicaSet owned by a Deployment is left to it",
			kind: "ReplicaSet",
			in:   `{"metadata":{"name":"web-1","namespace":"shop","ownerReferences":[{"kind":"Deployment","name":"web","controller":true}]}}`,
			skip: "recreated by its owner Deployment/web",
		},
		{
			name: "an ownerless ReplicaSet is copied",
			kind: "ReplicaSet",
			in:   `{"metadata":{"name":"rs","namespace":"shop"},"spec":{"replicas":1}}`,
			want: `{"metadata":{"name":"rs","namespace":"shop"},"spec":{"replicas":1}}`,
		},
		{
			name: "a Job loses the selector and labels naming the real Job's UID",
			kind: "Job",
			in: `{"metadata":{"name":"j","namespace":"n","labels":{"controller-uid":"u","batch.kubernetes.io/controller-uid":"u","job-name":"j"}},
			  "spec":{"selector":{"matchLabels":{"controller-uid":"u"}},"manualSelector":false,"template":{"metadata":{"labels":{"controller-uid":"u","job-name":"j"}}}}}`,
			want: `{"metadata":{"name":"j","namespace":"n","labels":{"job-name":"j"}},"spec":{"template":{"metadata":{"labels":{"job-name":"j"}}}}}`,
		},
		{
			name: "a Service gets its cluster IP from the twin",
			kind: "Service",
			in:   `{"metadata":{"name":"s","namespace":"n"},"spec":{"clusterIP":"10.0.0.5","clusterIPs":["10.0.0.5"],"ports":[{"port":80}]}}`,
			want: `{"metadata":{"name":"s","namespace":"n"},"spec":{"ports":[{"port":80}]}}`,
		},
		{
			name: "a headless Service stays headless",
			kind: "Service",
			in:   `{"metadata":{"name":"s","namespace":"n"},"spec":{"clusterIP":"None","clusterIPs":["None"]}}`,
			want: `{"metadata":{"name":"s","namespace":"n"},"spec":{"clusterIP":"None","clusterIPs":["None"]}}`,
		},
		{
			name: "the kubernetes Service is the twin's own",
			kind: "Service",
			in:   `{"metadata":{"name":"kubernetes","namespace":"default"}}`,
			skip: "serves its own",
		},
		{
			name: "a mirror pod is not recreated",
			kind: "Pod",
			in:   `{"metadata":{"name":"etcd-cp1","namespace":"kube-system","annotations":{"kubernetes.io/config.mirror":"x"}}}`,
			skip: "static pod",
		},
		{
			name: "an unmanaged pod keeps its node, loses the priority admission computed",
			kind: "Pod",
			in:   `{"metadata":{"name":"p","namespace":"n"},"spec":{"nodeName":"node-1","priority":1000,"preemptionPolicy":"Never","priorityClassName":"high"},"status":{"phase":"Running"}}`,
			want: `{"metadata":{"name":"p","namespace":"n"},"spec":{"nodeName":"node-1","priorityClassName":"high"}}`,
		},
		{
			name: "kup's own namespace is never copied",
			kind: "ConfigMap",
			in:   `{"metadata":{"name":"kup-journal","namespace":"kup-system"}}`,
			skip: "kup's own",
		},
		{
			name: "a conversion webhook is turned off",
			kind: "CustomResourceDefinition",
			in:   `{"metadata":{"name":"a.b"},"spec":{"conversion":{"strategy":"Webhook","webhook":{"clientConfig":{"url":"https://x"}}}}}`,
			want: `{"metadata":{"name":"a.b"},"spec":{"conversion":{"strategy":"None"}}}`,
		},
		{
			name: "a service account token is never copied",
			kind: "Secret",
			in:   `{"metadata":{"name":"t","namespace":"n"},"type":"kubernetes.io/service-account-token"}`,
			skip: "token",
		},
		{
			name: "an opaque Secret becomes an empty placeholder with its labels",
			kind: "Secret",
			in:   `{"metadata":{"name":"db","namespace":"n","labels":{"app":"db"},"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"data\":{\"pw\":\"c2VjcmV0\"}}"}},"type":"Opaque","data":{"pw":"c2VjcmV0"}}`,
			want: `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"db","namespace":"n","labels":{"app":"db"},"annotations":{"rehearse.kup.dev/placeholder":"true"}},"type":"Opaque"}`,
		},
		{
			name: "a TLS Secret placeholder has the keys its type requires, empty",
			kind: "Secret",
			in:   `{"metadata":{"name":"tls","namespace":"n"},"type":"kubernetes.io/tls","data":{"tls.crt":"Y2VydA==","tls.key":"a2V5"}}`,
			want: `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"tls","namespace":"n","annotations":{"rehearse.kup.dev/placeholder":"true"}},"type":"kubernetes.io/tls","stringData":{"tls.crt":"","tls.key":""}}`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := obj(t, tc.in)
			skip := Prepare(kind(tc.kind), o)
			if tc.skip != "" {
				if !strings.Contains(skip, tc.skip) {
					t.Fatalf("skip = %q, want it to say %q", skip, tc.skip)
				}
				return
			}
			if skip != "" {
				t.Fatalf("skipped (%s), want it copied", skip)
			}
			want := obj(t, tc.want)
			if !reflect.DeepEqual(o.Object, want.Object) {
				got, _ := json.Marshal(o.Object)
				t.Errorf("after Prepare:\n got %s\nwant %s", got, tc.want)
			}
			if tc.kind == "Secret" {
				raw, _ := json.Marshal(o.Object)
				for _, v := range []string{"c2VjcmV0", "Y2VydA==", "a2V5"} {
					if strings.Contains(string(raw), v) {
						t.Errorf("the placeholder carries a value: %s", raw)
					}
				}
			}
		})
	}
}

func TestTwinNode(t *testing.T) {
	res := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("16Gi"), corev1.ResourcePods: resource.MustParse("110")}
	real := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "ip-10-0-1-7", Labels: map[string]string{"topology.kubernetes.io/zone": "eu-1a", "pool": "gpu"},
			Annotations: map[string]string{"csi.volume.kubernetes.io/nodeid": "x"}},
		Spec: corev1.NodeSpec{Unschedulable: true, ProviderID: "aws:///i-1", Taints: []corev1.Taint{
			{Key: "gpu", Value: "true", Effect: corev1.TaintEffectNoSchedule},
			{Key: "node.kubernetes.io/unschedulable", Effect: corev1.TaintEffectNoSchedule},
			{Key: "node.kubernetes.io/unreachable", Effect: corev1.TaintEffectNoExecute},
		}},
		Status: corev1.NodeStatus{Capacity: res, Allocatable: res, NodeInfo: corev1.NodeSystemInfo{KubeletVersion: "v1.35.4-eks-1"},
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionUnknown}}},
	}
	tw := TwinNode(real)
	if tw.Annotations[KwokNodeAnnotation] != "fake" || tw.Annotations[KubeletStopped] == "" {
		t.Errorf("annotations %v: want kwok's and the stopped kubelet of a NotReady node", tw.Annotations)
	}
	if _, ok := tw.Annotations["csi.volume.kubernetes.io/nodeid"]; ok {
		t.Error("the real node's annotations were copied")
	}
	if len(tw.Spec.Taints) != 1 || tw.Spec.Taints[0].Key != "gpu" {
		t.Errorf("taints %v: want only the user's", tw.Spec.Taints)
	}
	if !tw.Spec.Unschedulable || tw.Spec.ProviderID != "" || tw.Status.NodeInfo.KubeletVersion != "v1.35.4-eks-1" {
		t.Errorf("twin node %+v", tw)
	}
	rs, ts := ShapeOf(real), ShapeOf(tw)
	ts.Ready = rs.Ready // the twin's readiness comes from kwok
	if rs != ts {
		t.Errorf("shapes differ:\nreal %+v\ntwin %+v", rs, ts)
	}
}

func TestSampleNodes(t *testing.T) {
	var nodes []corev1.Node
	for i, z := range []string{"a", "a", "a", "a", "b", "b", "c"} {
		nodes = append(nodes, corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: string(rune('m'-i)) + z, Labels: map[string]string{"topology.kubernetes.io/zone": z}}})
	}
	for _, tc := range []struct {
		n    int
		want string
	}{
		{0, "ma la ka ja ib hb gc"}, // all, as given
		{3, "gc hb ja"},             // one per zone, the first name in each
		{4, "gc hb ja ka"},          // then round-robin again from zone a
		{6, "gc hb ib ja ka la"},
		{99, "ma la ka ja ib hb gc"},
	} {
		var got []string
		for _, n := range SampleNodes(nodes, tc.n) {
			got = append(got, n.Name)
		}
		if strings.Join(got, " ") != tc.want {
			t.Errorf("SampleNodes(%d) = %v, want %s", tc.n, got, tc.want)
		}
	}
}

func TestTwinVersion(t *testing.T) {
	served := []string{"v1.34.4", "v1.35.2", "v1.35.4", "v1.35.6", "v1.36.3", "v1.37.0-rc.1"}
	for _, tc := range []struct {
		server, want string
		note, err    string
	}{
		{server: "v1.35.4", want: "v1.35.4"},
		{server: "v1.35.4-eks-9a1b", want: "v1.35.4", note: "distribution build"},
		{server: "v1.35.3", want: "v1.35.4", note: "nearest patch"}, // 2 and 4 tie: the newer
		{server: "v1.35.9", want: "v1.35.6", note: "nearest patch"},
		{server: "v1.36.0", want: "v1.36.3", note: "cannot install v1.36.0"},
		{server: "v1.37.1", err: "no release of 1.37"},
		{server: "garbage", err: "version"},
	} {
		got, note, err := TwinVersion(tc.server, served)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("TwinVersion(%s): err %v, want %q", tc.server, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want || !strings.Contains(note, tc.note) || (tc.note == "" && note != "") {
			t.Errorf("TwinVersion(%s) = %s, %q, %v; want %s and a note saying %q", tc.server, got, note, err, tc.want, tc.note)
		}
	}
	if v, _, _ := TwinVersion("v1.36.9", nil); v != "v1.36.9" {
		t.Errorf("without a served list the real version is tried, got %s", v)
	}
}
