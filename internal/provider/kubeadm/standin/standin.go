// Package standin is the far end of the stand-in host tools the kubeadm
// tests put on their simulated hosts (testdata/standin): when a stand-in
// `kubeadm upgrade apply` or `systemctl restart kubelet` runs on a host,
// it calls kup's hidden `sandbox-hook` command, which calls this package
// to change the kup sandbox the way the real tool changes a real cluster
// — the control plane moves, the node's static pods show the new
// version, the node's kubelet restarts at the new version.
//
// Nothing in kup's providers uses it: they see only SSH and the
// Kubernetes API, exactly as on a real kubeadm cluster.
package standin

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kup-project/kup/internal/sandbox"
)

// StaticComponents are the static pods kubeadm runs on a control-plane node.
var StaticComponents = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"}

// EtcdTag is the image tag kubeadm would give the sandbox's etcd version.
func EtcdTag(etcdVersion string) string { return strings.TrimPrefix(etcdVersion, "v") + "-0" }

// SetStaticPods makes node's kubeadm static pods (as the mirror pods a
// kubelet publishes: kube-system/COMPONENT-NODE, labelled component and
// tier=control-plane) run version; etcd runs etcdTag. Existing pods get
// the new image, as a kubelet reflects a changed manifest.
func SetStaticPods(ctx context.Context, cs kubernetes.Interface, node, version, etcdTag string) error {
	for _, comp := range StaticComponents {
		image := "registry.k8s.io/" + comp + ":" + version
		if comp == "etcd" {
			image = "registry.k8s.io/etcd:" + etcdTag
		}
		name := comp + "-" + node
		pods := cs.CoreV1().Pods(metav1.NamespaceSystem)
		cur, err := pods.Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{
					Name: name, Namespace: metav1.NamespaceSystem,
					Labels:      map[string]string{"component": comp, "tier": "control-plane"},
					Annotations: map[string]string{corev1.MirrorPodAnnotationKey: "standin", "kubernetes.io/config.source": "file"},
				},
				Spec: corev1.PodSpec{
					NodeName: node, HostNetwork: true, PriorityClassName: "system-node-critical",
					Containers:  []corev1.Container{{Name: comp, Image: image}},
					Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute}},
				},
			}
			if _, err := pods.Create(ctx, pod, metav1.CreateOptions{}); err != nil {
				return fmt.Errorf("creating static pod kube-system/%s: %w", name, err)
			}
		case err != nil:
			return fmt.Errorf("reading static pod kube-system/%s: %w", name, err)
		case cur.Spec.Containers[0].Image != image:
			cur.Spec.Containers[0].Image = image
			if _, err := pods.Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
				return fmt.Errorf("updating static pod kube-system/%s to %s: %w", name, image, err)
			}
		}
	}
	return nil
}

// UpgradeControlPlane is `kubeadm upgrade apply VERSION` on node: the
// sandbox's control plane moves to version, then node's static pods
// show it.
func UpgradeControlPlane(ctx context.Context, c *sandbox.Cluster, node, version string) error {
	if err := c.UpgradeControlPlane(ctx, version, sandbox.UpgradeOptions{}); err != nil {
		return err
	}
	return SetStaticPods(ctx, c.Client(), node, version, EtcdTag(c.EtcdVersion))
}

// UpgradeNode is `kubeadm upgrade node` on a control-plane node: its
// static pods follow the control plane's version.
func UpgradeNode(ctx context.Context, c *sandbox.Cluster, node, version string) error {
	return SetStaticPods(ctx, c.Client(), node, version, EtcdTag(c.EtcdVersion))
}

// RestartKubelet is `systemctl restart kubelet` after a kubelet package
// install: the node goes NotReady and comes back at version.
func RestartKubelet(ctx context.Context, c *sandbox.Cluster, node, version string) error {
	return c.SetNodeVersion(ctx, node, version)
}
