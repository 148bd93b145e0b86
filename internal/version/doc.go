// Package version decides what Kubernetes versions mean for an upgrade: it
// parses and compares versions (keeping a distribution's suffix apart from the
// upstream version), knows which patch releases exist (an embedded, dated
// release table that a file can override), judges a set of component versions
// against the official version-skew policy, and plans the upgrade path: one
// minor per control-plane hop, and which nodes must be rolled before which hop.
//
// It never talks to a cluster, reads a file or the clock: callers pass the
// versions they observed, the table they trust and the time they consider
// "now". The only data it reads is its own embedded releases.json.
//
// The rules encoded here are the Kubernetes project's, not folklore:
//
//   - Version skew policy: https://kubernetes.io/releases/version-skew-policy/
//   - kube-apiserver must not skip minor versions, even in single-instance
//     clusters (same page, "Supported component upgrade order"); kubeadm
//     refuses to skip minors too:
//     https://kubernetes.io/docs/tasks/administer-cluster/kubeadm/kubeadm-upgrade/
//   - There is no supported control-plane downgrade; going back means
//     restoring an etcd backup taken before the upgrade.
package version
