// Package rehearse decides what a rehearsal copies from a real cluster into
// its sandbox twin and how: which kinds, in which order, which fields are
// stripped (the server's own bookkeeping, owner references whose owners
// will not exist, cluster IPs), how a Secret becomes an empty placeholder,
// how a real node becomes a kwok node, how long each workload's pods take
// to become Ready, and what differs between the twin and the real cluster.
//
// The pure parts here never talk to a cluster. Read reads the real cluster
// (one LIST per type, never a write) and Build writes the twin; Build is
// never given the real cluster's client. No Secret value, token, webhook
// or anything that would make the twin call out is ever copied.
package rehearse

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Kind is a resource type the rehearsal copies.
type Kind struct {
	GVR        schema.GroupVersionResource
	Kind       string
	Namespaced bool
}

func (k Kind) String() string { return k.Kind }

func gvr(group, version, resource string) schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: group, Version: version, Resource: resource}
}

// Kinds are the built-in types copied, in the order they are written:
// what others refer to first (namespaces, priority classes, CRDs, service
// accounts, config, placeholders for secrets, quotas), then budgets, then
// the workloads, and unmanaged pods last. Nodes are not here: they are
// built by TwinNode. Custom resources follow the CRDs' establishment.
var Kinds = []Kind{
	{gvr("", "v1", "namespaces"), "Namespace", false},
	{gvr("scheduling.k8s.io", "v1", "priorityclasses"), "PriorityClass", false},
	{gvr("apiextensions.k8s.io", "v1", "customresourcedefinitions"), "CustomResourceDefinition", false},
	{gvr("", "v1", "serviceaccounts"), "ServiceAccount", true},
	{gvr("", "v1", "configmaps"), "ConfigMap", true},
	{gvr("", "v1", "secrets"), "Secret", true},
	{gvr("", "v1", "resourcequotas"), "ResourceQuota", true},
	{gvr("", "v1", "limitranges"), "LimitRange", true},
	{gvr("", "v1", "services"), "Service", true},
	{gvr("policy", "v1", "poddisruptionbudgets"), "PodDisruptionBudget", true},
	{gvr("apps", "v1", "deployments"), "Deployment", true},
	{gvr("apps", "v1", "statefulsets"), "StatefulSet", true},
	{gvr("apps", "v1", "daemonsets"), "DaemonSet", true},
	{gvr("apps", "v1", "replicasets"), "ReplicaSet", true},
	{gvr("batch", "v1", "cronjobs"), "CronJob", true},
	{gvr("batch", "v1", "jobs"), "Job", true},
	{gvr("", "v1", "pods"), "Pod", true},
}

// KupNamespace holds kup's own journal and lock: never copied, or the
// twin's apply would find the real cluster's journal.
const KupNamespace = "kup-system"

// Placeholder marks every Secret the twin holds instead of a real one.
const Placeholder = "rehearse.kup.dev/placeholder"

// Skip reasons that are no difference between the twin and the real
// cluster: the twin makes these itself.
const (
	reasonKup           = "kup's own journal and lock"
	reasonAPIServerOwn  = "the twin's apiserver serves its own"
	reasonControllerOwn = "published by the twin's own controller-manager"
)

// serverFields are metadata the apiserver owns; a create carrying them is
// refused or would carry the real cluster's identity into the twin.
var serverFields = []string{"uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds"}

// Prepare turns an object read from the real cluster into the one the twin
// gets, in place. A non-empty skip says why it is not copied at all (its
// owner recreates it, it is a token, the apiserver makes its own, …).
func Prepare(k Kind, obj *unstructured.Unstructured) (skip string) {
	if obj.GetNamespace() == KupNamespace || (k.Kind == "Namespace" && obj.GetName() == KupNamespace) {
		return reasonKup
	}
	if ref := controller(obj); ref != "" && (k.Kind == "ReplicaSet" || k.Kind == "Job" || k.Kind == "Pod") {
		return "recreated by its owner " + ref
	}
	meta := obj.Object["metadata"].(map[string]any)
	for _, f := range serverFields {
		delete(meta, f)
	}
	// The owners' UIDs will not exist in the twin, and the garbage
	// collector deletes dependents of owners that do not exist.
	delete(meta, "ownerReferences")
	delete(obj.Object, "status")

	switch k.Kind {
	case "Namespace":
		unstructured.RemoveNestedField(obj.Object, "spec", "finalizers")
	case "Service":
		if obj.GetNamespace() == "default" && obj.GetName() == "kubernetes" {
			return reasonAPIServerOwn
		}
		// The twin's service range need not be the real one's: let it
		// allocate, except for headless services, which stay headless.
		if ip, _, _ := unstructured.NestedString(obj.Object, "spec", "clusterIP"); ip != "None" {
			unstructured.RemoveNestedField(obj.Object, "spec", "clusterIP")
			unstructured.RemoveNestedField(obj.Object, "spec", "clusterIPs")
		}
		unstructured.RemoveNestedField(obj.Object, "spec", "healthCheckNodePort")
	case "ConfigMap":
		if obj.GetName() == "kube-root-ca.crt" {
			return reasonControllerOwn
		}
	case "ServiceAccount":
		unstructured.RemoveNestedField(obj.Object, "secrets")
	case "Secret":
		return PlaceholderSecret(obj)
	case "Job":
		// The selector and the controller-uid labels name the real Job's
		// UID; the twin's Job gets its own.
		unstructured.RemoveNestedField(obj.Object, "spec", "selector")
		unstructured.RemoveNestedField(obj.Object, "spec", "manualSelector")
		for _, path := range [][]string{{"metadata", "labels"}, {"spec", "template", "metadata", "labels"}} {
			labels, _, _ := unstructured.NestedStringMap(obj.Object, path...)
			for _, l := range []string{"controller-uid", "batch.kubernetes.io/controller-uid"} {
				delete(labels, l)
			}
			if labels != nil {
				_ = unstructured.SetNestedStringMap(obj.Object, labels, path...)
			}
		}
	case "Pod":
		if _, mirror := obj.GetAnnotations()["kubernetes.io/config.mirror"]; mirror {
			return "a static pod's mirror (the twin's nodes run no static pods)"
		}
		// Admission computes these from the priority class; a copied value
		// that differs is refused.
		unstructured.RemoveNestedField(obj.Object, "spec", "priority")
		unstructured.RemoveNestedField(obj.Object, "spec", "preemptionPolicy")
	case "CustomResourceDefinition":
		// A conversion webhook would make the twin call out.
		if s, _, _ := unstructured.NestedString(obj.Object, "spec", "conversion", "strategy"); s == "Webhook" {
			_ = unstructured.SetNestedMap(obj.Object, map[string]any{"strategy": "None"}, "spec", "conversion")
		}
	}
	return ""
}

// PodFinished reports whether a pod read from the real cluster has ended:
// such pods are history, not workload, and are not recreated.
func PodFinished(obj *unstructured.Unstructured) bool {
	phase, _, _ := unstructured.NestedString(obj.Object, "status", "phase")
	return phase == "Succeeded" || phase == "Failed"
}

func controller(obj *unstructured.Unstructured) string {
	for _, r := range obj.GetOwnerReferences() {
		if r.Controller != nil && *r.Controller {
			return r.Kind + "/" + r.Name
		}
	}
	return ""
}

// placeholderData is what each Secret type's validation requires to be
// present; the values say nothing.
var placeholderData = map[string]map[string]string{
	"kubernetes.io/tls":              {"tls.crt": "", "tls.key": ""},
	"kubernetes.io/dockerconfigjson": {".dockerconfigjson": `{"auths":{}}`},
	"kubernetes.io/dockercfg":        {".dockercfg": `{}`},
	"kubernetes.io/basic-auth":       {"username": "", "password": ""},
	"kubernetes.io/ssh-auth":         {"ssh-privatekey": ""},
}

// PlaceholderSecret replaces a Secret by an empty one of the same name and
// type, so references to it resolve, with the same labels (they select,
// they do not hold secrets) and no annotation (last-applied would carry
// the value). Tokens are not copied at all.
func PlaceholderSecret(obj *unstructured.Unstructured) (skip string) {
	typ, _, _ := unstructured.NestedString(obj.Object, "type")
	switch typ {
	case "kubernetes.io/service-account-token", "bootstrap.kubernetes.io/token":
		return "a token (never copied)"
	}
	out := map[string]any{
		"apiVersion": "v1",
		"kind":       "Secret",
		"metadata": map[string]any{
			"name":        obj.GetName(),
			"namespace":   obj.GetNamespace(),
			"annotations": map[string]any{Placeholder: "true"},
		},
	}
	if labels := obj.GetLabels(); len(labels) > 0 {
		l := map[string]any{}
		for k, v := range labels {
			l[k] = v
		}
		out["metadata"].(map[string]any)["labels"] = l
	}
	if typ != "" {
		out["type"] = typ
	}
	if req := placeholderData[typ]; req != nil {
		d := map[string]any{}
		for k, v := range req {
			d[k] = v
		}
		out["stringData"] = d
	}
	obj.Object = out
	return ""
}

// Key names an object as kind namespace/name (or kind name).
func Key(kind string, obj *unstructured.Unstructured) string {
	if ns := obj.GetNamespace(); ns != "" {
		return fmt.Sprintf("%s %s/%s", kind, ns, obj.GetName())
	}
	return kind + " " + obj.GetName()
}

// InNamespaces reports whether a namespaced object is within scope (an
// empty scope is the whole cluster).
func InNamespaces(scope []string, ns string) bool {
	if len(scope) == 0 || ns == "" {
		return true
	}
	for _, s := range scope {
		if strings.EqualFold(s, ns) {
			return true
		}
	}
	return false
}
