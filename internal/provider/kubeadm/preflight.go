package kubeadm

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/kup-project/kup/internal/checks"
	"github.com/kup-project/kup/internal/sshexec"
)

// IDs of the kubeadm host checks. They follow internal/checks' scheme
// and are meant for its catalogue; until then they live here.
const (
	CertExpired      = "KUP-KUBEADM-001"
	CAExpiresSoon    = "KUP-KUBEADM-002"
	DiskTooLow       = "KUP-KUBEADM-003"
	DiskLow          = "KUP-KUBEADM-004"
	PackagesNotHeld  = "KUP-KUBEADM-005"
	RepoUnreachable  = "KUP-KUBEADM-006"
	diskBlockerBytes = 1 << 30
	diskWarnBytes    = 5 << 30
	diskWarnFraction = 0.10
	// caWarnWithin: kubeadm renews leaf certificates on every upgrade but
	// never a CA, and a CA expiring mid-cycle takes the cluster down.
	caWarnWithin = 365 * 24 * time.Hour
)

// Checks are the catalogue entries of the kubeadm host checks.
var Checks = []checks.Check{
	{ID: CertExpired, Family: checks.FamilyControlPlane, Severity: checks.Blocker, Title: "kubeadm certificate has expired",
		Action: "Renew it before upgrading (kubeadm certs renew all, then restart the control-plane static pods); an expired CA must be replaced by hand (see \"Certificate Management with kubeadm\")."},
	{ID: CAExpiresSoon, Family: checks.FamilyControlPlane, Severity: checks.Warning, Title: "kubeadm CA expires within a year",
		Action: "Plan the CA rotation: kubeadm upgrades renew leaf certificates, never a CA."},
	{ID: DiskTooLow, Family: checks.FamilyControlPlane, Severity: checks.Blocker, Title: "Less than 1 GiB free where the upgrade writes",
		Action: "Free space on the host first: kubeadm upgrade apply copies the etcd data directory as a backup, and the kubelet pulls new images."},
	{ID: DiskLow, Family: checks.FamilyControlPlane, Severity: checks.Warning, Title: "Little disk space where the upgrade writes",
		Action: "Free space on the host: below 5 GiB or 10% an image pull or the etcd backup copy can fill the disk mid-upgrade."},
	{ID: PackagesNotHeld, Family: checks.FamilyControlPlane, Severity: checks.Warning, Title: "Kubernetes packages are not held",
		Action: "Hold them (apt-mark hold kubeadm kubelet kubectl, or exclude= in the dnf repository) so an unattended upgrade cannot move them outside kup."},
	{ID: RepoUnreachable, Family: checks.FamilyControlPlane, Severity: checks.Blocker, Title: "Package repository cannot be refreshed",
		Action: "Make the host reach its package repositories (proxy, DNS, pkgs.k8s.io): kup installs the new packages from them."},
}

// Preflight runs the kubeadm host checks on every node's host, in
// parallel: certificate expiry (control-plane nodes), free disk on
// /var/lib/etcd and /var/lib/kubelet, package holds, and whether the
// package repository can be refreshed. A check that could not run is
// an Unknown finding for that node, never a pass.
func Preflight(ctx context.Context, hosts *Hosts, nodes []corev1.Node, now time.Time) []checks.Finding {
	var mu sync.Mutex
	var out []checks.Finding
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Add(1)
		go func(n *corev1.Node) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			fs := preflightNode(ctx, hosts, n, now)
			mu.Lock()
			out = append(out, fs...)
			mu.Unlock()
		}(&nodes[i])
	}
	wg.Wait()
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].ID != out[j].ID {
			return out[i].ID < out[j].ID
		}
		return out[i].Objects[0].Name < out[j].Objects[0].Name
	})
	return out
}

func finding(id string, node string, format string, args ...any) checks.Finding {
	for _, c := range Checks {
		if c.ID == id {
			return checks.Finding{ID: id, Severity: c.Severity, Title: c.Title, Objects: []checks.Object{{Kind: "Node", Name: node}}, Message: fmt.Sprintf(format, args...), Action: c.Action}
		}
	}
	panic("unknown kubeadm check " + id)
}

func unknown(id, node string, err error) checks.Finding {
	f := finding(id, node, "could not check: %v", err)
	f.Severity = checks.Unknown
	f.Action = "Fix what kept kup from running the check over SSH (reachability, host key, sudo) and plan again, or check this by hand."
	return f
}

func isControlPlane(n *corev1.Node) bool {
	_, cp := n.Labels[ControlPlaneLabel]
	_, master := n.Labels[legacyMasterLabel]
	return cp || master
}

func preflightNode(ctx context.Context, hosts *Hosts, n *corev1.Node, now time.Time) []checks.Finding {
	m, err := hosts.machine(ctx, n)
	if err != nil {
		var out []checks.Finding
		for _, id := range []string{CertExpired, DiskTooLow, PackagesNotHeld, RepoUnreachable} {
			if id == CertExpired && !isControlPlane(n) {
				continue
			}
			out = append(out, unknown(id, n.Name, err))
		}
		return out
	}
	run := func(c sshexec.Command) (*sshexec.Result, error) { return hosts.Runner.Run(ctx, m.host, c) }
	var out []checks.Finding
	if isControlPlane(n) {
		out = append(out, certFindings(run, n.Name, now)...)
	}
	paths := []string{"/var/lib/kubelet"}
	if isControlPlane(n) {
		paths = []string{"/var/lib/etcd", "/var/lib/kubelet"}
	}
	for _, p := range paths {
		out = append(out, diskFindings(run, n.Name, p)...)
	}
	out = append(out, holdFindings(run, m.pm, n.Name)...)
	out = append(out, repoFindings(run, m.pm, n.Name)...)
	return out
}

type runFunc func(sshexec.Command) (*sshexec.Result, error)

func certFindings(run runFunc, node string, now time.Time) []checks.Finding {
	res, err := run(sshexec.Command{Step: "check certificate expiry", Sudo: true, Args: []string{"kubeadm", "certs", "check-expiration"}})
	if err != nil {
		return []checks.Finding{unknown(CertExpired, node, err)}
	}
	certs, err := ParseCertExpiration(res.Stdout)
	if err != nil {
		return []checks.Finding{unknown(CertExpired, node, err)}
	}
	var out []checks.Finding
	for _, c := range certs {
		kind := "certificate"
		if c.Authority {
			kind = "CA"
		}
		switch left := c.Expires.Sub(now); {
		case left <= 0:
			out = append(out, finding(CertExpired, node, "%s %s on node %s expired on %s", kind, c.Name, node, c.Expires.UTC().Format("2006-01-02 15:04 MST")))
		case c.Authority && left < caWarnWithin:
			out = append(out, finding(CAExpiresSoon, node, "CA %s on node %s expires on %s, in %d days", c.Name, node, c.Expires.UTC().Format("2006-01-02"), int(left.Hours()/24)))
		}
	}
	return out
}

func diskFindings(run runFunc, node, path string) []checks.Finding {
	res, err := run(sshexec.Command{Step: "check free disk on " + path, Args: []string{"df", "-P", "-k", path}})
	if err != nil {
		var xe *sshexec.ExitError
		if errors.As(err, &xe) && strings.Contains(xe.Tail, "No such file") {
			return nil // external etcd, or not created yet: nothing to fill
		}
		return []checks.Finding{unknown(DiskTooLow, node, err)}
	}
	disks, err := ParseDF(res.Stdout)
	if err != nil || len(disks) != 1 {
		return []checks.Finding{unknown(DiskTooLow, node, fmt.Errorf("reading df for %s: %v", path, err))}
	}
	d := disks[0]
	free := fmt.Sprintf("%.1f GiB free of %.1f GiB (%s, mounted on %s)", float64(d.Available)/(1<<30), float64(d.Size)/(1<<30), path, d.MountedOn)
	switch {
	case d.Available < diskBlockerBytes:
		return []checks.Finding{finding(DiskTooLow, node, "node %s: %s", node, free)}
	case d.Available < diskWarnBytes || (d.Size > 0 && float64(d.Available)/float64(d.Size) < diskWarnFraction):
		return []checks.Finding{finding(DiskLow, node, "node %s: %s", node, free)}
	}
	return nil
}

var kubernetesPackages = []string{"kubeadm", "kubelet", "kubectl"}

func holdFindings(run runFunc, pm PackageManager, node string) []checks.Finding {
	var held map[string]bool
	if pm == Apt {
		res, err := run(sshexec.Command{Step: "check package holds", Args: []string{"apt-mark", "showhold"}})
		if err != nil {
			return []checks.Finding{unknown(PackagesNotHeld, node, err)}
		}
		held = ParseHolds(res.Stdout)
	} else {
		res, err := run(sshexec.Command{Step: "check package excludes", Args: []string{"grep", "-E", `^[[:space:]]*exclude[[:space:]]*=`, RepoFileDnf}})
		var xe *sshexec.ExitError
		switch {
		case errors.As(err, &xe) && xe.Status == 1: // no exclude line
			held = map[string]bool{}
		case err != nil:
			return []checks.Finding{unknown(PackagesNotHeld, node, err)}
		default:
			held = ParseExcludes(res.Stdout)
		}
	}
	var missing []string
	for _, p := range kubernetesPackages {
		if !held[p] {
			missing = append(missing, p)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	how := "apt-mark showhold"
	if pm != Apt {
		how = "exclude= in " + RepoFileDnf
	}
	return []checks.Finding{finding(PackagesNotHeld, node, "node %s: %s not held (%s)", node, strings.Join(missing, ", "), how)}
}

func repoFindings(run runFunc, pm PackageManager, node string) []checks.Finding {
	c := sshexec.Command{Step: "refresh the package index", Sudo: true, Args: []string{"apt-get", "update"}}
	if pm != Apt {
		c = sshexec.Command{Step: "refresh the package metadata", Sudo: true, Args: []string{string(pm), "makecache"}}
	}
	res, err := run(c)
	var xe *sshexec.ExitError
	switch {
	case errors.As(err, &xe):
		return []checks.Finding{finding(RepoUnreachable, node, "node %s: %s", node, xe.Error())}
	case err != nil:
		return []checks.Finding{unknown(RepoUnreachable, node, err)}
	}
	// Older apt exits 0 when a repository could not be fetched and
	// only warns.
	for _, l := range strings.Split(res.Stdout+"\n"+res.Stderr, "\n") {
		if strings.Contains(l, "Failed to fetch") && strings.Contains(l, "pkgs.k8s.io") {
			return []checks.Finding{finding(RepoUnreachable, node, "node %s: %s", node, strings.TrimSpace(l))}
		}
	}
	return nil
}

// Cert is one row of `kubeadm certs check-expiration`.
type Cert struct {
	Name      string
	Expires   time.Time
	Authority bool
	External  bool
}

var columns = regexp.MustCompile(`\s{2,}`)

// ParseCertExpiration reads the two tables `kubeadm certs
// check-expiration` prints (certificates, then certificate authorities);
// kubeadm's log lines and missing certificates are skipped.
func ParseCertExpiration(out string) ([]Cert, error) {
	var certs []Cert
	section := ""
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "["):
			continue
		case strings.HasPrefix(line, "CERTIFICATE AUTHORITY"):
			section = "ca"
			continue
		case strings.HasPrefix(line, "CERTIFICATE"):
			section = "cert"
			continue
		case section == "" || strings.HasPrefix(line, "!MISSING!"):
			continue
		}
		cols := columns.Split(line, -1)
		if len(cols) < 3 {
			continue
		}
		t, err := time.Parse("Jan 02, 2006 15:04 MST", cols[1])
		if err != nil {
			return nil, fmt.Errorf("kubeadm certs check-expiration: row %q: expiry %q: %w", line, cols[1], err)
		}
		c := Cert{Name: cols[0], Expires: t, Authority: section == "ca"}
		c.External = strings.EqualFold(cols[len(cols)-1], "yes")
		certs = append(certs, c)
	}
	if section == "" {
		return nil, errors.New("kubeadm certs check-expiration printed no certificate table")
	}
	return certs, nil
}

// Disk is one line of `df -P -k`.
type Disk struct {
	Filesystem string
	Size       int64 // bytes
	Available  int64 // bytes
	MountedOn  string
}

// ParseDF reads `df -P -k` (POSIX format, 1024-byte blocks). Fields are
// found from the capacity column ("42%") so a mount point or device name
// with spaces does not shift them.
func ParseDF(out string) ([]Disk, error) {
	var disks []Disk
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 2 || !strings.HasPrefix(lines[0], "Filesystem") {
		return nil, fmt.Errorf("df printed no table: %q", strings.TrimSpace(out))
	}
	for _, line := range lines[1:] {
		f := strings.Fields(line)
		pct := -1
		for i := len(f) - 1; i >= 4; i-- {
			if strings.HasSuffix(f[i], "%") {
				pct = i
				break
			}
		}
		if pct < 0 {
			return nil, fmt.Errorf("df line %q: no capacity column", line)
		}
		size, err1 := strconv.ParseInt(f[pct-3], 10, 64)
		avail, err2 := strconv.ParseInt(f[pct-1], 10, 64)
		if err1 != nil || err2 != nil || size < 0 || avail < 0 || size > 1<<50 || avail > 1<<50 {
			return nil, fmt.Errorf("df line %q: bad sizes", line)
		}
		disks = append(disks, Disk{Filesystem: strings.Join(f[:pct-3], " "), Size: size * 1024, Available: avail * 1024, MountedOn: strings.Join(f[pct+1:], " ")})
	}
	return disks, nil
}

// ParseHolds reads `apt-mark showhold`: one package per line.
func ParseHolds(out string) map[string]bool {
	held := map[string]bool{}
	for _, l := range strings.Split(out, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			held[strings.SplitN(l, ":", 2)[0]] = true // "kubelet:amd64" on multi-arch hosts
		}
	}
	return held
}

// ParseExcludes reads dnf repository exclude= lines (space or comma
// separated, globs allowed: "kube*" holds every kube package).
func ParseExcludes(out string) map[string]bool {
	held := map[string]bool{}
	for _, l := range strings.Split(out, "\n") {
		_, v, ok := strings.Cut(l, "=")
		if !ok {
			continue
		}
		for _, p := range strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' }) {
			for _, k := range kubernetesPackages {
				if p == k || (strings.HasSuffix(p, "*") && strings.HasPrefix(k, strings.TrimSuffix(p, "*"))) {
					held[k] = true
				}
			}
		}
	}
	return held
}
