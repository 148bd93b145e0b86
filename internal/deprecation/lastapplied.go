package deprecation

import (
	"encoding/json"
	"errors"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// LastAppliedAnnotation is where `kubectl apply` (client-side) keeps the
// object as the user last applied it, apiVersion included.
const LastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"

// ScanLastApplied checks objects' last-applied annotations against the
// built-in table.
func ScanLastApplied(objs ...metav1.Object) ([]Usage, error) {
	return Builtin().ScanLastApplied(objs...)
}

// ScanLastApplied decodes each object's LastAppliedAnnotation and returns a
// Usage for every one whose apiVersion/kind is in the table. The live object
// is served in every version the cluster supports, so its own apiVersion says
// nothing; the annotation records what the user's manifest says, which is what
// the next `kubectl apply` after the upgrade will send.
//
// Objects from a metadata-only LIST (metav1.PartialObjectMetadata) carry the
// annotation and are enough. Objects without the annotation are skipped; an
// annotation that is not JSON yields an error naming the object, and the other
// objects are still scanned.
func (t *Table) ScanLastApplied(objs ...metav1.Object) ([]Usage, error) {
	var usages []Usage
	var errs []error
	for _, obj := range objs {
		raw, ok := obj.GetAnnotations()[LastAppliedAnnotation]
		if !ok || raw == "" {
			continue
		}
		var applied struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if err := json.Unmarshal([]byte(raw), &applied); err != nil {
			errs = append(errs, fmt.Errorf("object %s: decoding annotation %s: %w",
				ObjectRef{Namespace: obj.GetNamespace(), Name: obj.GetName()}, LastAppliedAnnotation, err))
			continue
		}
		e, ok := t.Lookup(applied.APIVersion, applied.Kind)
		if !ok {
			continue
		}
		usages = append(usages, Usage{
			Entry:  e,
			Source: SourceLastApplied,
			// The live object's namespace and name are authoritative: the
			// annotation's copy may omit the namespace the object was applied to.
			Object: ObjectRef{Kind: applied.Kind, Namespace: obj.GetNamespace(), Name: obj.GetName()},
		})
	}
	return usages, errors.Join(errs...)
}
