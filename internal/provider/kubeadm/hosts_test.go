package kubeadm_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"

	"github.com/kup-project/kup/internal/provider/kubeadm"
	"github.com/kup-project/kup/internal/sandbox/sandboxtest"
	"github.com/kup-project/kup/internal/sshexec/sshtest"
)

// updating reports -update, which the package's internal tests define
// (both halves share one test binary and one flag set).
func updating() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// hostSpec is one simulated kubeadm host.
type hostSpec struct {
	node string
	// controlPlane hosts answer kubeadm upgrade plan/apply and have static pods.
	controlPlane bool
	pm           kubeadm.PackageManager
}

// fleet is a lab of kubeadm hosts: real sshd per node, stand-in
// kubeadm/apt-get/apt-mark/dnf/systemctl/df in each host's
// /usr/local/bin, the pkgs.k8s.io repository file in each host's /etc,
// and each host's package state (installed versions, holds, the running
// kubelet) in a directory the test reads.
type fleet struct {
	lab     *sshtest.Lab
	specs   []hostSpec
	host    map[string]*sshtest.Host
	standin map[string]string
}

// sandboxRef is what the stand-ins need to reach a sandbox through
// `kup sandbox-hook`; zero when the test has no sandbox.
type sandboxRef struct {
	kupBin, stateDir, name string
	// etcd is the sandbox etcd's client URL, written into the
	// control-plane host's kube-apiserver manifest as kubeadm would.
	etcd string
}

func testdata(t testing.TB) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "testdata")
}

// startFleet starts one host per spec, every package at from ("1.36.3"),
// held, the repository on from's minor.
func startFleet(t *testing.T, specs []hostSpec, sb sandboxRef, from string) *fleet {
	t.Helper()
	f := &fleet{specs: specs, host: map[string]*sshtest.Host{}, standin: map[string]string{}}
	minor := "v" + from[:strings.LastIndex(from, ".")]
	if sb.kupBin == "" {
		sb = sandboxRef{kupBin: "/bin/false", stateDir: "/nonexistent", name: "none"}
	}
	src := filepath.Join(testdata(t), "standin")
	i := 0
	f.lab = sshtest.Start(t, sshtest.Options{Hosts: len(specs), Prepare: func(h *sshtest.Host) error {
		spec := specs[i]
		i++
		f.host[spec.node] = h
		tools := []string{"kup-standin.sh", "kubeadm", "systemctl", "df"}
		if spec.pm == kubeadm.Apt {
			tools = append(tools, "apt-get", "apt-mark")
		} else {
			tools = append(tools, "dnf")
			// A dnf host has no apt-get (this machine's is covered).
			h.Hide = append(h.Hide, "/usr/bin/apt-get")
		}
		for _, tool := range tools {
			data, err := os.ReadFile(filepath.Join(src, tool))
			if err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(h.Bin, tool), data, 0o755); err != nil {
				return err
			}
		}
		dir := filepath.Join(h.Dir, "standin")
		f.standin[spec.node] = dir
		for _, d := range []string{dir, filepath.Join(dir, "state"), filepath.Join(dir, "knobs")} {
			if err := os.MkdirAll(d, 0o777); err != nil {
				return err
			}
			// Unprivileged calls (kubeadm version, apt-mark showhold)
			// record themselves too.
			if err := os.Chmod(d, 0o777); err != nil {
				return err
			}
		}
		role := "worker"
		if spec.controlPlane {
			role = "control-plane"
		}
		cache := os.Getenv("KUP_CACHE_DIR")
		home, _ := os.UserHomeDir()
		env := fmt.Sprintf("STANDIN_DIR=%s\nSTANDIN_NODE=%s\nSTANDIN_ROLE=%s\nSTANDIN_SANDBOX=%s\nKUP_BIN=%s\nKUP_STATE_DIR=%s\nKUP_CACHE_DIR=%s\nKUP_HOME=%s\n",
			dir, spec.node, role, sb.name, sb.kupBin, sb.stateDir, cache, home)
		if err := os.WriteFile(filepath.Join(h.Etc, "kup-standin.env"), []byte(env), 0o644); err != nil {
			return err
		}
		if spec.controlPlane && sb.etcd != "" {
			manifest := fmt.Sprintf("apiVersion: v1\nkind: Pod\nmetadata:\n  name: kube-apiserver\n  namespace: kube-system\nspec:\n  containers:\n  - name: kube-apiserver\n    image: registry.k8s.io/kube-apiserver:v%s\n    command:\n    - kube-apiserver\n    - --etcd-servers=%s\n", from, sb.etcd)
			if err := writeFile(filepath.Join(h.Etc, "kubernetes", "manifests", "kube-apiserver.yaml"), manifest); err != nil {
				return err
			}
		}
		state := map[string]string{"pkg.kubeadm": from, "pkg.kubelet": from, "pkg.kubectl": from, "kubelet-running": "v" + from, "reloaded": from, "index-minor": minor}
		if spec.pm == kubeadm.Apt {
			for _, p := range []string{"kubeadm", "kubelet", "kubectl"} {
				state["hold."+p] = ""
			}
			if err := writeFile(filepath.Join(h.Etc, "apt", "sources.list.d", "kubernetes.list"),
				fmt.Sprintf("deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] https://pkgs.k8s.io/core:/stable:/%s/deb/ /\n", minor)); err != nil {
				return err
			}
		} else {
			repo := fmt.Sprintf("[kubernetes]\nname=Kubernetes\nbaseurl=https://pkgs.k8s.io/core:/stable:/%s/rpm/\nenabled=1\ngpgcheck=1\ngpgkey=https://pkgs.k8s.io/core:/stable:/%s/rpm/repodata/repomd.xml.key\nexclude=kubelet kubeadm kubectl cri-tools kubernetes-cni\n", minor, minor)
			if err := writeFile(filepath.Join(h.Etc, "yum.repos.d", "kubernetes.repo"), repo); err != nil {
				return err
			}
		}
		// Root (sudo) and the user both append to the call log.
		logPath := filepath.Join(dir, "calls.log")
		if err := os.WriteFile(logPath, nil, 0o666); err != nil {
			return err
		}
		if err := os.Chmod(logPath, 0o666); err != nil {
			return err
		}
		for k, v := range state {
			if err := os.WriteFile(filepath.Join(dir, "state", k), []byte(v+"\n"), 0o666); err != nil {
				return err
			}
		}
		return nil
	}})
	return f
}

func writeFile(path, data string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(data), 0o644)
}

// knob sets one of a host's stand-in knobs (fail-install, fail-update,
// echo-on-update, cert-days, ca-days, df-avail-kb).
func (f *fleet) knob(t *testing.T, node, name, value string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(f.standin[node], "knobs", name), []byte(value+"\n"), 0o666); err != nil {
		t.Fatal(err)
	}
}

// calls are the stand-in tool calls a host recorded, in order.
func (f *fleet) calls(node string) []string {
	data, err := os.ReadFile(filepath.Join(f.standin[node], "calls.log"))
	if err != nil {
		return nil
	}
	return strings.Split(strings.TrimRight(string(data), "\n"), "\n")
}

func (f *fleet) state(node, key string) (string, bool) {
	data, err := os.ReadFile(filepath.Join(f.standin[node], "state", key))
	return strings.TrimSpace(string(data)), err == nil
}

// etcFile reads a file the host changed in its /etc (its overlay layer).
func (f *fleet) etcFile(node, path string) string {
	data, _ := os.ReadFile(filepath.Join(f.host[node].Etc, strings.TrimPrefix(path, "/etc/")))
	return string(data)
}

// hookLog is what `kup sandbox-hook` printed on the host, for failures.
func (f *fleet) hookLog(node string) string {
	data, _ := os.ReadFile(filepath.Join(f.standin[node], "hook.log"))
	return string(data)
}

func (f *fleet) nodes() []string {
	var out []string
	for _, s := range f.specs {
		out = append(out, s.node)
	}
	sort.Strings(out)
	return out
}

func TestMain(m *testing.M) {
	code := m.Run()
	sandboxtest.RemoveKupBinary()
	os.Exit(code)
}

func removeFile(path string) error { return os.Remove(path) }
