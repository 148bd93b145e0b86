// Package controlplane walks a control plane to a target version one
// minor at a time: it decides the route (PlanRoute, pure: the version
// path with the provider's installable versions, plus finishing a hop an
// earlier run left half done), takes an etcd backup before the first hop,
// asks the provider to perform each hop, and lets the next one start only
// after a health gate (every kube-apiserver ready, every component at the
// hop's version, every kubelet still within the version-skew policy). When
// a hop fails it says where it stopped, what runs now and what to do.
//
// It never changes the world itself — the provider swaps binaries, the
// backup callback writes the snapshot — and never moves a kubelet: a route
// that needs nodes rolled before a hop is refused before anything starts.
// It never fails because the API was briefly away during a hop: reads are
// retried with backoff while an apiserver restarts.
package controlplane
