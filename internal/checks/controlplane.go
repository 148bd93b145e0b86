package checks

import (
	"fmt"
	"strings"
	"time"

	"github.com/kup-project/kup/internal/version"
)

// ControlPlane judges the version skew (now, and at every stage of the
// path), the local kubectl's skew (a warning: it is the operator's client,
// not the cluster), the apiserver's serving certificate (a blocker when it
// expires before the upgrade can finish, a warning within 30 days), and
// etcd's health, alarms and database size against its quota.
func ControlPlane(in Input) []Finding { return controlPlane(newIndex(in)) }

func controlPlane(x *index) []Finding {
	var out []Finding
	out = append(out, skew(x)...)
	out = append(out, servingCert(x)...)
	out = append(out, etcdHealth(x)...)
	return out
}

func skewObject(v version.SkewViolation) Object {
	switch v.Component {
	case version.Kubelet, version.KubeProxy:
		return nodeObject(v.Object)
	case version.Kubectl:
		return Object{Kind: "Binary", Name: "kubectl"}
	}
	return Object{Kind: "Component", Name: v.Object}
}

func skew(x *index) (out []Finding) {
	cv, _ := x.snap.ClusterVersions()
	if len(cv.APIServers) == 0 {
		return []Finding{unknown(SkewViolation, "no kube-apiserver version could be read")}
	}
	var kubectl []string // one finding for the operator's client, now and after
	defer func() {
		if len(kubectl) > 0 {
			out = append(out, found(KubectlSkew, strings.Join(kubectl, "; "), Object{Kind: "Binary", Name: "kubectl"}))
		}
	}()
	seen := map[string]bool{}
	for _, v := range version.CheckSkew(cv) {
		if v.Component == version.Kubectl {
			kubectl = append(kubectl, "now: "+v.Explanation)
			continue
		}
		seen[v.Explanation] = true
		out = append(out, found(SkewViolation, "now: "+v.String(), skewObject(v)))
	}
	p := x.in.Path
	if p == nil {
		return out
	}
	for _, h := range p.Hops {
		for _, stage := range []struct {
			name string
			vs   []version.SkewViolation
		}{{"before", h.SkewBefore}, {"during", h.SkewDuring}, {"after", h.SkewAfter}} {
			for _, v := range stage.vs {
				if seen[v.Explanation] {
					continue
				}
				seen[v.Explanation] = true
				out = append(out, foundf(SkewViolation, []Object{skewObject(v)}, "%s hop %d (%s → %s): %s", stage.name, h.Index, h.From, h.To, v.String()))
			}
		}
	}
	for _, v := range p.SkewFinal {
		if !seen[v.Explanation] {
			seen[v.Explanation] = true
			out = append(out, found(SkewViolation, "after the upgrade: "+v.String(), skewObject(v)))
		}
	}
	if cv.Kubectl != nil {
		if d := cv.Kubectl.MinorsAfter(p.To); d > 1 || d < -1 {
			kubectl = append(kubectl, fmt.Sprintf("after the upgrade: local kubectl %s is %d minor(s) away from kube-apiserver %s; kubectl is supported within one minor", cv.Kubectl, abs(d), p.To))
		}
	}
	return out
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

func servingCert(x *index) []Finding {
	c := x.in.ServingCertificate
	switch {
	case c == nil:
		return []Finding{unknown(CertExpiresDuring, "the apiserver's serving certificate was not read")}
	case c.Error != "":
		return []Finding{unknown(CertExpiresDuring, c.Error)}
	}
	obj := Object{Kind: "Certificate", Name: "kube-apiserver serving certificate at " + c.Address}
	left := c.NotAfter.Sub(x.now)
	when := c.NotAfter.UTC().Format("2006-01-02 15:04 MST")
	switch {
	case left <= 0:
		return []Finding{foundf(CertExpiresDuring, []Object{obj}, "the certificate (%s, issued by %s) expired on %s", c.Subject, c.Issuer, when)}
	case left < x.in.UpgradeWindow:
		return []Finding{foundf(CertExpiresDuring, []Object{obj}, "the certificate (%s, issued by %s) expires on %s, in %s: within the %s the upgrade may take",
			c.Subject, c.Issuer, when, roundDuration(left), roundDuration(x.in.UpgradeWindow))}
	case left < CertWarnBefore:
		return []Finding{foundf(CertExpiresSoon, []Object{obj}, "the certificate (%s, issued by %s) expires on %s, in %s", c.Subject, c.Issuer, when, roundDuration(left))}
	}
	return nil
}

// roundDuration renders a duration in days once it is longer than two.
func roundDuration(d time.Duration) string {
	if d > 48*time.Hour {
		return fmt.Sprintf("%d days", int(d.Hours()/24))
	}
	return d.Round(time.Minute).String()
}

func etcdHealth(x *index) []Finding {
	e := x.in.Etcd
	if e == nil {
		return []Finding{unknown(EtcdUnhealthy, "kup knows no etcd endpoint for this cluster (it reaches etcd only on sandbox clusters so far); check etcdctl endpoint health and alarm list by hand")}
	}
	obj := Object{Kind: "Etcd", Name: e.Endpoint}
	var out []Finding
	if e.Error != "" {
		out = append(out, unknown(EtcdUnhealthy, e.Error, obj))
	}
	var bad []string
	if !e.Healthy && (e.Error == "" || e.HealthReason != "") {
		reason := e.HealthReason
		if reason == "" {
			reason = "unhealthy"
		}
		bad = append(bad, "/health: "+reason)
	}
	if len(e.Alarms) > 0 {
		bad = append(bad, "active alarms: "+strings.Join(e.Alarms, ", "))
	}
	if len(bad) > 0 {
		out = append(out, found(EtcdUnhealthy, "etcd at "+e.Endpoint+": "+strings.Join(bad, "; "), obj))
	}
	if e.Quota > 0 && e.DBSize > 0 {
		if share := float64(e.DBSize) / float64(e.Quota); share >= EtcdQuotaWarn {
			out = append(out, foundf(EtcdNearQuota, []Object{obj}, "etcd at %s: database %s of its %s quota (%.0f%%; %s in use, the rest reclaimable by defragmentation)",
				e.Endpoint, bytesIEC(e.DBSize), bytesIEC(e.Quota), share*100, bytesIEC(e.DBSizeInUse)))
		}
	} else if e.Error == "" && e.DBSize > 0 && e.Quota == 0 {
		out = append(out, unknown(EtcdNearQuota, "etcd at "+e.Endpoint+" does not report its quota (etcd before 3.6); compare its database size ("+bytesIEC(e.DBSize)+") with --quota-backend-bytes by hand", obj))
	}
	return out
}

func bytesIEC(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
