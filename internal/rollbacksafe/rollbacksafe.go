// Package rollbacksafe decides kup's rollback-safe control-plane minor
// upgrade: whether a hop can be taken in two steps with an emulated
// version (KEP-4330 compatibility versions), the order in which the
// components move at each step, what every component must report at each
// point, and the life of the rollback window the journal records
// (opening → open → completing → closed, or → rolling back → closed).
//
// It never talks to a cluster and never reads a file: the action reads
// what runs and acts through the provider; this package only decides, so
// every rule here is reachable from a table test.
//
// The facts it rests on, with their sources:
//
//   - KEP-4330 "Compatibility Versions" (kubernetes/enhancements,
//     keps/sig-architecture/4330-compatibility-versions/README.md, and
//     https://www.kubernetes.dev/resources/keps/4330/: milestones alpha
//     v1.31, beta v1.32, stable v1.34): kube-apiserver,
//     kube-controller-manager and kube-scheduler accept
//     --emulated-version; the component then offers the APIs, features
//     and storage versions of the emulated minor, so "a Kubernetes binary
//     with emulation version set to N does not enable any changes
//     (storage versions, CEL feature, features) that would prevent it from
//     being rolled back". The emulated version must be ≤ the binary's and
//     at most three minors older (N-1 in alpha, N-3 from beta) — the
//     v1.37.2 binaries on this machine say "Options are: kube=1.34..1.37"
//     in --help.
//   - The compatibility-version page of the Kubernetes documentation
//     (kubernetes.io/docs/concepts/cluster-administration/compatibility-version):
//     "Since release v1.32 … --emulated-version must be <= binaryVersion".
//   - KEP-4330 "Skew": kube-controller-manager and kube-scheduler must
//     emulate a version within {minCompatibilityVersion}..{emulationVersion}
//     of the apiserver, and a kubelet must be ≤ the apiserver's emulated
//     version as well as its binary. Hence the orders below.
//   - Control-plane minor-version rollback on top of emulated versions was
//     announced with Kubernetes 1.33 (Google Cloud blog "Kubernetes gets
//     minor version rollback", 2025: "a new capability in Kubernetes 1.33
//     … control-plane minor-version rollback"; GKE's "two-step control
//     plane minor upgrades with rollback safety" start "from GKE 1.33",
//     https://discuss.google.dev/t/introducing-two-step-control-plane-minor-upgrades-with-rollback-safety/296334). kup offers a
//     rollback window only for hops whose old minor is 1.33 or later, so
//     both the binaries rolled back to and the ones rolled back from carry
//     the machinery.
package rollbacksafe

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"

	"github.com/kup-project/kup/internal/provider"
	"github.com/kup-project/kup/internal/version"
)

// Component names, as providers report them.
const (
	APIServer         = "kube-apiserver"
	ControllerManager = "kube-controller-manager"
	Scheduler         = "kube-scheduler"
)

// Feature minimums (see the package comment for the sources).
const (
	// EmulationFlagMinor is the first minor whose control-plane binaries
	// accept --emulated-version at all (KEP-4330 alpha, v1.31).
	EmulationFlagMinor = 31
	// EmulationN3Minor is the first minor whose binaries emulate up to
	// three minors back (KEP-4330 beta, v1.32); before, one.
	EmulationN3Minor = 32
	// RollbackMinor is the oldest minor kup rolls back to: minor-version
	// rollback arrived with Kubernetes 1.33.
	RollbackMinor = 33
)

// EmulationRange is the range of minors a binary of version v accepts in
// --emulated-version: [v-3, v] from v1.32 (KEP-4330 beta), [v-1, v] in
// v1.31 (alpha), nothing before. ok is false when v has no such flag.
func EmulationRange(v version.Version) (oldest, newest version.Version, ok bool) {
	if v.Major() != 1 || v.Minor() < EmulationFlagMinor {
		return version.Version{}, version.Version{}, false
	}
	back := 3
	if v.Minor() < EmulationN3Minor {
		back = 1
	}
	return version.MinorVersion(1, v.Minor()-back), version.MinorVersion(1, v.Minor()), true
}

var emulationRE = regexp.MustCompile(`^([1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,3})$`)

// ParseEmulation reads an emulated version as the flag and /version speak
// it ("1.36"; "kube=1.36" as the flag's value is accepted too).
func ParseEmulation(s string) (version.Version, error) {
	v := s
	if len(v) > 5 && v[:5] == "kube=" {
		v = v[5:]
	}
	m := emulationRE.FindStringSubmatch(v)
	if m == nil {
		return version.Version{}, fmt.Errorf("emulated version %q: want MAJOR.MINOR, such as 1.36", s)
	}
	major, _ := strconv.Atoi(m[1])
	minor, _ := strconv.Atoi(m[2])
	return version.MinorVersion(major, minor), nil
}

// CheckEmulation says why a binary of version bin cannot emulate the
// minor emulate ("1.36"), or returns nil when it can.
func CheckEmulation(bin version.Version, emulate string) error {
	e, err := ParseEmulation(emulate)
	if err != nil {
		return err
	}
	oldest, newest, ok := EmulationRange(bin)
	if !ok {
		return fmt.Errorf("%s binaries have no --emulated-version: it arrived in v1.%d (KEP-4330)", bin, EmulationFlagMinor)
	}
	if e.Compare(oldest) < 0 || e.Compare(newest) > 0 {
		return fmt.Errorf("%s binaries emulate %s to %s (KEP-4330: the emulated version is at most the binary's and at most %d minors older), not %s",
			bin, oldest.MinorString(), newest.MinorString(), newest.Minor()-oldest.Minor(), e.MinorString())
	}
	return nil
}

// Step is one move of a rollback window.
type Step string

const (
	// StepOne moves every component to the new binaries, each emulating
	// the old minor: nothing the old binaries cannot read is written.
	StepOne Step = "step one"
	// StepTwo raises every component's emulated version to the new minor:
	// the window closes; new APIs and storage versions come into use.
	StepTwo Step = "step two"
	// StepRollback returns every component to the old binaries.
	StepRollback Step = "rollback"
)

// Order is the order in which step moves the components, and why.
func Order(s Step) (components []string, why string) {
	switch s {
	case StepOne:
		return []string{APIServer, ControllerManager, Scheduler},
			"the version-skew policy: no kube-controller-manager or kube-scheduler newer than the kube-apiserver"
	case StepTwo:
		return []string{APIServer, ControllerManager, Scheduler},
			"KEP-4330 skew: kube-controller-manager and kube-scheduler may emulate at most the kube-apiserver's emulated version, so the apiserver is raised first"
	case StepRollback:
		return []string{Scheduler, ControllerManager, APIServer},
			"step one reversed: the controllers go back before the kube-apiserver, so none is ever newer than it"
	}
	return nil, ""
}

// Want is what a component must run and report after a move: its binary
// version and the minor it emulates.
type Want struct {
	Version  version.Version
	Emulated version.Version // a minor-only version
}

func (w Want) String() string {
	return fmt.Sprintf("%s emulating %s", w.Version, w.Emulated.MinorString())
}

// Target is what component must run after step in a window from → to.
func Target(s Step, from, to version.Version) Want {
	switch s {
	case StepOne:
		return Want{Version: to, Emulated: from.AsMinor()}
	case StepTwo:
		return Want{Version: to, Emulated: to.AsMinor()}
	}
	return Want{Version: from, Emulated: from.AsMinor()}
}

// Mismatch says how a component instance differs from want, or "" when it
// runs and reports exactly that. A component that reports no emulated
// version is a mismatch, never a pass.
func Mismatch(c provider.EmulatedComponent, want Want) string {
	v, err := version.Parse(c.Version)
	if err != nil {
		return fmt.Sprintf("%s at %s reports version %q: %v", c.Name, c.Instance, c.Version, err)
	}
	if v.Compare(want.Version) != 0 {
		return fmt.Sprintf("%s at %s runs %s, want %s", c.Name, c.Instance, c.Version, want)
	}
	if c.Emulated == "" {
		return fmt.Sprintf("%s at %s reports no emulated version, want %s", c.Name, c.Instance, want.Emulated.MinorString())
	}
	e, err := ParseEmulation(c.Emulated)
	if err != nil {
		return fmt.Sprintf("%s at %s: %v", c.Name, c.Instance, err)
	}
	if e.Compare(want.Emulated) != 0 {
		return fmt.Sprintf("%s at %s emulates %s, want %s", c.Name, c.Instance, c.Emulated, want.Emulated.MinorString())
	}
	return ""
}

// Mismatches checks every instance of the given components against want;
// a component of the list with no instance at all is a mismatch too.
func Mismatches(cs []provider.EmulatedComponent, components []string, want Want) []string {
	var out []string
	for _, name := range components {
		seen := false
		for _, c := range cs {
			if c.Name != name {
				continue
			}
			seen = true
			if m := Mismatch(c, want); m != "" {
				out = append(out, m)
			}
		}
		if !seen {
			out = append(out, fmt.Sprintf("no %s reported", name))
		}
	}
	return out
}

// Raised reports the instances that emulate a minor newer than from: once
// any component has served the new minor's APIs, objects only the new
// binaries can read may be in etcd.
func Raised(cs []provider.EmulatedComponent, from version.Version) []string {
	var out []string
	for _, c := range cs {
		e, err := ParseEmulation(c.Emulated)
		if err != nil {
			continue
		}
		if e.Compare(from.AsMinor()) > 0 {
			out = append(out, fmt.Sprintf("%s at %s emulates %s", c.Name, c.Instance, c.Emulated))
		}
	}
	return out
}

// HopInput is what HopSafety decides from.
type HopInput struct {
	Index    int
	From, To version.Version
	// Finish marks a hop an earlier run left half done.
	Finish bool
	// Provider names the control-plane provider; Capabilities are its
	// capabilities, nil when kup does not know how the control plane runs.
	Provider     string
	Capabilities *provider.Capabilities
}

// HopVerdict says whether a hop can be taken rollback-safe, and why.
type HopVerdict struct {
	Hop    int    `json:"hop"`
	From   string `json:"from"`
	To     string `json:"to"`
	Safe   bool   `json:"safe"`
	Reason string `json:"reason"`
}

// HopSafety decides whether `kup controlplane upgrade --rollback-safe`
// can take the hop: one minor, from a minor that supports rollback, with
// binaries that can emulate the old minor, through a provider that can
// set the flag.
func HopSafety(in HopInput) HopVerdict {
	v := HopVerdict{Hop: in.Index, From: in.From.String(), To: in.To.String()}
	no := func(format string, args ...any) HopVerdict {
		v.Reason = fmt.Sprintf(format, args...)
		return v
	}
	switch {
	case in.Finish:
		return no("this hop finishes one an earlier run left half done without an emulated version; only a hop started with --rollback-safe has a window")
	case in.To.Compare(in.From) <= 0:
		return no("not an upgrade")
	case in.To.Major() != in.From.Major():
		return no("a major-version change")
	case in.To.Minor() == in.From.Minor():
		return no("a patch hop: emulated versions are per minor, so there is no window to keep (and none is needed to change the patch)")
	case in.To.MinorsAfter(in.From) > 1:
		return no("it moves %d minors; a rollback window covers one", in.To.MinorsAfter(in.From))
	case in.From.Minor() < RollbackMinor:
		return no("minor-version rollback arrived in Kubernetes 1.%d (KEP-4330 emulated versions); kup opens a window only from v1.%d on", RollbackMinor, RollbackMinor)
	}
	if err := CheckEmulation(in.To, in.From.MinorString()); err != nil {
		return no("%v", err)
	}
	switch {
	case in.Capabilities == nil:
		return no("kup does not know how this control plane is run (pass --provider), so it cannot tell whether it can set --emulated-version")
	case !in.Capabilities.Emulation:
		return no("the %s provider cannot start the control plane with --emulated-version", in.Provider)
	}
	v.Safe = true
	v.Reason = fmt.Sprintf("the %s binaries start emulating %s (--emulated-version on kube-apiserver, kube-controller-manager and kube-scheduler); until the emulated version is raised, `kup rollback` returns to %s",
		in.To.MinorString(), in.From.MinorString(), in.From)
	return v
}

// KubeletsBlockingRollback lists kubelets newer than the old minor: rolled
// back to it, the apiserver would be older than they are, which the
// version-skew policy never allows (KEP-4330: a kubelet must be ≤ the
// apiserver's emulated version, so none should have moved in the window).
func KubeletsBlockingRollback(kubelets map[string]version.Version, from version.Version) []string {
	var out []string
	for node, v := range kubelets {
		if v.AsMinor().Compare(from.AsMinor()) > 0 {
			out = append(out, fmt.Sprintf("%s (kubelet %s)", node, v))
		}
	}
	slices.Sort(out)
	return out
}
