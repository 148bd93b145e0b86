// Package checks is kup's preflight: it decides, from one read of a
// cluster (an inventory.Snapshot plus the few extra reads the action
// hands in), everything that would make an upgrade fail or hurt, and says
// for each thing found how bad it is and what to do.
//
// Every check is a pure function of its Input: it never talks to a
// cluster, never reads a file, never looks at the clock (Input.Now is the
// time), and never changes anything. Each finding carries a stable ID from
// the catalogue (catalogue.go), a severity — blocker, warning or info —
// the objects concerned, and one line saying what to do. A check that
// cannot run, because the evidence it needs could not be read, yields a
// finding of severity Unknown with the reason: "the check could not run"
// is never reported as "the check found nothing" (the distinction Cluster
// API's machineset preflight keeps).
//
// The families, one file each: health (nodes, pods, warning events),
// apis (removed and deprecated APIs, from the apiserver's metric,
// last-applied annotations, Helm releases and manifest files), drain
// (PodDisruptionBudgets and pods a drain cannot evict cleanly), capacity
// (can each node's pods go elsewhere), hygiene (requests, replicas,
// probes), addons (known add-ons against an embedded compatibility
// table, addons.yaml) and controlplane (version skew, the apiserver's
// serving certificate, etcd).
//
// What a finding means for the upgrade — whether apply refuses, whether
// the user waived it — is the caller's decision, not this package's.
package checks
