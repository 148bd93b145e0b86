package inventory

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
)

// This file holds the reads the preflight (kup plan) needs beyond a full
// Snapshot. They are separate functions, not Snapshot fields, so that
// `kup versions` does not pay for them; each makes one LIST per resource
// type and counts its requests like Read does.

// countedConfig is cfg with protobuf and a request counter, as Read sets
// up its own client.
func countedConfig(cfg *rest.Config, n *atomic.Int64) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	if cfg.QPS == 0 {
		cfg.QPS, cfg.Burst = 50, 100
	}
	// Deprecation warnings are the checks' business, not the terminal's.
	cfg.WarningHandler = rest.NoWarnings{}
	prev := cfg.WrapTransport
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		if prev != nil {
			rt = prev(rt)
		}
		return countingTransport{rt: rt, n: n}
	}
	return cfg
}

// ReadPersistentVolumes lists the cluster's PersistentVolumes (one LIST),
// which tell which pods keep their data on a node (local and hostPath
// volumes). requests is how many API requests it made.
func ReadPersistentVolumes(ctx context.Context, cfg *rest.Config) (pvs []corev1.PersistentVolume, requests int64, err error) {
	var n atomic.Int64
	cs, err := kubernetes.NewForConfig(countedConfig(cfg, &n))
	if err != nil {
		return nil, 0, fmt.Errorf("building a client for %s: %w", cfg.Host, err)
	}
	l, err := cs.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{ResourceVersion: "0"})
	if err != nil {
		return nil, n.Load(), fmt.Errorf("listing persistentvolumes: %w", err)
	}
	return l.Items, n.Load(), nil
}

// AppliedKind is an API kind whose live objects may carry a
// last-applied-configuration annotation worth reading: Kind, and the
// groups it may be served under now (the group of the deprecated version
// and of its replacement, so a CRD of the same kind name in another group
// is never listed).
type AppliedKind struct {
	Kind   string
	Groups []string
}

// AppliedObjects are live objects' metadata, with their kind, as listed by
// ReadAppliedObjects.
type AppliedObjects struct {
	Objects []metav1.PartialObjectMetadata
	// Listed names the resources listed ("ingresses.networking.k8s.io").
	Listed []string
	// Skipped names the resources not listed because avoid said so.
	Skipped []string
	// Errors name what could not be listed or discovered; the rest was.
	Errors   []string
	Requests int64
}

// ReadAppliedObjects finds, through discovery, which of kinds the cluster
// serves (in its preferred version, under one of the kind's groups), and
// lists each such resource's objects metadata-only — a metadata LIST
// carries the annotations and nothing else — once. Resources that cannot
// be listed (create-only reviews) are skipped, and so are those for which
// avoid(group/version, kind) is true: kup must not call a deprecated API
// itself, or the apiserver's apiserver_requested_deprecated_apis metric —
// evidence the checks read — would show kup as a client of it.
func ReadAppliedObjects(ctx context.Context, cfg *rest.Config, kinds []AppliedKind, avoid func(apiVersion, kind string) bool) (*AppliedObjects, error) {
	var n atomic.Int64
	ccfg := countedConfig(cfg, &n)
	dc, err := discovery.NewDiscoveryClientForConfig(ccfg)
	if err != nil {
		return nil, fmt.Errorf("building a discovery client for %s: %w", cfg.Host, err)
	}
	out := &AppliedObjects{}
	lists, err := dc.ServerPreferredResources()
	if err != nil {
		var partial *discovery.ErrGroupDiscoveryFailed
		if !errors.As(err, &partial) {
			out.Requests = n.Load()
			return out, fmt.Errorf("discovering the served APIs: %w", err)
		}
		// Some aggregated APIs did not answer; the others are usable.
		for gv, e := range partial.Groups {
			out.Errors = append(out.Errors, fmt.Sprintf("discovering %s: %v", gv, e))
		}
	}
	want := map[string]map[string]bool{} // kind → groups
	for _, k := range kinds {
		if want[k.Kind] == nil {
			want[k.Kind] = map[string]bool{}
		}
		for _, g := range k.Groups {
			want[k.Kind][g] = true
		}
	}
	type target struct {
		gvr  schema.GroupVersionResource
		kind string
	}
	var targets []target
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			continue
		}
		for _, r := range l.APIResources {
			if strings.Contains(r.Name, "/") || !want[r.Kind][gv.Group] || !slices.Contains(r.Verbs, "list") {
				continue
			}
			if avoid != nil && avoid(gv.String(), r.Kind) {
				out.Skipped = append(out.Skipped, r.Name+"."+gv.String())
				continue
			}
			targets = append(targets, target{gv.WithResource(r.Name), r.Kind})
		}
	}
	sort.Slice(targets, func(i, j int) bool { return targets[i].gvr.String() < targets[j].gvr.String() })
	mc, err := metadata.NewForConfig(ccfg)
	if err != nil {
		return nil, fmt.Errorf("building a metadata client for %s: %w", cfg.Host, err)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for _, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			l, err := mc.Resource(t.gvr).List(ctx, metav1.ListOptions{ResourceVersion: "0"})
			mu.Lock()
			defer mu.Unlock()
			name := t.gvr.Resource
			if t.gvr.Group != "" {
				name += "." + t.gvr.Group
			}
			if err != nil {
				out.Errors = append(out.Errors, fmt.Sprintf("listing %s: %v", name, err))
				return
			}
			out.Listed = append(out.Listed, name)
			for _, o := range l.Items {
				if _, ok := o.Annotations["kubectl.kubernetes.io/last-applied-configuration"]; !ok {
					continue // keep only what the scan needs
				}
				o.Kind = t.kind
				o.APIVersion = t.gvr.GroupVersion().String()
				out.Objects = append(out.Objects, o)
			}
		}()
	}
	wg.Wait()
	sort.Strings(out.Listed)
	sort.Strings(out.Errors)
	sort.Slice(out.Objects, func(i, j int) bool {
		a, b := out.Objects[i], out.Objects[j]
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
	out.Requests = n.Load()
	return out, nil
}
