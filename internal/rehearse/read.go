package rehearse

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// ReadOptions bound what is read of the real cluster.
type ReadOptions struct {
	// Namespaces limits namespaced objects to these (empty: all).
	Namespaces []string
	// NodeSample keeps this many nodes (0: all); see SampleNodes.
	NodeSample int
}

// Object is one object to write to the twin.
type Object struct {
	Kind Kind
	Obj  *unstructured.Unstructured
}

// Key names the object for the report.
func (o Object) Key() string { return Key(o.Kind.Kind, o.Obj) }

// Skip is an object deliberately not copied, and why.
type Skip struct {
	Key    string `json:"object"`
	Reason string `json:"reason"`
}

// Source is what was read of the real cluster: the nodes, the objects to
// write in order, what was skipped, and what the twin must match.
type Source struct {
	Server string
	// AllNodes is every node read; Nodes the ones the twin gets.
	AllNodes, Nodes []corev1.Node
	Objects         []Object
	Skipped         []Skip
	// Pods are every pod read (typed), for ready delays and counts.
	Pods []corev1.Pod
	// Owners maps "ReplicaSet ns/name" to the Deployment that owns it.
	Owners map[string]string
	// Available is each workload's available replicas in the real cluster
	// ("Deployment ns/name" → n): the twin is awaited until it matches.
	Available map[string]int32
	// CRDs are the custom resource definitions read, for the report.
	CRDs int
	// Requests counts the API requests the read made.
	Requests int64
	Scope    ReadOptions
}

// Read reads the real cluster once: one LIST per type (watch cache,
// resourceVersion=0), Secrets as a server-side table of names and types
// only, so no Secret value ever leaves the real apiserver. It never
// writes.
func Read(ctx context.Context, cfg *rest.Config, opts ReadOptions) (*Source, error) {
	var requests atomic.Int64
	cfg = rest.CopyConfig(cfg)
	if cfg.QPS == 0 {
		cfg.QPS, cfg.Burst = 50, 100
	}
	prev := cfg.WrapTransport
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		if prev != nil {
			rt = prev(rt)
		}
		return counting{rt: rt, n: &requests}
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	sv, err := cs.Discovery().ServerVersion()
	if err != nil {
		return nil, fmt.Errorf("cannot reach the real cluster's API at %s: %w", cfg.Host, err)
	}
	src := &Source{Server: sv.GitVersion, Owners: map[string]string{}, Available: map[string]int32{}, Scope: opts}
	list := metav1.ListOptions{ResourceVersion: "0"}

	byKind := make([][]unstructured.Unstructured, len(Kinds))
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	wg.Go(func() {
		l, err := cs.CoreV1().Nodes().List(ctx, list)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			errs = append(errs, fmt.Errorf("listing nodes: %w", err))
			return
		}
		src.AllNodes = l.Items
	})
	for i, k := range Kinds {
		wg.Go(func() {
			var items []unstructured.Unstructured
			var err error
			if k.Kind == "Secret" {
				items, err = secretNames(ctx, cs.CoreV1().RESTClient())
			} else {
				var l *unstructured.UnstructuredList
				l, err = dyn.Resource(k.GVR).List(ctx, list)
				if l != nil {
					items = l.Items
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("listing %s: %w", k.GVR.Resource, err))
				return
			}
			byKind[i] = items
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	src.Nodes = SampleNodes(src.AllNodes, opts.NodeSample)

	var crKinds []Kind
	for i, k := range Kinds {
		for j := range byKind[i] {
			obj := &byKind[i][j]
			ns := obj.GetNamespace()
			if k.Kind == "Namespace" {
				ns = obj.GetName()
			}
			if !InNamespaces(opts.Namespaces, ns) {
				continue
			}
			switch k.Kind {
			case "Pod":
				var p corev1.Pod
				if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, &p); err == nil {
					p.ManagedFields = nil
					src.Pods = append(src.Pods, p)
				}
				if PodFinished(obj) {
					continue
				}
			case "ReplicaSet":
				if ref := controller(obj); ref != "" {
					src.Owners["ReplicaSet "+ns+"/"+obj.GetName()] = ref
				}
			case "Deployment", "StatefulSet", "DaemonSet":
				field := "availableReplicas"
				if k.Kind == "DaemonSet" {
					field = "numberAvailable"
				}
				n, _, _ := unstructured.NestedInt64(obj.Object, "status", field)
				src.Available[Key(k.Kind, obj)] = int32(n)
			case "CustomResourceDefinition":
				src.CRDs++
				if ck, ok := crKind(obj); ok {
					crKinds = append(crKinds, ck)
				}
			}
			key := Key(k.Kind, obj)
			if why := Prepare(k, obj); why != "" {
				src.Skipped = append(src.Skipped, Skip{Key: key, Reason: why})
				continue
			}
			src.Objects = append(src.Objects, Object{Kind: k, Obj: obj})
		}
	}

	// Custom resources: one LIST per CRD, at its storage version.
	crs := make([][]unstructured.Unstructured, len(crKinds))
	for i, k := range crKinds {
		wg.Go(func() {
			l, err := dyn.Resource(k.GVR).List(ctx, list)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				src.Skipped = append(src.Skipped, Skip{Key: k.Kind + " (all)", Reason: fmt.Sprintf("could not be listed: %v", err)})
				return
			}
			crs[i] = l.Items
		})
	}
	wg.Wait()
	for i, k := range crKinds {
		for j := range crs[i] {
			obj := &crs[i][j]
			if !InNamespaces(opts.Namespaces, obj.GetNamespace()) {
				continue
			}
			key := Key(k.Kind, obj)
			if why := Prepare(k, obj); why != "" {
				src.Skipped = append(src.Skipped, Skip{Key: key, Reason: why})
				continue
			}
			src.Objects = append(src.Objects, Object{Kind: k, Obj: obj})
		}
	}
	sort.SliceStable(src.Objects, func(i, j int) bool { return writeRank(src.Objects[i].Kind) < writeRank(src.Objects[j].Kind) })
	src.Requests = requests.Load()
	return src, nil
}

// writeRank orders the writes: built-in kinds in Kinds order, custom
// resources after the workloads and before the unmanaged pods.
func writeRank(k Kind) int {
	for i, b := range Kinds {
		if b.GVR == k.GVR {
			if b.Kind == "Pod" {
				return len(Kinds) + 1
			}
			return i
		}
	}
	return len(Kinds)
}

// crKind is the kind of a CRD's objects, listed at the storage version
// (or the first served one).
func crKind(crd *unstructured.Unstructured) (Kind, bool) {
	group, _, _ := unstructured.NestedString(crd.Object, "spec", "group")
	plural, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "plural")
	kind, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "kind")
	scope, _, _ := unstructured.NestedString(crd.Object, "spec", "scope")
	versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
	pick := ""
	for _, v := range versions {
		m, _ := v.(map[string]any)
		name, _ := m["name"].(string)
		served, _ := m["served"].(bool)
		storage, _ := m["storage"].(bool)
		if served && (storage || pick == "") {
			pick = name
		}
	}
	if pick == "" || plural == "" {
		return Kind{}, false
	}
	return Kind{GVR: gvr(group, pick, plural), Kind: kind, Namespaced: scope == "Namespaced"}, true
}

// secretNames lists Secrets as a server-side table with object metadata
// only: names, namespaces, labels and types, never data.
func secretNames(ctx context.Context, rc rest.Interface) ([]unstructured.Unstructured, error) {
	raw, err := rc.Get().AbsPath("/api/v1/secrets").
		Param("includeObject", "Metadata").Param("resourceVersion", "0").
		SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").
		DoRaw(ctx)
	if err != nil {
		return nil, err
	}
	var table struct {
		Columns []struct {
			Name string `json:"name"`
		} `json:"columnDefinitions"`
		Rows []struct {
			Cells  []any `json:"cells"`
			Object struct {
				Metadata metav1.ObjectMeta `json:"metadata"`
			} `json:"object"`
		} `json:"rows"`
	}
	if err := json.Unmarshal(raw, &table); err != nil {
		return nil, fmt.Errorf("decoding the secrets table: %w", err)
	}
	typeCol := -1
	for i, c := range table.Columns {
		if c.Name == "Type" {
			typeCol = i
		}
	}
	if typeCol < 0 {
		return nil, errors.New("the secrets table has no Type column")
	}
	out := make([]unstructured.Unstructured, 0, len(table.Rows))
	for _, r := range table.Rows {
		typ := ""
		if typeCol < len(r.Cells) {
			typ, _ = r.Cells[typeCol].(string)
		}
		m := r.Object.Metadata
		labels := map[string]any{}
		for k, v := range m.Labels {
			labels[k] = v
		}
		out = append(out, unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "v1", "kind": "Secret", "type": typ,
			"metadata": map[string]any{"name": m.Name, "namespace": m.Namespace, "labels": labels},
		}})
	}
	return out, nil
}

type counting struct {
	rt http.RoundTripper
	n  *atomic.Int64
}

func (c counting) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.rt.RoundTrip(r)
}
