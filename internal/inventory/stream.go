package inventory

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// listPods reads every pod with one request. It asks for a watch-list
// stream (KEP-3157: the initial state sent as watch events, ended by a
// bookmark) so pods are decoded one at a time and their managedFields
// dropped as they arrive — a plain LIST of 30,000 pods holds the whole
// response and every decoded object at once, which is most of a plan's
// peak memory. A server that does not stream (the feature off, or older
// than 1.27) gets a plain LIST.
func listPods(ctx context.Context, cs kubernetes.Interface) ([]corev1.Pod, error) {
	pods, err := streamPods(ctx, cs)
	if err == nil {
		return pods, nil
	}
	l, lerr := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{ResourceVersion: "0"})
	if lerr != nil {
		return nil, lerr
	}
	for i := range l.Items {
		l.Items[i].ManagedFields = nil
	}
	return l.Items, nil
}

func streamPods(ctx context.Context, cs kubernetes.Interface) ([]corev1.Pod, error) {
	w, err := cs.CoreV1().Pods("").Watch(ctx, metav1.ListOptions{
		SendInitialEvents:    ptr.To(true),
		ResourceVersionMatch: metav1.ResourceVersionMatchNotOlderThan,
		AllowWatchBookmarks:  true,
	})
	if err != nil {
		return nil, err
	}
	defer w.Stop()
	var pods []corev1.Pod
	for ev := range w.ResultChan() {
		switch ev.Type {
		case watch.Added, watch.Modified:
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			p.ManagedFields = nil
			pods = append(pods, *p)
		case watch.Bookmark:
			if m, err := meta.Accessor(ev.Object); err == nil && m.GetAnnotations()[metav1.InitialEventsAnnotationKey] == "true" {
				return dedupe(pods), nil
			}
		case watch.Error:
			return nil, fmt.Errorf("watch-list of pods: %v", ev.Object)
		}
	}
	return nil, fmt.Errorf("watch-list of pods ended before its initial-events bookmark")
}

// dedupe keeps the last version of each pod (a pod modified while the
// initial events stream arrives twice).
func dedupe(pods []corev1.Pod) []corev1.Pod {
	idx := make(map[string]int, len(pods))
	out := pods[:0]
	for _, p := range pods {
		k := p.Namespace + "/" + p.Name
		if i, ok := idx[k]; ok {
			out[i] = p
			continue
		}
		idx[k] = len(out)
		out = append(out, p)
	}
	return out
}
