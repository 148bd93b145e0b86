package version

import (
	"fmt"
	"sort"
)

// Component names a Kubernetes component as the skew policy does.
type Component string

// The components the version-skew policy speaks about.
const (
	KubeAPIServer          Component = "kube-apiserver"
	KubeControllerManager  Component = "kube-controller-manager"
	KubeScheduler          Component = "kube-scheduler"
	CloudControllerManager Component = "cloud-controller-manager"
	Kubelet                Component = "kubelet"
	KubeProxy              Component = "kube-proxy"
	Kubectl                Component = "kubectl"
)

// Stable rule IDs, one per sentence of the policy
// (https://kubernetes.io/releases/version-skew-policy/#supported-version-skew).
// Checks, reports and tests refer to these; never renumber them.
const (
	// "In highly-available (HA) clusters, the newest and oldest
	// kube-apiserver instances must be within one minor version."
	RuleAPIServerHA = "kube-apiserver-ha-within-1-minor"
	// "kube-controller-manager, kube-scheduler, and cloud-controller-manager
	// must not be newer than the kube-apiserver instances they communicate
	// with." With a load balancer in front of HA apiservers that means the
	// oldest instance.
	RuleControllerNewer = "controller-newer-than-apiserver"
	// "... may be up to one minor version older (to allow live upgrades)."
	RuleControllerOlder = "controller-older-than-n-1"
	// "kubelet must not be newer than kube-apiserver."
	RuleKubeletNewer = "kubelet-newer-than-apiserver"
	// "kubelet may be up to three minor versions older than kube-apiserver"
	RuleKubeletOlderN3 = "kubelet-older-than-n-3"
	// "(kubelet < 1.25 may only be up to two minor versions older than
	// kube-apiserver)". Three behind with the older kubelet at ≥ 1.25 needs
	// an apiserver ≥ 1.28, so this is the same as "n-2 while the apiserver is
	// older than 1.28": the rule introduced by KEP-3935 in 1.28.
	RuleKubeletOlderN2 = "kubelet-older-than-n-2"
	// The kube-proxy rules mirror the kubelet's, word for word.
	RuleKubeProxyNewer   = "kube-proxy-newer-than-apiserver"
	RuleKubeProxyOlderN3 = "kube-proxy-older-than-n-3"
	RuleKubeProxyOlderN2 = "kube-proxy-older-than-n-2"
	// "kube-proxy may be up to three minor versions older or newer than the
	// kubelet instance it runs alongside (kube-proxy < 1.25 ... two)".
	RuleKubeProxyKubelet = "kube-proxy-kubelet-skew"
	// "kubectl is supported within one minor version (older or newer) of
	// kube-apiserver"; with HA skew, of every instance.
	RuleKubectl = "kubectl-within-1-minor"
)

// nodeSkewLimit is how many minors a kubelet or kube-proxy at v may trail
// kube-apiserver: three, or two for components older than 1.25.
func nodeSkewLimit(v Version) (limit int, rule string) {
	if v.Major() == 1 && v.Minor() < 25 {
		return 2, "n-2"
	}
	return 3, "n-3"
}

// ClusterVersions is every component version the skew policy relates.
// Instance order in the control-plane slices only names them in messages
// ("kube-apiserver[1]").
type ClusterVersions struct {
	APIServers              []Version          `json:"apiServers"`
	ControllerManagers      []Version          `json:"controllerManagers,omitempty"`
	Schedulers              []Version          `json:"schedulers,omitempty"`
	CloudControllerManagers []Version          `json:"cloudControllerManagers,omitempty"`
	Kubelets                map[string]Version `json:"kubelets,omitempty"`    // node name → kubelet version
	KubeProxies             map[string]Version `json:"kubeProxies,omitempty"` // node name → kube-proxy version
	Kubectl                 *Version           `json:"kubectl,omitempty"`
}

// SkewViolation is one broken sentence of the skew policy: which component
// instance, against which other one, and what to do about it.
type SkewViolation struct {
	Rule           string    `json:"rule"`
	Component      Component `json:"component"`
	Object         string    `json:"object"` // node name, or component[index] for control-plane instances
	Version        Version   `json:"version"`
	Against        Component `json:"against"`
	AgainstObject  string    `json:"againstObject"`
	AgainstVersion Version   `json:"againstVersion"`
	Explanation    string    `json:"explanation"`
}

func (s SkewViolation) String() string {
	return fmt.Sprintf("[%s] %s", s.Rule, s.Explanation)
}

type instance struct {
	name string
	v    Version
}

func instances(c Component, vs []Version) []instance {
	out := make([]instance, len(vs))
	for i, v := range vs {
		out[i] = instance{fmt.Sprintf("%s[%d]", c, i), v}
	}
	return out
}

// oldestNewest returns the oldest and newest instance by minor (the unit of
// the policy); ties keep the first.
func oldestNewest(is []instance) (oldest, newest instance) {
	oldest, newest = is[0], is[0]
	for _, i := range is[1:] {
		if i.v.MinorsAfter(oldest.v) < 0 {
			oldest = i
		}
		if i.v.MinorsAfter(newest.v) > 0 {
			newest = i
		}
	}
	return oldest, newest
}

func plural(n int) string {
	if n == 1 {
		return "1 minor"
	}
	return fmt.Sprintf("%d minors", n)
}

// CheckSkew judges c against the official version-skew policy,
// https://kubernetes.io/releases/version-skew-policy/. The policy is written
// in minor versions, so patch and distribution differences never violate it.
// Components are only judged against the kube-apiservers; with none given,
// only the kube-proxy/kubelet pairing can be judged. The result is never nil,
// and is ordered: control plane, nodes by name, kubectl.
func CheckSkew(c ClusterVersions) []SkewViolation {
	out := []SkewViolation{}
	add := func(rule string, comp Component, obj instance, against Component, ag instance, format string, args ...any) {
		out = append(out, SkewViolation{
			Rule: rule, Component: comp, Object: obj.name, Version: obj.v,
			Against: against, AgainstObject: ag.name, AgainstVersion: ag.v,
			Explanation: fmt.Sprintf(format, args...),
		})
	}

	var oldestAPI, newestAPI instance
	haveAPI := len(c.APIServers) > 0
	if haveAPI {
		oldestAPI, newestAPI = oldestNewest(instances(KubeAPIServer, c.APIServers))
		if d := newestAPI.v.MinorsAfter(oldestAPI.v); d > 1 {
			add(RuleAPIServerHA, KubeAPIServer, oldestAPI, KubeAPIServer, newestAPI,
				"%s %s is %s behind %s %s (max 1 between HA kube-apiservers): upgrade the older instances one minor at a time until all are within one minor",
				oldestAPI.name, oldestAPI.v, plural(d), newestAPI.name, newestAPI.v)
		}
	}

	if haveAPI {
		for _, group := range []struct {
			comp Component
			vs   []Version
		}{
			{KubeControllerManager, c.ControllerManagers},
			{KubeScheduler, c.Schedulers},
			{CloudControllerManager, c.CloudControllerManagers},
		} {
			for _, in := range instances(group.comp, group.vs) {
				if d := in.v.MinorsAfter(oldestAPI.v); d > 0 {
					add(RuleControllerNewer, group.comp, in, KubeAPIServer, oldestAPI,
						"%s %s is newer than %s %s: upgrade every kube-apiserver to %s before %s, or run %s at %s",
						in.name, in.v, oldestAPI.name, oldestAPI.v, in.v.MinorString(), group.comp, group.comp, oldestAPI.v.MinorString())
				}
				if d := newestAPI.v.MinorsAfter(in.v); d > 1 {
					add(RuleControllerOlder, group.comp, in, KubeAPIServer, newestAPI,
						"%s %s is %s behind %s %s (max 1): upgrade %s to %s",
						in.name, in.v, plural(d), newestAPI.name, newestAPI.v, group.comp, newestAPI.v.MinorString())
				}
			}
		}
	}

	for _, node := range nodeNames(c) {
		kubelet, hasKubelet := c.Kubelets[node]
		proxy, hasProxy := c.KubeProxies[node]
		if haveAPI && hasKubelet {
			checkNodeComponent(add, Kubelet, RuleKubeletNewer, RuleKubeletOlderN3, RuleKubeletOlderN2,
				instance{node, kubelet}, oldestAPI, newestAPI)
		}
		if haveAPI && hasProxy {
			checkNodeComponent(add, KubeProxy, RuleKubeProxyNewer, RuleKubeProxyOlderN3, RuleKubeProxyOlderN2,
				instance{node, proxy}, oldestAPI, newestAPI)
		}
		if hasKubelet && hasProxy {
			limit, _ := nodeSkewLimit(proxy)
			if d := proxy.MinorsAfter(kubelet); d > limit || -d > limit {
				dir := "newer"
				if d < 0 {
					dir, d = "older", -d
				}
				add(RuleKubeProxyKubelet, KubeProxy, instance{node, proxy}, Kubelet, instance{node, kubelet},
					"kube-proxy %s on node %s is %s %s than its kubelet %s (max %d either way): bring kube-proxy and the kubelet on %s to the same minor",
					proxy, node, plural(d), dir, kubelet, limit, node)
			}
		}
	}

	if haveAPI && c.Kubectl != nil {
		k := instance{"kubectl", *c.Kubectl}
		for _, api := range []instance{oldestAPI, newestAPI} {
			if d := k.v.MinorsAfter(api.v); d > 1 || d < -1 {
				dir := "newer"
				if d < 0 {
					dir, d = "older", -d
				}
				add(RuleKubectl, Kubectl, k, KubeAPIServer, api,
					"kubectl %s is %s %s than %s %s (max 1 either way): use a kubectl at %s",
					k.v, plural(d), dir, api.name, api.v, kubectlAdvice(oldestAPI.v, newestAPI.v))
				break
			}
		}
	}
	return out
}

// kubectlAdvice lists the kubectl minors every apiserver supports.
func kubectlAdvice(oldest, newest Version) string {
	var ok []string
	for m := newest.Minor() - 1; m <= oldest.Minor()+1; m++ {
		if m >= 0 {
			ok = append(ok, fmt.Sprintf("%d.%d", newest.Major(), m))
		}
	}
	switch len(ok) {
	case 0:
		return "no single minor (fix the kube-apiserver skew first)"
	case 1:
		return ok[0]
	}
	s := ok[0]
	for i := 1; i < len(ok)-1; i++ {
		s += ", " + ok[i]
	}
	return s + " or " + ok[len(ok)-1]
}

// checkNodeComponent applies the kubelet / kube-proxy rules, which the policy
// words identically: not newer than the oldest apiserver, at most three (two
// below 1.25) minors older than the newest.
func checkNodeComponent(add func(string, Component, instance, Component, instance, string, ...any),
	comp Component, ruleNewer, ruleN3, ruleN2 string, in, oldestAPI, newestAPI instance) {
	if d := in.v.MinorsAfter(oldestAPI.v); d > 0 {
		add(ruleNewer, comp, in, KubeAPIServer, oldestAPI,
			"%s %s on node %s is %s newer than %s %s: upgrade the control plane to %s first, or run the node at %s or older; a %s must never be ahead of kube-apiserver",
			comp, in.v, in.name, plural(d), oldestAPI.name, oldestAPI.v, in.v.MinorString(), oldestAPI.v.MinorString(), comp)
	}
	limit, which := nodeSkewLimit(in.v)
	if d := newestAPI.v.MinorsAfter(in.v); d > limit {
		rule := ruleN3
		if which == "n-2" {
			rule = ruleN2
		}
		add(rule, comp, in, KubeAPIServer, newestAPI,
			"%s %s on node %s is %s behind %s %s (max %d for a %s at %s): upgrade the node to at least %d.%d",
			comp, in.v, in.name, plural(d), newestAPI.name, newestAPI.v, limit, comp, in.v.MinorString(),
			newestAPI.v.Major(), oldestAllowedNodeMinor(newestAPI.v))
	}
}

// oldestAllowedNodeMinor is the oldest kubelet/kube-proxy minor that api
// supports: n-3, unless that would be older than 1.25, whose components only
// get n-2.
func oldestAllowedNodeMinor(api Version) int {
	if m := api.Minor() - 3; m >= 25 || api.Major() != 1 {
		return m
	}
	return api.Minor() - 2
}

func nodeNames(c ClusterVersions) []string {
	seen := map[string]bool{}
	var names []string
	for n := range c.Kubelets {
		if !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	for n := range c.KubeProxies {
		if !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}
