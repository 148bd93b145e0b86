// Package inventory reads a cluster once and returns a Snapshot: every
// component's version, and (for a full read) the nodes, pods, budgets,
// workloads, recent warning events and the signals of deprecated-API use
// that the checks and the planner decide on.
//
// It makes one LIST per resource type, served from the apiserver's watch
// cache (resourceVersion=0) in protobuf — never a request per object — and
// counts its requests so benchmarks can report them. It never writes.
package inventory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kup-project/kup/internal/provider"
	"github.com/kup-project/kup/internal/version"
)

// Scope says how much to read.
type Scope int

const (
	// ScopeVersions reads what `kup versions` needs: /version, nodes,
	// kube-system pods, DaemonSets and Deployments.
	ScopeVersions Scope = iota
	// ScopeFull adds every pod, PDB, workload, warning events, Helm
	// release secrets and the apiserver's metrics.
	ScopeFull
)

// Options tune a read.
type Options struct {
	Scope Scope
	// ControlPlane, when known, reports components that run outside the
	// cluster's pods (the sandbox, managed control planes).
	ControlPlane provider.ControlPlane
	// Kubectl is the kubectl binary whose version to report; "" looks it up
	// on PATH, "-" skips it.
	Kubectl string
	// EventsSince bounds the warning events kept (default one hour).
	EventsSince time.Duration
	// Now is the time of the read (default time.Now()).
	Now time.Time
}

// Snapshot is one read of a cluster.
type Snapshot struct {
	Taken time.Time `json:"taken"`
	// Server is the gitVersion the apiserver we talk to reports.
	Server string `json:"server"`
	// Components are the control-plane instances found, from kube-system
	// pods and from the provider.
	Components []provider.Component `json:"components"`
	// Nodes' versions are in Nodes[i].Status.NodeInfo.
	Nodes []corev1.Node `json:"-"`
	// Addons are kube-system DaemonSets and Deployments by name, with
	// their images (kube-proxy, CoreDNS, CNI…).
	Addons []Addon `json:"addons"`
	// Kubectl is the local kubectl's client version, if found.
	Kubectl string `json:"kubectl,omitempty"`

	// The rest is filled by ScopeFull.
	Pods         []corev1.Pod                   `json:"-"`
	PDBs         []policyv1.PodDisruptionBudget `json:"-"`
	Deployments  []appsv1.Deployment            `json:"-"`
	StatefulSets []appsv1.StatefulSet           `json:"-"`
	DaemonSets   []appsv1.DaemonSet             `json:"-"`
	ReplicaSets  []appsv1.ReplicaSet            `json:"-"`
	Events       []corev1.Event                 `json:"-"`
	// HelmSecrets are Secrets labelled owner=helm (Helm 3 release records).
	HelmSecrets []corev1.Secret `json:"-"`
	// Metrics is the apiserver's /metrics text (for
	// apiserver_requested_deprecated_apis); empty if forbidden.
	Metrics []byte `json:"-"`
	// Unknown lists what could not be read and why (RBAC, timeouts): a
	// check that depends on it must report "unknown", never "pass".
	Unknown map[string]string `json:"unknown,omitempty"`

	// Requests is how many API requests the read made.
	Requests int64 `json:"requests"`
}

// Addon is a kube-system workload identified by name and image.
type Addon struct {
	Kind      string   `json:"kind"`
	Namespace string   `json:"namespace"`
	Name      string   `json:"name"`
	Images    []string `json:"images"`
}

// Read reads the cluster cfg points to.
func Read(ctx context.Context, cfg *rest.Config, opts Options) (*Snapshot, error) {
	var requests atomic.Int64
	cfg = rest.CopyConfig(cfg)
	// Protobuf is several times cheaper to decode than JSON for large
	// lists (30,000 pods), in CPU and memory.
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	if cfg.QPS == 0 {
		cfg.QPS, cfg.Burst = 50, 100
	}
	prev := cfg.WrapTransport
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		if prev != nil {
			rt = prev(rt)
		}
		return countingTransport{rt: rt, n: &requests}
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("building a client for %s: %w", cfg.Host, err)
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	s := &Snapshot{Taken: now, Unknown: map[string]string{}}
	sv, err := cs.Discovery().ServerVersion()
	if err != nil {
		return nil, fmt.Errorf("cannot reach the Kubernetes API at %s: %w (check --kubeconfig and --context)", cfg.Host, err)
	}
	s.Server = sv.GitVersion

	// rv=0: served from the watch cache, no quorum read of etcd.
	list := metav1.ListOptions{ResourceVersion: "0"}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var errs []error
	run := func(what string, required bool, f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil {
				mu.Lock()
				defer mu.Unlock()
				if required {
					errs = append(errs, fmt.Errorf("listing %s: %w", what, err))
				} else {
					s.Unknown[what] = err.Error()
				}
			}
		}()
	}
	var systemPods []corev1.Pod
	run("nodes", true, func() error {
		l, err := cs.CoreV1().Nodes().List(ctx, list)
		if err == nil {
			s.Nodes = l.Items
		}
		return err
	})
	run("kube-system daemonsets", false, func() error {
		l, err := cs.AppsV1().DaemonSets(metav1.NamespaceSystem).List(ctx, list)
		if err == nil {
			for _, d := range l.Items {
				s.Addons = append(s.Addons, Addon{Kind: "DaemonSet", Namespace: d.Namespace, Name: d.Name, Images: images(d.Spec.Template.Spec)})
			}
		}
		return err
	})
	run("kube-system deployments", false, func() error {
		l, err := cs.AppsV1().Deployments(metav1.NamespaceSystem).List(ctx, list)
		if err == nil {
			for _, d := range l.Items {
				s.Addons = append(s.Addons, Addon{Kind: "Deployment", Namespace: d.Namespace, Name: d.Name, Images: images(d.Spec.Template.Spec)})
			}
		}
		return err
	})
	if opts.Scope == ScopeFull {
		run("pods", true, func() error {
			pods, err := listPods(ctx, cs)
			if err == nil {
				s.Pods = pods
			}
			return err
		})
		run("poddisruptionbudgets", true, func() error {
			l, err := cs.PolicyV1().PodDisruptionBudgets("").List(ctx, list)
			if err == nil {
				s.PDBs = l.Items
			}
			return err
		})
		run("deployments", true, func() error {
			l, err := cs.AppsV1().Deployments("").List(ctx, list)
			if err == nil {
				s.Deployments = l.Items
			}
			return err
		})
		run("statefulsets", true, func() error {
			l, err := cs.AppsV1().StatefulSets("").List(ctx, list)
			if err == nil {
				s.StatefulSets = l.Items
			}
			return err
		})
		run("daemonsets", true, func() error {
			l, err := cs.AppsV1().DaemonSets("").List(ctx, list)
			if err == nil {
				s.DaemonSets = l.Items
			}
			return err
		})
		run("replicasets", true, func() error {
			l, err := cs.AppsV1().ReplicaSets("").List(ctx, list)
			if err == nil {
				s.ReplicaSets = l.Items
			}
			return err
		})
		since := opts.EventsSince
		if since == 0 {
			since = time.Hour
		}
		run("warning events", false, func() error {
			l, err := cs.CoreV1().Events("").List(ctx, metav1.ListOptions{ResourceVersion: "0", FieldSelector: "type=Warning"})
			if err == nil {
				for _, e := range l.Items {
					if eventTime(e).After(now.Add(-since)) {
						s.Events = append(s.Events, e)
					}
				}
			}
			return err
		})
		run("helm release secrets", false, func() error {
			l, err := cs.CoreV1().Secrets("").List(ctx, metav1.ListOptions{ResourceVersion: "0", LabelSelector: "owner=helm"})
			if err == nil {
				s.HelmSecrets = l.Items
			}
			return err
		})
		run("apiserver metrics", false, func() error {
			body, err := cs.Discovery().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
			if err == nil {
				s.Metrics = body
			}
			return err
		})
	} else {
		run("kube-system pods", false, func() error {
			l, err := cs.CoreV1().Pods(metav1.NamespaceSystem).List(ctx, list)
			if err == nil {
				systemPods = l.Items
			}
			return err
		})
	}
	var cpComponents []provider.Component
	if opts.ControlPlane != nil {
		run("control-plane components", false, func() error {
			cs, err := opts.ControlPlane.Components(ctx)
			cpComponents = cs
			return err
		})
	}
	if opts.Kubectl != "-" {
		run("kubectl", false, func() error {
			v, err := kubectlVersion(ctx, opts.Kubectl)
			s.Kubectl = v
			return err
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if opts.Scope == ScopeFull {
		for _, p := range s.Pods {
			if p.Namespace == metav1.NamespaceSystem {
				systemPods = append(systemPods, p)
			}
		}
	}
	s.Components = append(componentsFromPods(systemPods), cpComponents...)
	if !hasComponent(s.Components, "kube-apiserver") {
		s.Components = append(s.Components, provider.Component{Name: "kube-apiserver", Instance: cfg.Host, Version: s.Server, Source: "/version"})
	}
	sort.Slice(s.Addons, func(i, j int) bool { return s.Addons[i].Name < s.Addons[j].Name })
	if opts.Kubectl == "" && s.Unknown["kubectl"] != "" {
		delete(s.Unknown, "kubectl") // no kubectl on PATH is not a gap in the read
	}
	s.Requests = requests.Load()
	return s, nil
}

type countingTransport struct {
	rt http.RoundTripper
	n  *atomic.Int64
}

func (t countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.n.Add(1)
	return t.rt.RoundTrip(r)
}

func images(spec corev1.PodSpec) []string {
	var out []string
	for _, c := range spec.Containers {
		out = append(out, c.Image)
	}
	return out
}

func eventTime(e corev1.Event) time.Time {
	for _, t := range []time.Time{e.LastTimestamp.Time, e.EventTime.Time, e.FirstTimestamp.Time, e.CreationTimestamp.Time} {
		if !t.IsZero() {
			return t
		}
	}
	return time.Time{}
}

// controlPlaneLabels are the labels kubeadm puts on its static pods
// (component=kube-apiserver, …), which their mirror pods carry.
var controlPlaneNames = []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "cloud-controller-manager", "etcd"}

// componentsFromPods finds control-plane static pods (kubeadm labels them
// component=NAME, tier=control-plane) and reads the version from the image
// tag.
func componentsFromPods(pods []corev1.Pod) []provider.Component {
	var out []provider.Component
	for _, p := range pods {
		name := p.Labels["component"]
		if name == "" {
			name = p.Labels["k8s-app"]
		}
		known := false
		for _, n := range controlPlaneNames {
			known = known || n == name
		}
		if !known || len(p.Spec.Containers) == 0 {
			continue
		}
		out = append(out, provider.Component{Name: name, Instance: p.Spec.NodeName, Version: imageTag(p.Spec.Containers[0].Image), Source: "pod image " + p.Namespace + "/" + p.Name})
	}
	return out
}

func hasComponent(cs []provider.Component, name string) bool {
	for _, c := range cs {
		if c.Name == name {
			return true
		}
	}
	return false
}

// imageTag returns the tag of an image reference, without a digest.
func imageTag(image string) string {
	image, _, _ = strings.Cut(image, "@")
	slash := strings.LastIndex(image, "/")
	if i := strings.LastIndex(image, ":"); i > slash {
		return image[i+1:]
	}
	return ""
}

func kubectlVersion(ctx context.Context, bin string) (string, error) {
	if bin == "" {
		p, err := exec.LookPath("kubectl")
		if err != nil {
			return "", err
		}
		bin = p
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "version", "--client", "-o", "json").Output()
	if err != nil {
		return "", fmt.Errorf("%s version --client: %w", bin, err)
	}
	var v struct {
		ClientVersion struct {
			GitVersion string `json:"gitVersion"`
		} `json:"clientVersion"`
	}
	if err := json.Unmarshal(out, &v); err != nil {
		return "", fmt.Errorf("%s version --client: %w", bin, err)
	}
	return v.ClientVersion.GitVersion, nil
}

// ClusterVersions turns the snapshot into the form the skew rules judge.
// Versions that do not parse are returned as errors naming the object,
// not dropped: a node reporting garbage is itself a finding.
func (s *Snapshot) ClusterVersions() (version.ClusterVersions, []error) {
	var cv version.ClusterVersions
	var errs []error
	parse := func(what, v string) (version.Version, bool) {
		pv, err := version.Parse(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
			return version.Version{}, false
		}
		return pv, true
	}
	for _, c := range s.Components {
		if c.Name == "etcd" { // etcd has its own version line (3.x)
			continue
		}
		v, ok := parse(c.Name+" "+c.Instance, c.Version)
		if !ok {
			continue
		}
		switch c.Name {
		case "kube-apiserver":
			cv.APIServers = append(cv.APIServers, v)
		case "kube-controller-manager":
			cv.ControllerManagers = append(cv.ControllerManagers, v)
		case "kube-scheduler":
			cv.Schedulers = append(cv.Schedulers, v)
		case "cloud-controller-manager":
			cv.CloudControllerManagers = append(cv.CloudControllerManagers, v)
		}
	}
	cv.Kubelets = map[string]version.Version{}
	cv.KubeProxies = map[string]version.Version{}
	for _, n := range s.Nodes {
		if v, ok := parse("kubelet on node "+n.Name, n.Status.NodeInfo.KubeletVersion); ok {
			cv.Kubelets[n.Name] = v
		}
		//nolint:staticcheck // deprecated in the API, still the only per-node kube-proxy signal
		if kp := n.Status.NodeInfo.KubeProxyVersion; kp != "" {
			if v, ok := parse("kube-proxy on node "+n.Name, kp); ok {
				cv.KubeProxies[n.Name] = v
			}
		}
	}
	if s.Kubectl != "" {
		if v, ok := parse("local kubectl", s.Kubectl); ok {
			cv.Kubectl = &v
		}
	}
	return cv, errs
}
