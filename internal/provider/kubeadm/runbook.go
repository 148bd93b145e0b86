package kubeadm

import (
	"fmt"
	"strings"

	"github.com/kup-project/kup/internal/sshexec"
	"github.com/kup-project/kup/internal/version"
)

// PackageManager is how a host installs the Kubernetes packages.
type PackageManager string

const (
	// Apt: Debian and Ubuntu, repository in RepoFileApt.
	Apt PackageManager = "apt"
	// Dnf: Fedora, RHEL 8+ and their rebuilds, repository in RepoFileDnf.
	Dnf PackageManager = "dnf"
	// Yum: older RHEL and CentOS; same commands and repository file as Dnf.
	Yum PackageManager = "yum"
)

// The repository files the kubeadm installation guide writes
// (https://kubernetes.io/docs/setup/production-environment/tools/kubeadm/install-kubeadm/).
const (
	RepoFileApt = "/etc/apt/sources.list.d/kubernetes.list"
	RepoFileDnf = "/etc/yum.repos.d/kubernetes.repo"
)

// RepoFile is where pm's Kubernetes repository is defined.
func (pm PackageManager) RepoFile() string {
	if pm == Apt {
		return RepoFileApt
	}
	return RepoFileDnf
}

// detectScript prints the path of each package manager the host has; the
// first of apt-get, dnf, yum wins (a Debian host with dnf installed is
// still a Debian host).
const detectScript = `for c in apt-get dnf yum; do command -v "$c" || true; done`

// parseDetect picks the package manager from detectScript's output.
func parseDetect(out string) (PackageManager, error) {
	found := map[string]bool{}
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		if i := strings.LastIndex(l, "/"); i >= 0 {
			l = l[i+1:]
		}
		found[l] = true
	}
	switch {
	case found["apt-get"]:
		return Apt, nil
	case found["dnf"]:
		return Dnf, nil
	case found["yum"]:
		return Yum, nil
	}
	return "", fmt.Errorf("neither apt-get, dnf nor yum is on the PATH: kup installs the Kubernetes packages with one of them")
}

// The runbook: each function returns the commands of one step of the
// official procedure, "Upgrading kubeadm clusters"
// (https://kubernetes.io/docs/tasks/administer-cluster/kubeadm/kubeadm-upgrade/)
// and "Upgrading Linux nodes"
// (https://kubernetes.io/docs/tasks/administer-cluster/kubeadm/upgrading-linux-nodes/),
// with the package repository moved first as "Changing the Kubernetes
// package repository" says
// (https://kubernetes.io/docs/tasks/administer-cluster/kubeadm/change-package-repository/).

// RepoSteps point the host's pkgs.k8s.io repository at v's minor:
// pkgs.k8s.io has one repository per minor
// (…/core:/stable:/v1.37/deb/), so a host whose file still names v1.36
// cannot see a single 1.37 package. The edit rewrites only a pkgs.k8s.io
// URL; the check after it fails the step, naming the file, when the
// repository is something else (a mirror, the frozen apt.kubernetes.io).
func RepoSteps(pm PackageManager, v version.Version) []sshexec.Command {
	minor := fmt.Sprintf("v%d.%d", v.Major(), v.Minor())
	file := pm.RepoFile()
	return []sshexec.Command{
		{Step: "point the package repository at " + minor, Sudo: true,
			Args: []string{"sed", "-i", "-E", `s#(pkgs\.k8s\.io/core:/stable:/)v[0-9]+\.[0-9]+/#\1` + minor + `/#g`, file}},
		{Step: "check the package repository is " + minor,
			Args: []string{"grep", "-q", "-F", "pkgs.k8s.io/core:/stable:/" + minor + "/", file}},
	}
}

// aptInstall runs apt-get install without questions: debconf has nobody
// to ask over a session without a terminal. sudo resets the
// environment, so the variable goes through env.
func aptInstall(pkgs ...string) []string {
	return append([]string{"env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y"}, pkgs...)
}

// aptVersion and rpmVersion are the package versions of v:
// pkgs.k8s.io's revisions ("1.37.2-1.1") are matched by a wildcard, as
// the guide does ('1.37.2-*').
func aptVersion(pkg string, v version.Version) string {
	return fmt.Sprintf("%s=%d.%d.%d-*", pkg, v.Major(), v.Minor(), v.Patch())
}

func rpmVersion(pkg string, v version.Version) string {
	return fmt.Sprintf("%s-%d.%d.%d-*", pkg, v.Major(), v.Minor(), v.Patch())
}

// InstallKubeadmSteps upgrade the kubeadm package to v, lifting and
// restoring the hold (apt) or the repository's exclude (dnf) that keep
// an unattended upgrade away from it.
func InstallKubeadmSteps(pm PackageManager, v version.Version) []sshexec.Command {
	if pm == Apt {
		return []sshexec.Command{
			{Step: "unhold kubeadm", Sudo: true, Args: []string{"apt-mark", "unhold", "kubeadm"}},
			{Step: "refresh the package index", Sudo: true, Args: []string{"apt-get", "update"}},
			{Step: "install kubeadm " + v.String(), Sudo: true, Args: aptInstall(aptVersion("kubeadm", v))},
			{Step: "hold kubeadm", Sudo: true, Args: []string{"apt-mark", "hold", "kubeadm"}},
		}
	}
	return []sshexec.Command{
		{Step: "install kubeadm " + v.String(), Sudo: true, Args: []string{string(pm), "install", "-y", rpmVersion("kubeadm", v), "--disableexcludes=kubernetes"}},
	}
}

// KubeadmVersionStep asks the installed kubeadm its version ("Verify
// that the download works and has the expected version").
func KubeadmVersionStep() sshexec.Command {
	return sshexec.Command{Step: "check the kubeadm version", Args: []string{"kubeadm", "version", "-o", "short"}}
}

// ApplySteps upgrade the control plane from the first control-plane
// node. plan is given the version so it does not look up the latest
// release on the internet (which fails on hosts without access); --yes
// answers apply's prompt.
func ApplySteps(v version.Version) []sshexec.Command {
	return []sshexec.Command{
		{Step: "kubeadm upgrade plan", Sudo: true, Args: []string{"kubeadm", "upgrade", "plan", v.String()}},
		{Step: "kubeadm upgrade apply " + v.String(), Sudo: true, Args: []string{"kubeadm", "upgrade", "apply", v.String(), "--yes"}},
	}
}

// UpgradeNodeStep upgrades the static pods of another control-plane node,
// or the kubelet configuration of a worker.
func UpgradeNodeStep() sshexec.Command {
	return sshexec.Command{Step: "kubeadm upgrade node", Sudo: true, Args: []string{"kubeadm", "upgrade", "node"}}
}

// InstallKubeletSteps upgrade kubelet and kubectl to v, with their holds.
func InstallKubeletSteps(pm PackageManager, v version.Version) []sshexec.Command {
	if pm == Apt {
		return []sshexec.Command{
			{Step: "unhold kubelet and kubectl", Sudo: true, Args: []string{"apt-mark", "unhold", "kubelet", "kubectl"}},
			{Step: "refresh the package index", Sudo: true, Args: []string{"apt-get", "update"}},
			{Step: "install kubelet and kubectl " + v.String(), Sudo: true, Args: aptInstall(aptVersion("kubelet", v), aptVersion("kubectl", v))},
			{Step: "hold kubelet and kubectl", Sudo: true, Args: []string{"apt-mark", "hold", "kubelet", "kubectl"}},
		}
	}
	return []sshexec.Command{
		{Step: "install kubelet and kubectl " + v.String(), Sudo: true, Args: []string{string(pm), "install", "-y", rpmVersion("kubelet", v), rpmVersion("kubectl", v), "--disableexcludes=kubernetes"}},
	}
}

// RestartKubeletSteps make systemd read the (possibly new) kubelet unit
// and drop-in, then restart the kubelet on the new binary.
func RestartKubeletSteps() []sshexec.Command {
	return []sshexec.Command{
		{Step: "reload systemd units", Sudo: true, Args: []string{"systemctl", "daemon-reload"}},
		{Step: "restart the kubelet", Sudo: true, Args: []string{"systemctl", "restart", "kubelet"}},
	}
}

// RestoreHoldsStep puts the holds back after a failure part-way through
// an install left them lifted (apt only: dnf's exclude never moved).
func RestoreHoldsStep(pm PackageManager) (sshexec.Command, bool) {
	if pm != Apt {
		return sshexec.Command{}, false
	}
	return sshexec.Command{Step: "restore package holds after a failure", Sudo: true, Args: []string{"apt-mark", "hold", "kubeadm", "kubelet", "kubectl"}}, true
}
