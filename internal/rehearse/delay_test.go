package rehearse

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// pod is a pod of owner (kind/name, "" unmanaged) scheduled at t0 and
// Ready after ready (negative: not Ready).
func pod(name, owner string, ready time.Duration) corev1.Pod {
	p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop"}}
	if owner != "" {
		kind, n, _ := strings.Cut(owner, "/")
		p.OwnerReferences = []metav1.OwnerReference{{Kind: kind, Name: n, Controller: ptr.To(true)}}
	}
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(t0)}}
	if ready >= 0 {
		p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(t0.Add(ready))})
	} else {
		p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionFalse, LastTransitionTime: metav1.NewTime(t0)})
	}
	return p
}

func TestReadyDelays(t *testing.T) {
	owners := map[string]string{"ReplicaSet shop/web-abc": "Deployment/web", "ReplicaSet shop/web-def": "Deployment/web"}
	s := time.Second
	for _, tc := range []struct {
		name    string
		pods    []corev1.Pod
		want    map[string]time.Duration
		cluster time.Duration
	}{
		{
			name: "median per workload, ReplicaSets folded into their Deployment",
			pods: []corev1.Pod{pod("a", "ReplicaSet/web-abc", 2*s), pod("b", "ReplicaSet/web-abc", 9*s), pod("c", "ReplicaSet/web-def", 3*s),
				pod("d", "StatefulSet/db", 20*s), pod("e", "StatefulSet/db", 30*s)},
			want:    map[string]time.Duration{"Deployment shop/web": 3 * s, "StatefulSet shop/db": 25 * s},
			cluster: 9 * s,
		},
		{
			name:    "an ownerless ReplicaSet and an unmanaged pod are their own workloads",
			pods:    []corev1.Pod{pod("x", "ReplicaSet/lonely", 4*s), pod("bare", "", 6*s)},
			want:    map[string]time.Duration{"ReplicaSet shop/lonely": 4 * s, "Pod shop/bare": 6 * s},
			cluster: 5 * s,
		},
		{
			name: "pods not Ready are not measured",
			pods: []corev1.Pod{pod("crash", "ReplicaSet/web-abc", -1)},
			want: map[string]time.Duration{},
		},
		{
			name:    "bounded: negative (clock skew) to Min, hours to Max",
			pods:    []corev1.Pod{pod("skew", "DaemonSet/agent", -0*s), pod("slow", "Job/backfill", 3*time.Hour)},
			want:    map[string]time.Duration{"DaemonSet shop/agent": 0, "Job shop/backfill": 2 * time.Minute},
			cluster: time.Minute,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ReadyDelays(tc.pods, owners, DefaultDelayBounds)
			if len(got.ByWorkload) != len(tc.want) {
				t.Errorf("ByWorkload = %v, want %v", got.ByWorkload, tc.want)
			}
			for k, v := range tc.want {
				if got.ByWorkload[k] != v {
					t.Errorf("%s: %s, want %s", k, got.ByWorkload[k], v)
				}
			}
			if got.Cluster != tc.cluster {
				t.Errorf("cluster median %s, want %s", got.Cluster, tc.cluster)
			}
		})
	}
}

func TestReadyDelayBeforeScheduledIsMin(t *testing.T) {
	p := pod("early", "", 0)
	p.Status.Conditions[1].LastTransitionTime = metav1.NewTime(t0.Add(-5 * time.Second))
	got := ReadyDelays([]corev1.Pod{p}, nil, DelayBounds{Min: time.Second, Max: time.Minute})
	if got.ByWorkload["Pod shop/early"] != time.Second {
		t.Errorf("got %v, want the lower bound 1s", got.ByWorkload)
	}
}
