package rehearse

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
)

// LastApplied is kubectl's record of the manifest last applied to an
// object: what the user will apply again after the upgrade.
const LastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// Manifest is one last-applied configuration found on a copied object.
type Manifest struct {
	// Of is the object carrying it ("Deployment shop/web").
	Of  string
	Raw string
}

// Manifests collects the last-applied configurations of the objects
// copied (Secrets never carry theirs into the twin: placeholders drop
// every annotation).
func Manifests(src *Source) []Manifest {
	var out []Manifest
	for _, o := range src.Objects {
		if raw := o.Obj.GetAnnotations()[LastApplied]; raw != "" {
			out = append(out, Manifest{Of: o.Key(), Raw: raw})
		}
	}
	return out
}

// Reapply sends each manifest to the twin's apiserver — after the hops,
// at the target version — as a server-side apply in dry-run: what that
// apiserver no longer serves, or refuses to validate, is returned, named
// by the object and with the apiserver's reason. Nothing is changed.
func Reapply(ctx context.Context, disc discovery.DiscoveryInterface, dyn dynamic.Interface, serverVersion string, ms []Manifest) ([]Failure, error) {
	groups, err := restmapper.GetAPIGroupResources(disc)
	if err != nil && len(groups) == 0 {
		return nil, fmt.Errorf("reading the twin's served APIs: %w", err)
	}
	mapper := restmapper.NewDiscoveryRESTMapper(groups)
	var out []Failure
	for _, m := range ms {
		obj := &unstructured.Unstructured{}
		if err := json.Unmarshal([]byte(m.Raw), &obj.Object); err != nil {
			out = append(out, Failure{Key: m.Of, Reason: fmt.Sprintf("its last-applied configuration is not JSON: %v", err)})
			continue
		}
		gvk := obj.GroupVersionKind()
		key := fmt.Sprintf("%s (applied as %s %s)", m.Of, gvk.GroupVersion(), gvk.Kind)
		mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if meta.IsNoMatchError(err) {
			out = append(out, Failure{Key: key, Reason: fmt.Sprintf("kube-apiserver %s does not serve %s %s", serverVersion, gvk.GroupVersion(), gvk.Kind)})
			continue
		}
		if err != nil {
			out = append(out, Failure{Key: key, Reason: err.Error()})
			continue
		}
		var ri dynamic.ResourceInterface = dyn.Resource(mapping.Resource)
		if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
			ns := obj.GetNamespace()
			if ns == "" {
				ns = namespaceOf(m.Of)
			}
			obj.SetNamespace(ns)
			ri = dyn.Resource(mapping.Resource).Namespace(ns)
		}
		data, _ := json.Marshal(obj.Object)
		_, err = ri.Patch(ctx, obj.GetName(), types.ApplyPatchType, data, metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}, FieldManager: "kup-rehearse", Force: ptrTrue()})
		if err != nil && !apierrors.IsConflict(err) {
			out = append(out, Failure{Key: key, Reason: fmt.Sprintf("kube-apiserver %s refuses it: %v", serverVersion, err)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

func ptrTrue() *bool { t := true; return &t }

// namespaceOf reads the namespace from a Key ("Kind ns/name").
func namespaceOf(key string) string {
	_, rest, _ := strings.Cut(key, " ")
	ns, _, found := strings.Cut(rest, "/")
	if !found {
		return ""
	}
	return ns
}

// ApplyDocuments server-side applies every object of a YAML or JSON
// stream to the twin (for real: these are the manifests the upgrade brings
// along); what cannot be decoded, is not served or is refused is returned.
func ApplyDocuments(ctx context.Context, disc discovery.DiscoveryInterface, dyn dynamic.Interface, name string, data []byte) []Failure {
	groups, err := restmapper.GetAPIGroupResources(disc)
	if err != nil && len(groups) == 0 {
		return []Failure{{Key: name, Reason: err.Error()}}
	}
	mapper := restmapper.NewDiscoveryRESTMapper(groups)
	dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var out []Failure
	for i := 0; ; i++ {
		obj := &unstructured.Unstructured{}
		if err := dec.Decode(&obj.Object); err != nil {
			if err != io.EOF {
				out = append(out, Failure{Key: fmt.Sprintf("%s (document %d)", name, i+1), Reason: err.Error()})
			}
			return out
		}
		if len(obj.Object) == 0 {
			continue
		}
		gvk := obj.GroupVersionKind()
		key := fmt.Sprintf("%s %s from %s", gvk.Kind, obj.GetName(), name)
		mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			out = append(out, Failure{Key: key, Reason: err.Error()})
			continue
		}
		var ri dynamic.ResourceInterface = dyn.Resource(mapping.Resource)
		if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
			ns := obj.GetNamespace()
			if ns == "" {
				ns = "default"
			}
			ri = dyn.Resource(mapping.Resource).Namespace(ns)
		}
		raw, _ := json.Marshal(obj.Object)
		if _, err := ri.Patch(ctx, obj.GetName(), types.ApplyPatchType, raw, metav1.PatchOptions{FieldManager: "kup-rehearse", Force: ptrTrue()}); err != nil {
			out = append(out, Failure{Key: key, Reason: err.Error()})
			continue
		}
		if gvk.Kind == "CustomResourceDefinition" {
			if err := waitServed(ctx, disc, obj); err != nil {
				out = append(out, Failure{Key: key, Reason: err.Error()})
			}
		}
	}
}

// waitServed waits (30 s at most) until the apiserver's discovery serves
// exactly the versions a just-applied CRD marks served: discovery follows
// a CRD change a moment later, and the re-apply must see the change.
func waitServed(ctx context.Context, disc discovery.DiscoveryInterface, crd *unstructured.Unstructured) error {
	group, _, _ := unstructured.NestedString(crd.Object, "spec", "group")
	plural, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "plural")
	versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
	deadline := time.Now().Add(30 * time.Second)
	for {
		pending := ""
		for _, v := range versions {
			m, _ := v.(map[string]any)
			name, _ := m["name"].(string)
			served, _ := m["served"].(bool)
			l, err := disc.ServerResourcesForGroupVersion(group + "/" + name)
			has := false
			if err == nil {
				for _, r := range l.APIResources {
					has = has || r.Name == plural
				}
			}
			if has != served {
				pending = fmt.Sprintf("%s/%s %s served=%v", group, name, plural, served)
			}
		}
		if pending == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("discovery does not show %s after 30s", pending)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
}
