// Package deprecation knows which Kubernetes API versions were removed or
// deprecated, and finds where a cluster or a set of manifests still uses them.
//
// It decides two things: what a given apiVersion/kind (or group/version/
// resource) is, per the table in apis.yaml, and which usages of such APIs can
// be read from the evidence a caller hands in. The table transcribes the
// Deprecated API Migration Guide
// (https://kubernetes.io/docs/reference/using-api/deprecation-guide/), extended
// with the removals that the Kubernetes source schedules through its
// prerelease-lifecycle annotations; apis.yaml says which entry comes from where
// and the newest release it was reviewed through.
//
// The scanners read four kinds of evidence, all as bytes or objects:
//   - the kube-apiserver's /metrics text (apiserver_requested_deprecated_apis),
//     which tells which deprecated APIs clients have called since the apiserver
//     started, but not which client;
//   - the kubectl.kubernetes.io/last-applied-configuration annotation, which
//     records the apiVersion the object was last applied with;
//   - Helm 3 release records (Secrets, or ConfigMaps with the same layout),
//     whose stored manifest Helm re-reads on the next upgrade and refuses when
//     it names an API the cluster no longer serves;
//   - manifest files (ScanManifests is the one function that reads files).
//
// It never talks to a cluster, never changes anything, and never decides what a
// usage means for an upgrade: callers turn Usages into findings.
//
// Helm release records are decoded by hand (base64, gzip, JSON, ten lines)
// instead of importing helm.sh/helm/v3, which would pull hundreds of modules
// into kup for that one format.
package deprecation
