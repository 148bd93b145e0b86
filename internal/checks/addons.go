package checks

import (
	_ "embed"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	utilversion "k8s.io/apimachinery/pkg/util/version"
	"sigs.k8s.io/yaml"
)

//go:embed addons.yaml
var builtinAddons []byte

// AddonTable says which add-on versions their vendors support on which
// Kubernetes minors (see addons.yaml for the format and the sources).
type AddonTable struct {
	Reviewed string      `json:"reviewed"`
	Addons   []AddonSpec `json:"addons"`
}

// AddonSpec is one add-on: how to recognise it and what its vendor
// supports.
type AddonSpec struct {
	Name string `json:"name"`
	// Images are repository suffixes ("ingress-nginx/controller",
	// "kube-proxy") matched against images' repositories.
	Images   []string     `json:"images"`
	Source   string       `json:"source"`
	Ranges   []AddonRange `json:"ranges,omitempty"`
	Skew     *AddonSkew   `json:"skew,omitempty"`
	NoMatrix string       `json:"noMatrix,omitempty"`
}

// AddonRange: add-on versions From (inclusive) to Below (exclusive, ""
// open) are supported on Kubernetes KubernetesMin to KubernetesMax
// (inclusive, "" no stated bound).
type AddonRange struct {
	From          string `json:"from"`
	Below         string `json:"below,omitempty"`
	KubernetesMin string `json:"kubernetesMin"`
	KubernetesMax string `json:"kubernetesMax,omitempty"`
}

// AddonSkew: the add-on follows the node-component skew policy.
type AddonSkew struct {
	MaxOlder int `json:"maxOlder"`
}

// LoadAddonTable parses and checks a table in the addons.yaml format.
func LoadAddonTable(data []byte) (*AddonTable, error) {
	var t AddonTable
	if err := yaml.UnmarshalStrict(data, &t); err != nil {
		return nil, fmt.Errorf("parsing add-on table: %w", err)
	}
	var errs []error
	for _, a := range t.Addons {
		if a.Name == "" || len(a.Images) == 0 || a.Source == "" {
			errs = append(errs, fmt.Errorf("add-on %q: name, images and source are required", a.Name))
		}
		for _, r := range a.Ranges {
			from, err := utilversion.ParseGeneric(r.From)
			if err != nil {
				errs = append(errs, fmt.Errorf("add-on %s: from %q: %w", a.Name, r.From, err))
				continue
			}
			if r.Below != "" {
				below, err := utilversion.ParseGeneric(r.Below)
				if err != nil || !from.LessThan(below) {
					errs = append(errs, fmt.Errorf("add-on %s: range %s–%s is empty or invalid", a.Name, r.From, r.Below))
				}
			}
			lo, err := parseKubeMinor(r.KubernetesMin)
			if err != nil {
				errs = append(errs, fmt.Errorf("add-on %s: kubernetesMin: %w", a.Name, err))
			}
			if r.KubernetesMax != "" {
				hi, err := parseKubeMinor(r.KubernetesMax)
				if err != nil || hi < lo {
					errs = append(errs, fmt.Errorf("add-on %s: kubernetesMax %q is invalid or below kubernetesMin", a.Name, r.KubernetesMax))
				}
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &t, nil
}

var builtinAddonTable = sync.OnceValue(func() *AddonTable {
	t, err := LoadAddonTable(builtinAddons)
	if err != nil {
		panic(fmt.Sprintf("checks: embedded addons.yaml: %v", err)) // a build defect, caught by tests
	}
	return t
})

// BuiltinAddonTable is the table embedded from addons.yaml.
func BuiltinAddonTable() *AddonTable { return builtinAddonTable() }

// parseKubeMinor reads "1.26" into 26.
func parseKubeMinor(s string) (int, error) {
	major, minor, ok := strings.Cut(strings.TrimPrefix(s, "v"), ".")
	n, err := strconv.Atoi(minor)
	if !ok || major != "1" || err != nil || n < 0 {
		return 0, fmt.Errorf("Kubernetes minor %q is not of the form 1.N", s)
	}
	return n, nil
}

// Verdicts of an add-on at one Kubernetes minor.
const (
	VerdictSupported   = "supported"
	VerdictUnsupported = "unsupported"
	VerdictNoData      = "no-data"
)

// DetectedAddon is an add-on recognised in the cluster, with its verdict
// at every minor the control plane passes through.
type DetectedAddon struct {
	Name     string         `json:"name"`
	Version  string         `json:"version,omitempty"`
	Image    string         `json:"image"`
	Workload Object         `json:"workload"`
	Verdicts []AddonVerdict `json:"verdicts,omitempty"`
	Source   string         `json:"source,omitempty"`
	Note     string         `json:"note,omitempty"`
}

// AddonVerdict is the add-on's status at one Kubernetes minor.
type AddonVerdict struct {
	Kubernetes string `json:"kubernetes"` // "1.37"
	Verdict    string `json:"verdict"`
	Detail     string `json:"detail,omitempty"`
}

// Addons recognises CoreDNS, kube-proxy, the CNIs (Calico, Cilium,
// Flannel, Weave Net, Antrea), ingress-nginx, metrics-server, cert-manager
// and CSI drivers from the images of every DaemonSet, Deployment and
// StatefulSet, and judges each against the compatibility table at every
// Kubernetes minor the path's hops reach. Unsupported at any of them is a
// warning; a version the table has no row for is information.
func Addons(in Input) ([]Finding, []DetectedAddon) { return addons(newIndex(in)) }

type workloadImages struct {
	obj    Object
	images []string
}

func (x *index) workloadImages() []workloadImages {
	var out []workloadImages
	add := func(kind, ns, name string, spec *corev1.PodSpec) {
		var imgs []string
		for _, c := range spec.InitContainers {
			imgs = append(imgs, c.Image)
		}
		for _, c := range spec.Containers {
			imgs = append(imgs, c.Image)
		}
		out = append(out, workloadImages{Object{Kind: kind, Namespace: ns, Name: name}, imgs})
	}
	s := x.snap
	for i := range s.DaemonSets {
		d := &s.DaemonSets[i]
		add("DaemonSet", d.Namespace, d.Name, &d.Spec.Template.Spec)
	}
	for i := range s.Deployments {
		d := &s.Deployments[i]
		add("Deployment", d.Namespace, d.Name, &d.Spec.Template.Spec)
	}
	for i := range s.StatefulSets {
		d := &s.StatefulSets[i]
		add("StatefulSet", d.Namespace, d.Name, &d.Spec.Template.Spec)
	}
	if len(out) == 0 {
		// A versions-scope snapshot: kube-system's workloads only.
		for _, a := range s.Addons {
			out = append(out, workloadImages{Object{Kind: a.Kind, Namespace: a.Namespace, Name: a.Name}, a.Images})
		}
	}
	slices.SortFunc(out, func(a, b workloadImages) int { return compareObjects(a.obj, b.obj) })
	return out
}

// splitImage returns an image's repository path without the registry, and
// its tag without a digest.
func splitImage(image string) (repo, tag string) {
	image, _, _ = strings.Cut(image, "@")
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		image, tag = image[:i], image[i+1:]
	}
	// The first element is a registry when it looks like a host.
	if first, rest, ok := strings.Cut(image, "/"); ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		image = rest
	}
	return image, tag
}

func matchesRepo(repo, pattern string) bool {
	return repo == pattern || strings.HasSuffix(repo, "/"+pattern)
}

func addons(x *index) ([]Finding, []DetectedAddon) {
	table := x.in.AddonTable
	if table == nil {
		table = BuiltinAddonTable()
	}
	var detected []DetectedAddon
	var out []Finding
	for _, w := range x.workloadImages() {
		seen := map[string]bool{}
		for _, img := range w.images {
			repo, tag := splitImage(img)
			for _, spec := range table.Addons {
				if seen[spec.Name] || !slices.ContainsFunc(spec.Images, func(p string) bool { return matchesRepo(repo, p) }) {
					continue
				}
				seen[spec.Name] = true
				d := DetectedAddon{Name: spec.Name, Version: tag, Image: img, Workload: w.obj, Source: spec.Source, Note: spec.NoMatrix}
				f := x.judgeAddon(spec, &d)
				detected = append(detected, d)
				out = append(out, f...)
			}
			last := repo[strings.LastIndex(repo, "/")+1:]
			if !seen["CSI"] && strings.Contains(last, "csi") {
				seen["CSI"] = true
				detected = append(detected, DetectedAddon{Name: "CSI driver " + w.obj.Name, Version: tag, Image: img, Workload: w.obj,
					Note: "CSI drivers state their own supported Kubernetes versions; check the driver vendor's matrix (sidecars: https://kubernetes-csi.github.io/docs/sidecar-containers.html)"})
			}
		}
	}
	return out, detected
}

func (x *index) judgeAddon(spec AddonSpec, d *DetectedAddon) []Finding {
	if spec.NoMatrix != "" {
		return nil
	}
	if x.in.Path == nil {
		return []Finding{unknown(AddonUnsupported, "there is no upgrade path, so which Kubernetes versions to judge "+spec.Name+" at is unknown", d.Workload)}
	}
	v, err := utilversion.ParseGeneric(d.Version)
	var unsupported, nodata []string
	for _, minor := range x.hopMinors {
		k := fmt.Sprintf("1.%d", minor)
		verdict := AddonVerdict{Kubernetes: k, Verdict: VerdictNoData}
		switch {
		case err != nil:
			verdict.Detail = fmt.Sprintf("version %q from the image tag does not parse", d.Version)
		case spec.Skew != nil:
			am := int(v.Minor())
			if v.Major() == 1 && am <= minor && minor-am <= spec.Skew.MaxOlder {
				verdict.Verdict = VerdictSupported
			} else {
				verdict.Verdict = VerdictUnsupported
				verdict.Detail = fmt.Sprintf("%s %s must be at most %d minors older than, and not newer than, kube-apiserver %s", spec.Name, d.Version, spec.Skew.MaxOlder, k)
			}
		default:
			for _, r := range spec.Ranges {
				from, _ := utilversion.ParseGeneric(r.From)
				if v.LessThan(from) {
					continue
				}
				if r.Below != "" {
					if below, _ := utilversion.ParseGeneric(r.Below); !v.LessThan(below) {
						continue
					}
				}
				lo, _ := parseKubeMinor(r.KubernetesMin)
				hi := 1 << 30
				if r.KubernetesMax != "" {
					hi, _ = parseKubeMinor(r.KubernetesMax)
				}
				bounds := "Kubernetes " + r.KubernetesMin + " and later"
				if r.KubernetesMax != "" {
					bounds = "Kubernetes " + r.KubernetesMin + " to " + r.KubernetesMax
				}
				if minor >= lo && minor <= hi {
					verdict.Verdict = VerdictSupported
				} else {
					verdict.Verdict = VerdictUnsupported
				}
				verdict.Detail = fmt.Sprintf("%s %s is supported on %s", spec.Name, d.Version, bounds)
				break
			}
		}
		switch verdict.Verdict {
		case VerdictUnsupported:
			unsupported = append(unsupported, k)
		case VerdictNoData:
			nodata = append(nodata, k)
		}
		d.Verdicts = append(d.Verdicts, verdict)
	}
	var out []Finding
	if len(unsupported) > 0 {
		detail := ""
		for _, v := range d.Verdicts {
			if v.Verdict == VerdictUnsupported {
				detail = v.Detail
				break
			}
		}
		out = append(out, foundf(AddonUnsupported, []Object{d.Workload}, "%s %s (%s) is not supported on Kubernetes %s, which the upgrade reaches: %s (source: %s)",
			spec.Name, d.Version, d.Workload, strings.Join(unsupported, ", "), detail, spec.Source))
	}
	if len(nodata) > 0 {
		why := "kup's table has no row for this version"
		if err != nil {
			why = fmt.Sprintf("its version %q (image tag) does not parse", d.Version)
		} else if len(spec.Ranges) == 0 && spec.Skew == nil {
			why = "kup's table has no rows for this add-on yet"
		}
		out = append(out, foundf(AddonNoData, []Object{d.Workload}, "%s %s (%s) at Kubernetes %s: %s; see %s",
			spec.Name, d.Version, d.Workload, strings.Join(nodata, ", "), why, spec.Source))
	}
	return out
}
