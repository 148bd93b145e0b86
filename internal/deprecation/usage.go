package deprecation

import (
	"fmt"
	"strings"
)

// Source says which kind of evidence a Usage was read from.
type Source string

const (
	// SourceMetric: the apiserver's apiserver_requested_deprecated_apis metric.
	SourceMetric Source = "metric"
	// SourceLastApplied: an object's kubectl last-applied-configuration annotation.
	SourceLastApplied Source = "last-applied"
	// SourceHelmRelease: the manifest stored in a Helm 3 release record.
	SourceHelmRelease Source = "helm-release"
	// SourceManifest: a manifest file.
	SourceManifest Source = "manifest"
)

// ObjectRef names the object that uses a deprecated API. Kind is the kind as
// written in the evidence; Namespace and Name are empty when the evidence does
// not say (metrics never do; manifests often omit the namespace).
type ObjectRef struct {
	Kind      string `json:"kind,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name,omitempty"`
}

// String renders "Kind namespace/name", leaving out what is unknown.
func (o ObjectRef) String() string {
	name := o.Name
	if o.Namespace != "" {
		name = o.Namespace + "/" + name
	}
	return strings.TrimSpace(o.Kind + " " + name)
}

// Location says where in the evidence the usage was found. Which fields are
// set depends on the Source:
//   - manifest: File, Document, and Item/Template when they apply;
//   - helm-release: Release, Revision, Chart, ChartVersion, ReleaseNamespace,
//     Document, and Template (the "# Source:" line Helm writes);
//   - metric: Resource and Subresource as the apiserver reported them
//     ("policy/v1beta1/poddisruptionbudgets"). The metric does not name the
//     client; the apiserver's audit log (user agent) is where that is found;
//   - last-applied: nothing beyond the ObjectRef.
type Location struct {
	File     string `json:"file,omitempty"`
	Document int    `json:"document,omitempty"` // 1-based, counting empty documents
	Item     string `json:"item,omitempty"`     // "items[2]" inside a List
	Template string `json:"template,omitempty"` // Helm's "# Source:" path

	Release          string `json:"release,omitempty"`
	Revision         int    `json:"revision,omitempty"`
	Chart            string `json:"chart,omitempty"`
	ChartVersion     string `json:"chartVersion,omitempty"`
	ReleaseNamespace string `json:"releaseNamespace,omitempty"`

	Resource    string `json:"resource,omitempty"`
	Subresource string `json:"subresource,omitempty"`
}

// String renders the location for a person: "deploy/app.yaml document 3
// items[1] (chart/templates/pdb.yaml)", "helm release shop/web revision 7
// (web-1.2.0) document 2", "apiserver metric for policy/v1beta1/poddisruptionbudgets".
func (l Location) String() string {
	var b strings.Builder
	switch {
	case l.Release != "":
		fmt.Fprintf(&b, "helm release %s/%s revision %d", l.ReleaseNamespace, l.Release, l.Revision)
		if l.Chart != "" {
			fmt.Fprintf(&b, " (%s-%s)", l.Chart, l.ChartVersion)
		}
	case l.File != "":
		b.WriteString(l.File)
	case l.Resource != "":
		b.WriteString("apiserver metric for " + l.Resource)
		if l.Subresource != "" {
			b.WriteString("/" + l.Subresource)
		}
	}
	if l.Document != 0 {
		fmt.Fprintf(&b, " document %d", l.Document)
	}
	if l.Item != "" {
		b.WriteString(" " + l.Item)
	}
	if l.Template != "" {
		fmt.Fprintf(&b, " (%s)", l.Template)
	}
	return strings.TrimSpace(b.String())
}

// Usage is one piece of evidence that something uses a removed or deprecated API.
type Usage struct {
	Entry  Entry     `json:"entry"`
	Source Source    `json:"source"`
	Object ObjectRef `json:"object"`
	Where  Location  `json:"where"`
}

// Removed reports whether the API this usage relies on is gone at targetMinor.
func (u Usage) Removed(targetMinor int) bool { return u.Entry.RemovedBy(targetMinor) }

// String renders one line, led by where the usage was found (or the source
// when the location says nothing more):
// "deploy/app.yaml document 2: networking.k8s.io/v1beta1 Ingress shop/web
// (removed in 1.22; use networking.k8s.io/v1)".
func (u Usage) String() string {
	var b strings.Builder
	if w := u.Where.String(); w != "" {
		b.WriteString(w)
	} else {
		b.WriteString(string(u.Source))
	}
	b.WriteString(": " + u.Entry.String())
	if name := objectName(u.Object); name != "" {
		b.WriteString(" " + name)
	}
	var notes []string
	switch {
	case u.Entry.RemovedIn != 0:
		notes = append(notes, "removed in "+u.Entry.RemovedIn.String())
	case u.Entry.DeprecatedIn != 0:
		notes = append(notes, "deprecated in "+u.Entry.DeprecatedIn.String())
	default:
		notes = append(notes, "deprecated")
	}
	if u.Entry.Replacement == NoReplacement {
		notes = append(notes, "no replacement")
	} else if u.Entry.Replacement != "" {
		notes = append(notes, "use "+u.Entry.Replacement)
	}
	fmt.Fprintf(&b, " (%s)", strings.Join(notes, "; "))
	return b.String()
}

func objectName(o ObjectRef) string {
	if o.Namespace != "" {
		return o.Namespace + "/" + o.Name
	}
	return o.Name
}
