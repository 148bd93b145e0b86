package deprecation

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func withLastApplied(namespace, name, annotation string) metav1.Object {
	obj := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
	if annotation != "" {
		obj.Annotations = map[string]string{LastAppliedAnnotation: annotation, "other": "x"}
	}
	return obj
}

func TestScanLastApplied(t *testing.T) {
	objs := []metav1.Object{
		// Applied as extensions/v1beta1 years ago; the live object is served as
		// networking.k8s.io/v1 now, but the user's manifest is still old.
		withLastApplied("shop", "web",
			`{"apiVersion":"extensions/v1beta1","kind":"Ingress","metadata":{"annotations":{},"name":"web","namespace":"shop"},"spec":{"backend":{"serviceName":"web","servicePort":80}}}`+"\n"),
		withLastApplied("shop", "api", `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"api","namespace":"shop"}}`),
		withLastApplied("shop", "untouched", ""),
		withLastApplied("ops", "mangled", `{"apiVersion":"policy/v1beta1",`),
		// The annotation omits the namespace (applied with -n): the live object's wins.
		withLastApplied("payments", "pdb", `{"apiVersion":"policy/v1beta1","kind":"PodDisruptionBudget","metadata":{"name":"pdb"}}`),
	}
	usages, err := ScanLastApplied(objs...)
	if err == nil || !strings.Contains(err.Error(), "ops/mangled") || !strings.Contains(err.Error(), LastAppliedAnnotation) {
		t.Errorf("error = %v, want one naming ops/mangled and the annotation", err)
	}
	want := []struct {
		entry string
		obj   ObjectRef
	}{
		{"extensions/v1beta1 Ingress", ObjectRef{Kind: "Ingress", Namespace: "shop", Name: "web"}},
		{"policy/v1beta1 PodDisruptionBudget", ObjectRef{Kind: "PodDisruptionBudget", Namespace: "payments", Name: "pdb"}},
	}
	if len(usages) != len(want) {
		t.Fatalf("got %d usages %v, want %d", len(usages), usages, len(want))
	}
	for i, w := range want {
		u := usages[i]
		if u.Entry.String() != w.entry || u.Object != w.obj || u.Source != SourceLastApplied {
			t.Errorf("usage %d = %s %+v %s, want %s %+v", i, u.Entry, u.Object, u.Source, w.entry, w.obj)
		}
	}
	if !usages[0].Removed(22) || usages[0].Removed(21) {
		t.Errorf("Ingress usage Removed(21/22) wrong")
	}
}
