package checks

import (
	"bytes"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kup-project/kup/internal/deprecation"
)

// APIs finds use of API versions that a hop of the path removes, from four
// kinds of evidence: the apiserver's apiserver_requested_deprecated_apis
// metric (clients, including those outside the cluster), the
// last-applied-configuration annotations of live objects, the manifests
// stored in Helm 3 release secrets, and the --manifests files. Use of an
// API a hop removes is a blocker; of one already gone, a warning; of one
// deprecated but still served at the target, information. Every finding
// names the replacement.
func APIs(in Input) []Finding { return apis(newIndex(in)) }

// sourceIDs is the blocker ID for each kind of evidence, so a user can
// waive one (say, the metric, after retiring the client) and not another.
var sourceIDs = map[deprecation.Source]string{
	deprecation.SourceHelmRelease: APIRemovedHelm,
	deprecation.SourceLastApplied: APIRemovedApplied,
	deprecation.SourceMetric:      APIRemovedCalled,
	deprecation.SourceManifest:    APIRemovedManifest,
}

func apis(x *index) []Finding {
	table := x.in.APITable
	if table == nil {
		table = deprecation.Builtin()
	}
	if x.in.Path == nil {
		var out []Finding
		for _, id := range []string{APIRemovedHelm, APIRemovedApplied, APIRemovedCalled, APIRemovedManifest} {
			out = append(out, unknown(id, "there is no upgrade path, so which API versions it removes is unknown"))
		}
		return out
	}
	var out []Finding
	var usages []deprecation.Usage

	// (a) The metric: who has called a deprecated API since the apiserver
	// started.
	switch {
	case len(x.snap.Metrics) > 0:
		us, err := table.ScanMetrics(bytes.NewReader(x.snap.Metrics))
		usages = append(usages, us...)
		if err != nil {
			out = append(out, unknown(APIRemovedCalled, "reading apiserver_requested_deprecated_apis: "+err.Error()))
		}
	case x.snap.Unknown["apiserver metrics"] != "":
		out = append(out, unknown(APIRemovedCalled, "the apiserver's /metrics could not be read: "+x.snap.Unknown["apiserver metrics"]))
	}

	// (b) Last-applied annotations: the workloads and budgets the snapshot
	// holds, and the other kinds the caller listed.
	objs := make([]metav1.Object, 0, len(x.in.Applied)+len(x.snap.Deployments)+len(x.snap.PDBs))
	for i := range x.snap.Deployments {
		objs = append(objs, &x.snap.Deployments[i])
	}
	for i := range x.snap.StatefulSets {
		objs = append(objs, &x.snap.StatefulSets[i])
	}
	for i := range x.snap.DaemonSets {
		objs = append(objs, &x.snap.DaemonSets[i])
	}
	for i := range x.snap.PDBs {
		objs = append(objs, &x.snap.PDBs[i])
	}
	objs = append(objs, x.in.Applied...)
	us, err := table.ScanLastApplied(objs...)
	usages = append(usages, us...)
	if err != nil {
		out = append(out, unknown(APIRemovedApplied, err.Error()))
	}
	if x.in.AppliedErr != "" {
		out = append(out, unknown(APIRemovedApplied, "some kinds could not be listed: "+x.in.AppliedErr))
	}

	// (c) Helm 3 release records.
	if why := x.snap.Unknown["helm release secrets"]; why != "" {
		out = append(out, unknown(APIRemovedHelm, "Helm release secrets could not be listed: "+why))
	}
	var secrets []deprecation.HelmSecret
	for _, s := range x.snap.HelmSecrets {
		secrets = append(secrets, deprecation.HelmSecret{Namespace: s.Namespace, Name: s.Name, Labels: s.Labels, Data: s.Data["release"]})
	}
	us, err = table.ScanHelmReleases(secrets)
	usages = append(usages, us...)
	if err != nil {
		out = append(out, unknown(APIRemovedHelm, err.Error()))
	}

	// (d) Manifest files, read by the caller.
	usages = append(usages, x.in.Manifests...)
	for _, e := range x.in.ManifestErrors {
		out = append(out, unknown(APIRemovedManifest, e))
	}

	for _, u := range usages {
		if f, ok := x.judgeUsage(table, u); ok {
			out = append(out, f)
		}
	}
	return out
}

// judgeUsage turns one usage into a finding: removed by a hop, already
// removed, or only deprecated.
func (x *index) judgeUsage(table *deprecation.Table, u deprecation.Usage) (Finding, bool) {
	e := u.Entry
	obj := usageObject(u)
	objs := []Object{obj}
	if u.Source == deprecation.SourceHelmRelease {
		objs = append(objs, Object{Kind: "HelmRelease", Namespace: u.Where.ReleaseNamespace, Name: u.Where.Release})
	}
	where := u.Where.String()
	if where == "" {
		where = "last-applied-configuration annotation"
		if u.Source != deprecation.SourceLastApplied {
			where = string(u.Source)
		}
	}
	replacement := "no replacement: the API goes away"
	if r := e.ReplacementAPI(); r != deprecation.NoReplacement {
		replacement = "use " + r
		if final := table.FinalReplacement(e); final != deprecation.NoReplacement && final != e.Replacement {
			replacement += fmt.Sprintf(" (itself replaced by %s later)", final)
		}
		if e.ReplacementSince != 0 {
			replacement += fmt.Sprintf(", served since %s", e.ReplacementSince)
		}
	}
	subject := e.String()
	if obj.Name != "" && u.Source != deprecation.SourceMetric {
		subject += " " + nameOf(obj)
	}
	switch {
	case e.RemovedIn != 0 && int(e.RemovedIn) <= x.fromMinor:
		if u.Source == deprecation.SourceMetric {
			return Finding{}, false // cannot be requested successfully any more
		}
		return foundf(APIAlreadyRemoved, objs, "%s: %s was removed in %s, before the current version 1.%d; %s",
			where, subject, e.RemovedIn, x.fromMinor, replacement), true
	case e.RemovedIn != 0 && int(e.RemovedIn) <= x.toMinor:
		msg := fmt.Sprintf("%s: %s is removed in %s, which this upgrade reaches; %s", where, subject, e.RemovedIn, replacement)
		if u.Source == deprecation.SourceMetric {
			msg += "; the metric counts requests since the apiserver last started and does not name the client"
		}
		if e.Changes != "" && e.Changes != "No notable changes." {
			msg += ". Migration: " + e.Changes
		}
		return found(sourceIDs[u.Source], msg, objs...), true
	case e.DeprecatedIn != 0 && int(e.DeprecatedIn) > x.toMinor:
		return Finding{}, false // not even deprecated at the target yet
	default:
		when := "no removal scheduled"
		if e.RemovedIn != 0 {
			when = "removed in " + e.RemovedIn.String()
		}
		dep := "deprecated"
		if e.DeprecatedIn != 0 {
			dep += " since " + e.DeprecatedIn.String()
		}
		return foundf(APIDeprecated, objs, "%s: %s is %s (%s); %s", where, subject, dep, when, replacement), true
	}
}

// usageObject names what uses the API: the object, or for the metric, the
// API resource itself.
func usageObject(u deprecation.Usage) Object {
	if u.Source == deprecation.SourceMetric {
		res := u.Where.Resource
		if u.Where.Subresource != "" {
			res += "/" + u.Where.Subresource
		}
		return Object{Kind: "APIResource", Name: res}
	}
	// A Helm manifest often leaves the namespace out; the release object
	// next to it carries the namespace (the kind may be cluster-scoped).
	o := Object{Kind: u.Object.Kind, Namespace: u.Object.Namespace, Name: u.Object.Name}
	if o.Kind == "" {
		o.Kind = u.Entry.Kind
	}
	return o
}

func nameOf(o Object) string {
	if o.Namespace != "" {
		return o.Namespace + "/" + o.Name
	}
	return o.Name
}
