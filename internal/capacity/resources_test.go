package capacity

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func TestPodRequests(t *testing.T) {
	always := v1.ContainerRestartPolicyAlways
	container := func(milliCPU, memMi int64) v1.Container {
		return v1.Container{Resources: v1.ResourceRequirements{Requests: requests(milliCPU, memMi)}}
	}
	sidecar := func(milliCPU, memMi int64) v1.Container {
		c := container(milliCPU, memMi)
		c.RestartPolicy = &always
		return c
	}
	tests := []struct {
		name string
		spec v1.PodSpec
		want Resources
	}{
		{
			name: "containers are summed",
			spec: v1.PodSpec{Containers: []v1.Container{container(100, 64), container(250, 128)}},
			want: Resources{MilliCPU: 350, Memory: 192 << 20, Pods: 1},
		},
		{
			name: "no requests still takes a pod slot",
			spec: v1.PodSpec{Containers: []v1.Container{{}}},
			want: Resources{Pods: 1},
		},
		{
			name: "the largest init container wins per resource over the containers' sum",
			spec: v1.PodSpec{
				InitContainers: []v1.Container{container(1000, 10), container(10, 512)},
				Containers:     []v1.Container{container(200, 100), container(200, 100)},
			},
			want: Resources{MilliCPU: 1000, Memory: 512 << 20, Pods: 1},
		},
		{
			name: "init containers smaller than the containers do not count",
			spec: v1.PodSpec{
				InitContainers: []v1.Container{container(100, 10)},
				Containers:     []v1.Container{container(500, 100)},
			},
			want: Resources{MilliCPU: 500, Memory: 100 << 20, Pods: 1},
		},
		{
			// sidecar 200 runs beside the containers (500+200) and beside the
			// init container started after it (1000+200).
			name: "sidecars add to containers and to later init containers",
			spec: v1.PodSpec{
				InitContainers: []v1.Container{sidecar(200, 50), container(1000, 10)},
				Containers:     []v1.Container{container(500, 100)},
			},
			want: Resources{MilliCPU: 1200, Memory: 150 << 20, Pods: 1},
		},
		{
			// The init container before the sidecar runs without it.
			name: "an init container before a sidecar runs alone",
			spec: v1.PodSpec{
				InitContainers: []v1.Container{container(1000, 10), sidecar(200, 50)},
				Containers:     []v1.Container{container(500, 100)},
			},
			want: Resources{MilliCPU: 1000, Memory: 150 << 20, Pods: 1},
		},
		{
			name: "overhead is added",
			spec: v1.PodSpec{
				Containers: []v1.Container{container(500, 100)},
				Overhead:   requests(250, 20),
			},
			want: Resources{MilliCPU: 750, Memory: 120 << 20, Pods: 1},
		},
		{
			name: "pod-level requests replace the container sum for cpu and memory",
			spec: v1.PodSpec{
				Containers: []v1.Container{container(500, 100)},
				Resources:  &v1.ResourceRequirements{Requests: requests(2000, 0)},
			},
			want: Resources{MilliCPU: 2000, Memory: 100 << 20, Pods: 1},
		},
		{
			name: "extended resources and ephemeral storage are kept",
			spec: v1.PodSpec{Containers: []v1.Container{{Resources: v1.ResourceRequirements{Requests: v1.ResourceList{
				"nvidia.com/gpu":            resource.MustParse("2"),
				v1.ResourceEphemeralStorage: resource.MustParse("1Gi"),
			}}}}},
			want: Resources{EphemeralStorage: 1 << 30, Pods: 1, Scalar: map[v1.ResourceName]int64{"nvidia.com/gpu": 2}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := PodRequests(&v1.Pod{Spec: tt.spec})
			if got.String() != tt.want.String() {
				t.Errorf("PodRequests = %s, want %s", got, tt.want)
			}
		})
	}
}
