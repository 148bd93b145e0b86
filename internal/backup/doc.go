// Package backup takes, proves and restores etcd snapshots: the backup kup
// makes before it changes a cluster.
//
// A snapshot is streamed over etcd's maintenance API from exactly one
// member, written to "<final>.part" (mode 0600, in a directory created
// 0700), checked against the sha256 etcd appends to the stream, fsynced,
// verified from disk as a separate step (Verify: the trailer again,
// etcdutl's status, and a trial restore into a scratch directory that is
// removed afterwards), renamed into place with the directory fsynced, and
// described by a JSON manifest beside it. The final path therefore only
// ever holds a complete, verified snapshot (or, with encryption, the age
// file of one).
//
// It never copies a live data directory, never restores into a directory
// that holds anything, and never restores a snapshot whose hash does not
// match. Stopping etcd and pointing it at a restored directory is the
// caller's job (the sandbox's Cluster.RestoreEtcd, or an operator).
package backup
