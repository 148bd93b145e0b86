package kubeadm

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kup-project/kup/internal/sshexec"
	"github.com/kup-project/kup/internal/version"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestRunbookGolden renders every runbook the providers run, for apt and
// dnf, as a non-root user would send them (through sudo -n).
func TestRunbookGolden(t *testing.T) {
	v := version.MustParse("v1.37.2")
	var b strings.Builder
	render := func(title string, cmds ...sshexec.Command) {
		fmt.Fprintf(&b, "## %s\n", title)
		for _, c := range cmds {
			fmt.Fprintf(&b, "%-40s $ %s\n", "["+c.Step+"]", c.Line(false))
		}
		b.WriteString("\n")
	}
	for _, pm := range []PackageManager{Apt, Dnf} {
		kubeadm := append(RepoSteps(pm, v), append(InstallKubeadmSteps(pm, v), KubeadmVersionStep())...)
		kubelet := append(InstallKubeletSteps(pm, v), RestartKubeletSteps()...)
		render(fmt.Sprintf("%s: first control-plane node, kubeadm", pm), append(kubeadm, ApplySteps(v)...)...)
		render(fmt.Sprintf("%s: other control-plane nodes, kubeadm", pm), append(kubeadm, UpgradeNodeStep())...)
		render(fmt.Sprintf("%s: each control-plane node in turn, after drain", pm), kubelet...)
		render(fmt.Sprintf("%s: worker, after drain", pm), append(append(kubeadm, UpgradeNodeStep()), kubelet...)...)
		if c, ok := RestoreHoldsStep(pm); ok {
			render(fmt.Sprintf("%s: after a failed step that lifted holds", pm), c)
		}
	}
	path := filepath.Join("testdata", "runbook.golden")
	if *updateGolden {
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if string(want) != b.String() {
		t.Errorf("runbook differs from %s (run with -update to accept):\n%s", path, b.String())
	}
}

func TestParseDetect(t *testing.T) {
	for _, tc := range []struct {
		out  string
		want PackageManager
	}{
		{"/usr/bin/apt-get\n", Apt},
		{"/usr/bin/dnf\n/usr/bin/yum\n", Dnf},
		{"/usr/bin/yum\n", Yum},
		{"/usr/bin/apt-get\n/usr/bin/dnf\n", Apt},
		{"", ""},
	} {
		got, err := parseDetect(tc.out)
		if got != tc.want || (tc.want == "") != (err != nil) {
			t.Errorf("parseDetect(%q) = %q, %v; want %q", tc.out, got, err, tc.want)
		}
	}
}

func TestParseTarget(t *testing.T) {
	if v, err := parseTarget("v1.37.2"); err != nil || v.String() != "v1.37.2" {
		t.Errorf("v1.37.2: %v %v", v, err)
	}
	if _, err := parseTarget("v1.37"); err == nil {
		t.Error("a minor-only target was accepted")
	}
}

// checkExpiration is `kubeadm certs check-expiration` of kubeadm v1.31.
const checkExpiration = `[check-expiration] Reading configuration from the cluster...
[check-expiration] FYI: You can look at this config file with 'kubectl -n kube-system get cm kubeadm-config -o yaml'

CERTIFICATE                EXPIRES                  RESIDUAL TIME   CERTIFICATE AUTHORITY   EXTERNALLY MANAGED
admin.conf                 Dec 30, 2025 23:36 UTC   364d            ca                      no
apiserver                  Dec 30, 2025 23:36 UTC   364d            ca                      no
apiserver-etcd-client      Jan 01, 2025 10:00 UTC   <invalid>       etcd-ca                 no
front-proxy-client         Dec 30, 2025 23:36 UTC   364d            front-proxy-ca          yes
!MISSING! super-admin.conf

CERTIFICATE AUTHORITY   EXPIRES                  RESIDUAL TIME   EXTERNALLY MANAGED
ca                      Dec 28, 2034 23:36 UTC   9y              no
etcd-ca                 Jun 01, 2025 23:36 UTC   150d            no
`

func TestParseCertExpiration(t *testing.T) {
	certs, err := ParseCertExpiration(checkExpiration)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range certs {
		got = append(got, fmt.Sprintf("%s ca=%v ext=%v %s", c.Name, c.Authority, c.External, c.Expires.Format("2006-01-02")))
	}
	want := []string{
		"admin.conf ca=false ext=false 2025-12-30",
		"apiserver ca=false ext=false 2025-12-30",
		"apiserver-etcd-client ca=false ext=false 2025-01-01",
		"front-proxy-client ca=false ext=true 2025-12-30",
		"ca ca=true ext=false 2034-12-28",
		"etcd-ca ca=true ext=false 2025-06-01",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("parsed:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Judged on 2025-01-05: one leaf expired, one CA within the year.
	now := time.Date(2025, 1, 5, 0, 0, 0, 0, time.UTC)
	fs := certFindings(func(sshexec.Command) (*sshexec.Result, error) { return &sshexec.Result{Stdout: checkExpiration}, nil }, "cp-1", now)
	if len(fs) != 2 || fs[0].ID != CertExpired || !strings.Contains(fs[0].Message, "apiserver-etcd-client") || fs[1].ID != CAExpiresSoon || !strings.Contains(fs[1].Message, "etcd-ca") {
		t.Errorf("findings %+v", fs)
	}
	if _, err := ParseCertExpiration("error: unknown flag"); err == nil {
		t.Error("output without a table parsed")
	}
}

func TestParseDF(t *testing.T) {
	out := `Filesystem     1024-blocks      Used Available Capacity Mounted on
/dev/mapper/vg-var 10255636 9702212    29140      98% /var/lib/etcd data
`
	disks, err := ParseDF(out)
	if err != nil || len(disks) != 1 {
		t.Fatalf("%v %+v", err, disks)
	}
	d := disks[0]
	if d.Filesystem != "/dev/mapper/vg-var" || d.Size != 10255636*1024 || d.Available != 29140*1024 || d.MountedOn != "/var/lib/etcd data" {
		t.Errorf("%+v", d)
	}
	for _, bad := range []string{"", "df: /x: No such file or directory", "Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/x a b c 5% /"} {
		if _, err := ParseDF(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestParseHoldsAndExcludes(t *testing.T) {
	if h := ParseHolds("kubeadm\nkubelet:amd64\n\n"); !h["kubeadm"] || !h["kubelet"] || h["kubectl"] {
		t.Errorf("holds %v", h)
	}
	for _, tc := range []struct {
		line string
		want string
	}{
		{"exclude=kubelet kubeadm kubectl cri-tools kubernetes-cni", "kubeadm kubelet kubectl"},
		{"exclude = kube*", "kubeadm kubelet kubectl"},
		{"exclude=kubelet,kubeadm", "kubeadm kubelet"},
		{"exclude=cri-tools", ""},
	} {
		h := ParseExcludes(tc.line)
		var got []string
		for _, p := range kubernetesPackages {
			if h[p] {
				got = append(got, p)
			}
		}
		if g := strings.Join(got, " "); g != tc.want {
			t.Errorf("%q: %q, want %q", tc.line, g, tc.want)
		}
	}
}

// FuzzParseCertExpiration: any output either fails to parse or yields
// certificates with names and real dates; never a panic.
func FuzzParseCertExpiration(f *testing.F) {
	f.Add(checkExpiration)
	f.Add("CERTIFICATE  EXPIRES\nx  y  z\n")
	f.Add("CERTIFICATE AUTHORITY\n")
	f.Fuzz(func(t *testing.T, out string) {
		certs, err := ParseCertExpiration(out)
		if err != nil {
			return
		}
		for _, c := range certs {
			if c.Name == "" || c.Expires.IsZero() {
				t.Fatalf("parsed %+v from %q", c, out)
			}
		}
	})
}

// FuzzParseDF: sizes are never negative and never more than is free.
func FuzzParseDF(f *testing.F) {
	f.Add("Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/vda1 100 50 50 50% /\n")
	f.Add("Filesystem\n% % % % %\n")
	f.Fuzz(func(t *testing.T, out string) {
		disks, err := ParseDF(out)
		if err != nil {
			return
		}
		for _, d := range disks {
			if d.Size < 0 || d.Available < 0 {
				t.Fatalf("parsed %+v from %q", d, out)
			}
		}
	})
}
