package report

import (
	"time"

	"github.com/kup-project/kup/internal/version"
)

// UpgradeReport is everything `kup apply` leaves behind: what was planned,
// what ran and when, what every node went through, how available the
// protected workloads stayed, and the verdict. It is written as JSON
// (upgrade-report.json), Markdown (upgrade-report.md) and a self-contained
// HTML page (upgrade-report.html) next to the journal.
type UpgradeReport struct {
	Cluster  string    `json:"cluster"`
	RunID    string    `json:"runID"`
	From     string    `json:"from"`
	To       string    `json:"to"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	// Outcome is succeeded, failed, interrupted or waiting (for a
	// maintenance window).
	Outcome string `json:"outcome"`
	Reason  string `json:"reason,omitempty"`
	// Resumes counts how many times the run was resumed after a stop.
	Resumes int `json:"resumes"`

	Path     *version.UpgradePath `json:"path,omitempty"`
	Findings []FindingSummary     `json:"findings,omitempty"`
	Backup   *BackupRecord        `json:"backup,omitempty"`
	Hops     []HopRecord          `json:"hops"`
	Waves    []WaveRecord         `json:"waves"`
	Nodes    []NodeTimeline       `json:"nodes"`
	// Availability is sampled during the node rollout for every workload a
	// PodDisruptionBudget protects.
	Availability []Series      `json:"availability,omitempty"`
	Rollout      RolloutStats  `json:"rollout"`
	Verify       *VerifyRecord `json:"verify,omitempty"`
	// StillCordoned names every node cordoned at the end, with the reason:
	// nothing is left cordoned silently.
	StillCordoned []CordonedNode `json:"stillCordoned,omitempty"`
}

// FindingSummary is one preflight finding as the report shows it.
type FindingSummary struct {
	ID       string   `json:"id"`
	Severity string   `json:"severity"`
	Title    string   `json:"title"`
	Objects  []string `json:"objects,omitempty"`
	Waived   bool     `json:"waived,omitempty"`
}

// BackupRecord describes the etcd snapshot taken before the first change.
type BackupRecord struct {
	Path      string        `json:"path"`
	SHA256    string        `json:"sha256"`
	Size      int64         `json:"size"`
	Revision  int64         `json:"revision"`
	Keys      int64         `json:"keys"`
	Verified  bool          `json:"verified"`
	Encrypted bool          `json:"encrypted,omitempty"`
	Duration  time.Duration `json:"duration"`
	Skipped   string        `json:"skipped,omitempty"` // why no backup was taken
}

// HopRecord is one control-plane hop.
type HopRecord struct {
	Index    int       `json:"index"`
	From     string    `json:"from"`
	To       string    `json:"to"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Outcome  string    `json:"outcome"` // done, failed, skipped (already there)
	Detail   string    `json:"detail,omitempty"`
}

// WaveRecord is one wave of the node rollout.
type WaveRecord struct {
	Index    int       `json:"index"`
	Nodes    []string  `json:"nodes"`
	Limit    string    `json:"limit"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
}

// NodeTimeline is one node's story, for the Gantt chart.
type NodeTimeline struct {
	Node         string `json:"node"`
	Wave         int    `json:"wave"`
	From         string `json:"from"`
	To           string `json:"to"`
	Outcome      string `json:"outcome"`
	Reason       string `json:"reason,omitempty"`
	LeftCordoned bool   `json:"leftCordoned,omitempty"`
	Evicted      int    `json:"evicted"`
	Spans        []Span `json:"spans"`
}

// Span is one step of a node (cordon, drain, upgrade, ready, uncordon).
type Span struct {
	Step  string    `json:"step"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// Series is a workload's availability over time.
type Series struct {
	Workload string `json:"workload"` // "Deployment shop/cart"
	PDB      string `json:"pdb,omitempty"`
	Desired  int32  `json:"desired"`
	// MinAvailable is the fewest available replicas the PDB allows.
	MinAvailable int32   `json:"minAvailable"`
	Points       []Point `json:"points"`
}

// Point is one availability sample.
type Point struct {
	T         time.Time `json:"t"`
	Available int32     `json:"available"`
}

// RolloutStats are the node rollout's figures.
type RolloutStats struct {
	Waves int `json:"waves"`
	// Continuous: nodes were admitted as budgets came back, each of
	// Waves one admission; MostDown is the most nodes out of service at
	// once.
	Continuous        bool          `json:"continuous,omitempty"`
	MostDown          int           `json:"mostDown,omitempty"`
	Nodes             int           `json:"nodes"`
	Upgraded          int           `json:"upgraded"`
	Evictions         int           `json:"evictions"`
	EvictionsPerPod   float64       `json:"evictionsPerPod"`
	Refusals          int           `json:"refusals"`
	PDBViolations     int           `json:"pdbViolations"`
	Makespan          time.Duration `json:"makespan"`
	LowerBound        time.Duration `json:"lowerBound,omitempty"`
	LowerBoundWaves   int           `json:"lowerBoundWaves,omitempty"`
	WorstAvailability float64       `json:"worstAvailability"`
}

// VerifyRecord is the post-upgrade verification against the baseline.
type VerifyRecord struct {
	Passed bool          `json:"passed"`
	Checks []VerifyCheck `json:"checks"`
}

// VerifyCheck is one verification.
type VerifyCheck struct {
	Name   string `json:"name"`
	Passed bool   `json:"passed"`
	Detail string `json:"detail,omitempty"`
}

// CordonedNode is a node left cordoned and why.
type CordonedNode struct {
	Node   string `json:"node"`
	Reason string `json:"reason"`
}
