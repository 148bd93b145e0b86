package sandbox

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestPodProblem(t *testing.T) {
	ready := corev1.ContainerStatus{Name: "c", Ready: true}
	for _, tc := range []struct {
		name string
		pod  corev1.PodStatus
		want string
	}{
		{"running and ready", corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{ready}}, ""},
		{"finished run-once pod", corev1.PodStatus{Phase: corev1.PodSucceeded}, ""},
		{"pending", corev1.PodStatus{Phase: corev1.PodPending}, "phase Pending"},
		{"failed", corev1.PodStatus{Phase: corev1.PodFailed}, "phase Failed"},
		{"crash loop", corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{ready, {Name: "dns", RestartCount: 7, State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}}}}, "container dns not ready (CrashLoopBackOff)"},
		{"running, not ready", corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{Name: "proxy", RestartCount: 2}}}, "container proxy not ready (2 restarts)"},
	} {
		if got := podProblem(&corev1.Pod{Status: tc.pod}); got != tc.want {
			t.Errorf("%s: podProblem = %q, want %q", tc.name, got, tc.want)
		}
	}
}
