package capacity

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestDrainFate(t *testing.T) {
	now := metav1.Now()
	tests := []struct {
		name string
		pod  *v1.Pod
		want Fate
	}{
		{"ReplicaSet pod is rescheduled", pod("a", "n1", 100, 0), Rescheduled},
		{"StatefulSet pod is rescheduled", pod("a", "n1", 100, 0, ownedBy("StatefulSet")), Rescheduled},
		{"pod without controller is deleted for good", pod("a", "n1", 100, 0, unowned), Deleted},
		{"owner that is not a controller does not manage", pod("a", "n1", 100, 0, func(p *v1.Pod) {
			p.OwnerReferences = []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "rs"}}
		}), Deleted},
		{"DaemonSet pod is kept", pod("a", "n1", 100, 0, ownedBy("DaemonSet")), KeptDaemonSet},
		{"mirror pod is kept", pod("a", "n1", 100, 0, unowned, func(p *v1.Pod) {
			p.Annotations = map[string]string{v1.MirrorPodAnnotationKey: "x"}
		}), KeptMirror},
		{"succeeded pod is finished", pod("a", "n1", 100, 0, func(p *v1.Pod) { p.Status.Phase = v1.PodSucceeded }), Finished},
		{"failed unmanaged pod is finished", pod("a", "n1", 100, 0, unowned, func(p *v1.Pod) { p.Status.Phase = v1.PodFailed }), Finished},
		{"terminating pod needs no place", pod("a", "n1", 100, 0, func(p *v1.Pod) { p.DeletionTimestamp = &now }), Terminating},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := DrainFate(tt.pod); got != tt.want {
				t.Errorf("DrainFate = %q, want %q", got, tt.want)
			}
			if got, want := tt.want.Evicted(), tt.want == Rescheduled || tt.want == Deleted; got != want {
				t.Errorf("Evicted = %v, want %v", got, want)
			}
		})
	}
}

func TestIgnored(t *testing.T) {
	tests := []struct {
		name string
		mut  func(*v1.Pod)
		want []Constraint
	}{
		{"plain pod", func(*v1.Pod) {}, nil},
		{"required anti-affinity", func(p *v1.Pod) {
			p.Spec.Affinity = &v1.Affinity{PodAntiAffinity: &v1.PodAntiAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: []v1.PodAffinityTerm{{TopologyKey: "kubernetes.io/hostname"}},
			}}
		}, []Constraint{InterPodAffinity}},
		{"preferred anti-affinity never makes a pod Pending", func(p *v1.Pod) {
			p.Spec.Affinity = &v1.Affinity{PodAntiAffinity: &v1.PodAntiAffinity{
				PreferredDuringSchedulingIgnoredDuringExecution: []v1.WeightedPodAffinityTerm{{Weight: 1}},
			}}
		}, nil},
		{"hard and soft spread", func(p *v1.Pod) {
			p.Spec.TopologySpreadConstraints = []v1.TopologySpreadConstraint{
				{WhenUnsatisfiable: v1.ScheduleAnyway}, {WhenUnsatisfiable: v1.DoNotSchedule},
			}
		}, []Constraint{TopologySpread}},
		{"pvc, host port and claim", func(p *v1.Pod) {
			p.Spec.Volumes = []v1.Volume{{Name: "d", VolumeSource: v1.VolumeSource{PersistentVolumeClaim: &v1.PersistentVolumeClaimVolumeSource{ClaimName: "d"}}}}
			p.Spec.Containers[0].Ports = []v1.ContainerPort{{ContainerPort: 80, HostPort: 8080}}
			p.Spec.ResourceClaims = []v1.PodResourceClaim{{Name: "gpu"}}
		}, []Constraint{VolumeTopology, HostPorts, DynamicResources}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Ignored(pod("a", "n1", 100, 0, tt.mut))
			if len(got) != len(tt.want) {
				t.Fatalf("Ignored = %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("Ignored = %v, want %v", got, tt.want)
				}
			}
		})
	}
	if len(Unmodelled) != 5 {
		t.Errorf("Unmodelled has %d constraints, want 5 (update Ignored with it)", len(Unmodelled))
	}
}
