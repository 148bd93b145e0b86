// Package sandbox runs a real Kubernetes control plane on this machine —
// etcd, kube-apiserver, kube-controller-manager and kube-scheduler built from
// the Go module proxy — with nodes simulated by kwok. It is kup's demo, the
// cluster every end-to-end test runs against, and later the twin a
// rehearsal upgrades first.
//
// It never touches a cluster it did not start: every process it signals is
// checked to be the binary it launched, and all state lives in one
// directory per sandbox.
package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/kup-project/kup/internal/kube"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Options describe a sandbox to start. Zero values take the defaults noted.
type Options struct {
	// Name distinguishes sandboxes running side by side. Default "default".
	Name string
	// Version of the control plane, an exact release such as "v1.36.3".
	Version string
	// NodeVersion is the kubelet and kube-proxy version the simulated nodes
	// report. Default: Version. A comma-separated list is assigned
	// round-robin (node i gets entry i mod len), for mixed-version clusters.
	NodeVersion string
	// Nodes is how many kwok nodes to create.
	Nodes int
	// Workloads is "default" (a realistic mix with PodDisruptionBudgets) or
	// "none". Default "none".
	Workloads string
	// WithProblems seeds what a preflight must catch (see problems.go).
	WithProblems bool
	// Deployments and Replicas add that many extra Deployments of Replicas
	// pods each, with 10% maxUnavailable PDBs, for benchmarks at scale.
	Deployments, Replicas int
	// PodReadyDelay is how long a scheduled pod takes to become Ready.
	PodReadyDelay time.Duration
	// KubeletRestart is how long SetNodeVersion keeps a node NotReady.
	// Default 1s.
	KubeletRestart time.Duration
	// KwokPodWorkers is how many pod transitions (Ready, deleted) kwok
	// makes at once, for every node together (its podPlayStageParallelism).
	// Default: kwok's, 4.
	KwokPodWorkers int
	// GOGC is the Go garbage collector's target (the GOGC environment
	// variable) for the sandbox's processes, all Go programs. Default:
	// kup's environment's (Go's 100 if unset). The rollout benchmark
	// measured 400 against 100 on 200 nodes: 9% less CPU and a 6% shorter
	// rollout for twice the memory (kube-apiserver's peak 3.7 GiB against
	// 1.75 GiB), so the default is left alone.
	GOGC int
	// StateDir is the root under which the sandbox's directory is made.
	// Default StateDir().
	StateDir string
	// BinDir uses existing binaries instead of building (see Binaries).
	BinDir string
	// EtcdVersion and KwokVersion default to DefaultEtcdVersion/DefaultKwokVersion.
	EtcdVersion, KwokVersion string
	// Progress receives human-readable progress lines. Nil discards.
	Progress io.Writer
	// APIServerArgs are extra kube-apiserver flags, kept across control-plane
	// swaps (e.g. "--runtime-config=networking.k8s.io/v1beta1=true" to serve
	// a deprecated API for tests of the deprecated-API checks).
	APIServerArgs []string
	// DieWithParent makes the sandbox's processes die with the process
	// that started them (tests). `kup sandbox up` leaves it false so the
	// sandbox outlives the command.
	DieWithParent bool
}

// State is what a running sandbox records in its directory, so that
// another kup process can find, inspect, upgrade and stop it.
type State struct {
	Name          string              `json:"name"`
	Dir           string              `json:"dir"`
	Kubeconfig    string              `json:"kubeconfig"`
	Version       string              `json:"version"`
	EtcdVersion   string              `json:"etcdVersion"`
	KwokVersion   string              `json:"kwokVersion"`
	Created       time.Time           `json:"created"`
	Ports         Ports               `json:"ports"`
	Processes     map[string]*Process `json:"processes"`
	NodeCount     int                 `json:"nodes"`
	PodReadyMS    int64               `json:"podReadyDelayMs"`
	RestartMS     int64               `json:"kubeletRestartMs"`
	BinDir        string              `json:"binDir,omitempty"`
	EmulatedFrom  string              `json:"emulatedVersion,omitempty"`
	APIServerArgs []string            `json:"apiserverArgs,omitempty"`
	// GOGC is what the processes are started with (Options.GOGC); 0
	// leaves them kup's environment's.
	GOGC int `json:"gogc,omitempty"`
	// Emulated is the --emulated-version each control-plane component is
	// (to be) started with, by component; a present empty value means
	// none (the binary's own minor). A component without an entry
	// emulates EmulatedFrom. See emulation.go.
	Emulated map[string]string `json:"emulated,omitempty"`
}

// Ports are the loopback ports the sandbox's processes listen on.
type Ports struct {
	APIServer         int `json:"apiserver"`
	EtcdClient        int `json:"etcdClient"`
	EtcdPeer          int `json:"etcdPeer"`
	ControllerManager int `json:"controllerManager"`
	Scheduler         int `json:"scheduler"`
}

// Cluster is a running sandbox.
type Cluster struct {
	State
	bins          *Binaries
	pki           *pki
	progress      io.Writer
	dieWithParent bool
	client        *kubernetes.Clientset
	config        *rest.Config
}

var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$`)

// StateDir is where sandboxes keep their state: $KUP_STATE_DIR, else
// $XDG_STATE_HOME/kup, else ~/.local/state/kup.
func StateDir() (string, error) {
	if d := os.Getenv("KUP_STATE_DIR"); d != "" {
		return filepath.Abs(d)
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "kup"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("finding the home directory (set KUP_STATE_DIR): %w", err)
	}
	return filepath.Join(home, ".local", "state", "kup"), nil
}

func (o *Options) defaults() error {
	if o.Name == "" {
		o.Name = "default"
	}
	if !nameRE.MatchString(o.Name) {
		return fmt.Errorf("sandbox name %q: use 1–32 lowercase letters, digits and dashes", o.Name)
	}
	if !kubeVersionRE.MatchString(o.Version) {
		return fmt.Errorf("sandbox version %q: want an exact Kubernetes release such as v1.36.3", o.Version)
	}
	if o.NodeVersion == "" {
		o.NodeVersion = o.Version
	}
	for _, v := range o.nodeVersions() {
		if !kubeVersionRE.MatchString(v) {
			return fmt.Errorf("node version %q: want an exact Kubernetes release such as v1.36.3 (or a comma-separated list of them)", v)
		}
	}
	if o.Nodes < 0 || o.Nodes > 5000 {
		return fmt.Errorf("node count %d: want 0–5000", o.Nodes)
	}
	switch o.Workloads {
	case "":
		o.Workloads = "none"
	case "none", "default":
	default:
		return fmt.Errorf("workloads %q: want default or none", o.Workloads)
	}
	if o.Deployments < 0 || o.Replicas < 0 {
		return errors.New("deployments and replicas must not be negative")
	}
	if o.KubeletRestart == 0 {
		o.KubeletRestart = time.Second
	}
	if o.EtcdVersion == "" {
		o.EtcdVersion = DefaultEtcdVersion
	}
	if o.KwokVersion == "" {
		o.KwokVersion = DefaultKwokVersion
	}
	if o.StateDir == "" {
		d, err := StateDir()
		if err != nil {
			return err
		}
		o.StateDir = d
	}
	return nil
}

func (o *Options) nodeVersions() []string {
	var out []string
	for _, v := range strings.Split(o.NodeVersion, ",") {
		out = append(out, strings.TrimSpace(v))
	}
	return out
}

func (c *Cluster) progressf(format string, args ...any) {
	if c.progress != nil {
		fmt.Fprintf(c.progress, format+"\n", args...)
	}
}

// Start builds (first time) and starts a sandbox, creates its nodes and
// workloads, and returns once the API is ready, every node is Ready and
// the seeded workloads are available. On any failure everything it started
// is stopped again and the error names the step and the log to read.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	dir := filepath.Join(opts.StateDir, "sandboxes", opts.Name)
	if old, err := Load(opts.StateDir, opts.Name); err == nil {
		if old.Running() {
			return nil, fmt.Errorf("sandbox %q is already running (API at https://127.0.0.1:%d); stop it with `kup sandbox down --name %s` or pick another --name", opts.Name, old.Ports.APIServer, opts.Name)
		}
		// A leftover of a sandbox that died: clear it out.
		_ = old.StopContext(ctx)
	}
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("clearing old sandbox directory %s: %w", dir, err)
	}
	for _, d := range []string{dir, filepath.Join(dir, "logs"), filepath.Join(dir, "etcd")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("creating sandbox directory %s: %w", d, err)
		}
	}
	bins, err := NewBinaries(opts.Progress)
	if err != nil {
		return nil, err
	}
	bins.BinDir = opts.BinDir
	c := &Cluster{
		State: State{
			Name: opts.Name, Dir: dir, Kubeconfig: filepath.Join(dir, "kubeconfig"),
			Version: opts.Version, EtcdVersion: opts.EtcdVersion, KwokVersion: opts.KwokVersion,
			Created: time.Now().UTC(), Processes: map[string]*Process{}, NodeCount: opts.Nodes,
			PodReadyMS: opts.PodReadyDelay.Milliseconds(), RestartMS: opts.KubeletRestart.Milliseconds(),
			BinDir: opts.BinDir, APIServerArgs: opts.APIServerArgs,
			GOGC: opts.GOGC,
		},
		bins: bins, progress: opts.Progress, dieWithParent: opts.DieWithParent,
	}
	if err := c.start(ctx, opts); err != nil {
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		_ = c.stopProcesses(stopCtx)
		_ = c.save()
		return nil, fmt.Errorf("starting sandbox %q: %w", opts.Name, err)
	}
	return c, nil
}

func (c *Cluster) start(ctx context.Context, opts Options) error {
	started := time.Now()
	etcdBin, err := c.bins.Etcd(ctx, opts.EtcdVersion)
	if err != nil {
		return err
	}
	kwokBin, err := c.bins.Kwok(ctx, opts.KwokVersion)
	if err != nil {
		return err
	}
	kubeDir, err := c.bins.Kubernetes(ctx, opts.Version)
	if err != nil {
		return err
	}
	c.pki, err = newPKI(filepath.Join(c.Dir, "pki"))
	if err != nil {
		return err
	}
	ports, err := freePorts(5)
	if err != nil {
		return err
	}
	c.Ports = Ports{APIServer: ports[0], EtcdClient: ports[1], EtcdPeer: ports[2], ControllerManager: ports[3], Scheduler: ports[4]}
	if err := c.writeKubeconfig(); err != nil {
		return err
	}
	if err := c.save(); err != nil {
		return err
	}

	c.progressf("starting etcd %s", opts.EtcdVersion)
	if err := c.startEtcd(ctx, etcdBin); err != nil {
		return err
	}
	c.progressf("starting kube-apiserver %s", opts.Version)
	if err := c.startComponent(ctx, APIServer, filepath.Join(kubeDir, APIServer), opts.Version); err != nil {
		return err
	}
	for _, comp := range []string{ControllerManager, Scheduler} {
		c.progressf("starting %s %s", comp, opts.Version)
		if err := c.startComponent(ctx, comp, filepath.Join(kubeDir, comp), opts.Version); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(c.Dir, "kwok-stages.yaml"), []byte(kwokStages(opts.PodReadyDelay, opts.KwokPodWorkers)), 0o644); err != nil {
		return err
	}
	c.progressf("starting kwok %s (simulated kubelets)", opts.KwokVersion)
	if err := c.startKwok(ctx, kwokBin); err != nil {
		return err
	}
	if err := c.save(); err != nil {
		return err
	}
	c.progressf("creating %d nodes (kubelet %s)", opts.Nodes, opts.NodeVersion)
	if err := c.createNodes(ctx, opts.Nodes, opts.nodeVersions()); err != nil {
		return err
	}
	if opts.WithProblems && opts.Nodes > 0 {
		// The last node's kubelet is down from the start: a NotReady node
		// that no seeded pod lands on.
		if err := c.StopKubelet(ctx, NodeName(opts.Nodes-1)); err != nil {
			return err
		}
	}
	c.progressf("waiting for %d nodes to be Ready", opts.Nodes)
	if err := c.waitNodesReady(ctx, opts); err != nil {
		return err
	}
	// Seeded only once the nodes can take pods: a pod created while a node
	// still carries its not-ready taint gets a real FailedScheduling
	// Warning, which kup plan then reports on a cluster that is healthy.
	if err := c.seed(ctx, opts); err != nil {
		return err
	}
	if opts.Workloads != "none" || opts.WithProblems || opts.Deployments > 0 {
		c.progressf("waiting for workloads to be available")
		if err := c.waitWorkloadsSettled(ctx, 5*time.Minute+time.Duration(opts.Nodes)*200*time.Millisecond); err != nil {
			return err
		}
	}
	c.progressf("sandbox %q ready in %s: Kubernetes %s, %d nodes, API https://127.0.0.1:%d",
		c.Name, time.Since(started).Round(100*time.Millisecond), c.Version, opts.Nodes, c.Ports.APIServer)
	return c.save()
}

func (c *Cluster) startEtcd(ctx context.Context, bin string) error {
	client := fmt.Sprintf("http://127.0.0.1:%d", c.Ports.EtcdClient)
	peer := fmt.Sprintf("http://127.0.0.1:%d", c.Ports.EtcdPeer)
	args := []string{
		"--name", "sandbox",
		"--data-dir", filepath.Join(c.Dir, "etcd"),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "sandbox=" + peer,
		"--quota-backend-bytes", strconv.Itoa(8 << 30),
		"--unsafe-no-fsync", // a sandbox trades durability for speed
		"--log-level", "warn",
	}
	p, err := startProcess(Etcd, bin, args, c.processEnv(), filepath.Join(c.Dir, "logs", "etcd.log"), c.dieWithParent)
	if err != nil {
		return err
	}
	p.Version = c.EtcdVersion
	c.Processes[Etcd] = p
	// Record it before waiting on it: a kup killed from here on must
	// leave a record of every process it started, never an orphan.
	_ = c.save()
	return waitFor(ctx, 30*time.Second, "etcd /health", p, func(ctx context.Context) error {
		return httpOK(ctx, http.DefaultClient, client+"/health")
	})
}

// componentArgs are the flags of each control-plane component, per
// docs/testbed.md. They are recomputed on every (re)start so a version
// swap keeps the cluster's identity: same etcd, same keys, same ports.
func (c *Cluster) componentArgs(component string) []string {
	p := c.pki
	switch component {
	case APIServer:
		args := []string{
			"--etcd-servers", fmt.Sprintf("http://127.0.0.1:%d", c.Ports.EtcdClient),
			"--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
			"--secure-port", strconv.Itoa(c.Ports.APIServer),
			// The apiserver refuses to register a loopback address in the
			// kubernetes Endpoints ("may not be in the loopback range").
			"--endpoint-reconciler-type", "none",
			"--service-cluster-ip-range", "10.96.0.0/16",
			"--tls-cert-file", p.ServingCert, "--tls-private-key-file", p.ServingKey,
			"--client-ca-file", p.CACert,
			"--service-account-key-file", p.ServiceAcctPub,
			"--service-account-signing-key-file", p.ServiceAcctKey,
			"--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
			"--authorization-mode", "Node,RBAC",
			"--allow-privileged=true",
			"--profiling=false",
			"--cert-dir", filepath.Join(c.Dir, "pki", "apiserver"),
		}
		args = append(args, c.APIServerArgs...)
		return append(args, c.emulationArgs(component)...)
	case ControllerManager:
		return append([]string{
			"--kubeconfig", c.Kubeconfig,
			"--authentication-kubeconfig", c.Kubeconfig,
			"--authorization-kubeconfig", c.Kubeconfig,
			// Without the controller manager PDBs never get
			// status.disruptionsAllowed and evictions are refused forever.
			// nodeipam needs a cluster CIDR the sandbox does not have.
			"--controllers", "*,-nodeipam",
			"--root-ca-file", p.CACert,
			"--service-account-private-key-file", p.ServiceAcctKey,
			"--use-service-account-credentials=false",
			// The default 20 QPS makes a 10,000-pod sandbox take many minutes
			// to create its pods; real control planes are tuned up the same way.
			"--kube-api-qps", "300", "--kube-api-burst", "600",
			"--leader-elect=false",
			"--bind-address", "127.0.0.1",
			"--secure-port", strconv.Itoa(c.Ports.ControllerManager),
			"--tls-cert-file", p.ServingCert, "--tls-private-key-file", p.ServingKey,
			"--authorization-always-allow-paths", "/healthz,/readyz,/livez,/metrics",
			"--profiling=false",
		}, c.emulationArgs(component)...)
	case Scheduler:
		return append([]string{
			"--kubeconfig", c.Kubeconfig,
			"--authentication-kubeconfig", c.Kubeconfig,
			"--authorization-kubeconfig", c.Kubeconfig,
			"--leader-elect=false",
			"--kube-api-qps", "300", "--kube-api-burst", "600",
			"--bind-address", "127.0.0.1",
			"--secure-port", strconv.Itoa(c.Ports.Scheduler),
			"--tls-cert-file", p.ServingCert, "--tls-private-key-file", p.ServingKey,
			"--authorization-always-allow-paths", "/healthz,/readyz,/livez,/metrics",
			"--profiling=false",
		}, c.emulationArgs(component)...)
	}
	panic("unknown component " + component)
}

func (c *Cluster) componentPort(component string) int {
	switch component {
	case APIServer:
		return c.Ports.APIServer
	case ControllerManager:
		return c.Ports.ControllerManager
	case Scheduler:
		return c.Ports.Scheduler
	}
	return 0
}

// startComponent starts one control-plane component and waits for
// positive evidence that it serves at version: /readyz (apiserver) or
// /healthz (the others), and the version the component reports about itself.
func (c *Cluster) startComponent(ctx context.Context, component, bin, version string) error {
	if err := waitPortFree(ctx, c.componentPort(component), 10*time.Second); err != nil {
		return fmt.Errorf("%s: %w", component, err)
	}
	p, err := startProcess(component, bin, c.componentArgs(component), c.processEnv(), filepath.Join(c.Dir, "logs", component+".log"), c.dieWithParent)
	if err != nil {
		return err
	}
	p.Version = version
	c.Processes[component] = p
	// Record it before waiting on it: a kup killed from here on must
	// leave a record of every process it started, never an orphan.
	_ = c.save()
	hc := c.httpClient()
	base := fmt.Sprintf("https://127.0.0.1:%d", c.componentPort(component))
	if component == APIServer {
		c.client = nil // the next Client() call reconnects
		return waitFor(ctx, 90*time.Second, "kube-apiserver /readyz at "+version, p, func(ctx context.Context) error {
			if err := httpOK(ctx, hc, base+"/readyz"); err != nil {
				return err
			}
			got, err := c.ServerVersion(ctx)
			if err != nil {
				return err
			}
			if got != version {
				return fmt.Errorf("apiserver reports %s, want %s", got, version)
			}
			return nil
		})
	}
	return waitFor(ctx, 60*time.Second, component+" /healthz at "+version, p, func(ctx context.Context) error {
		if err := httpOK(ctx, hc, base+"/healthz"); err != nil {
			return err
		}
		got, err := c.ComponentVersion(ctx, component)
		if err != nil {
			return err
		}
		if got != version {
			return fmt.Errorf("%s reports %s, want %s", component, got, version)
		}
		if component == ControllerManager {
			return controllersBuilt(ctx, hc, base)
		}
		return nil
	})
}

// controllersBuilt is positive evidence that kube-controller-manager has
// built its controllers: it adds a health check per controller to
// /healthz once it has (BuildControllers). Before that it serves /healthz
// and its metrics, yet still needs the apiserver: one that goes away then
// makes it exit ("Error building controllers": the resourcequota
// controller's discovery was refused). A rollback swaps it right before
// the apiserver, so kup rollback lost its controller-manager this way
// (TestRollbackSafeSurvivesKills, in CI and under load here).
func controllersBuilt(ctx context.Context, hc *http.Client, base string) error {
	body, err := httpGet(ctx, hc, base+"/healthz?verbose", 64<<10)
	if err != nil {
		return err
	}
	if !controllerChecks(body) {
		return fmt.Errorf("%s/healthz?verbose lists no controller yet: it has not built its controllers", base)
	}
	return nil
}

// controllerChecks reports whether a verbose /healthz lists a
// controller's check ("[+]serviceaccount-token-controller ok").
func controllerChecks(verbose string) bool {
	for _, l := range strings.Split(verbose, "\n") {
		if strings.HasPrefix(l, "[+]") && strings.HasSuffix(strings.TrimSpace(l), "-controller ok") {
			return true
		}
	}
	return false
}

func (c *Cluster) startKwok(ctx context.Context, bin string) error {
	args := []string{
		"--kubeconfig", c.Kubeconfig,
		"--config", filepath.Join(c.Dir, "kwok-stages.yaml"),
		"--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector", KwokNodeAnnotation + "=fake",
		"--node-lease-duration-seconds", "40",
		"--cidr", "10.244.0.0/16",
	}
	p, err := startProcess(Kwok, bin, args, c.processEnv(), filepath.Join(c.Dir, "logs", "kwok.log"), c.dieWithParent)
	if err != nil {
		return err
	}
	p.Version = c.KwokVersion
	c.Processes[Kwok] = p
	// Record it before waiting on it: a kup killed from here on must
	// leave a record of every process it started, never an orphan.
	_ = c.save()
	// kwok has no readiness endpoint without a server port; give it a
	// moment to fail on bad configuration, then rely on nodes going Ready.
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(500 * time.Millisecond):
	}
	return p.exitedEarly()
}

// waitFor polls check until it succeeds, the deadline passes, or the
// process dies; the error says what was awaited and the last reason.
func waitFor(ctx context.Context, timeout time.Duration, what string, p *Process, check func(context.Context) error) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		if p != nil {
			if err := p.exitedEarly(); err != nil {
				return err
			}
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		last = check(cctx)
		cancel()
		if last == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		}
		if time.Now().After(deadline) {
			log := ""
			if p != nil {
				log = " (log: " + p.Log + ")"
			}
			return fmt.Errorf("%s not reached after %s: %v%s", what, timeout, last, log)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func httpOK(ctx context.Context, hc *http.Client, url string) error {
	_, err := httpGet(ctx, hc, url, 4096)
	return err
}

// httpGet returns up to limit bytes of what url answers; anything but 200
// is an error naming the body's last line.
func httpGet(ctx context.Context, hc *http.Client, url string, limit int64) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: HTTP %d: %s", url, resp.StatusCode, lastLine(string(body)))
	}
	return string(body), err
}

// httpClient talks to the sandbox's components with the admin
// certificate, trusting the sandbox CA.
func (c *Cluster) httpClient() *http.Client {
	cfg := c.restConfig()
	tr, err := rest.TransportFor(cfg)
	if err != nil {
		return http.DefaultClient
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func (c *Cluster) restConfig() *rest.Config {
	if c.config == nil {
		c.config = &rest.Config{
			Host: fmt.Sprintf("https://127.0.0.1:%d", c.Ports.APIServer),
			TLSClientConfig: rest.TLSClientConfig{
				CAFile: filepath.Join(c.Dir, "pki", "ca.crt"), CertFile: filepath.Join(c.Dir, "pki", "admin.crt"), KeyFile: filepath.Join(c.Dir, "pki", "admin.key"),
			},
			QPS: 500, Burst: 1000,
			UserAgent: "kup-sandbox",
		}
	}
	return rest.CopyConfig(c.config)
}

// RESTConfig returns a client configuration with the admin identity.
func (c *Cluster) RESTConfig() *rest.Config { return c.restConfig() }

// Client returns a clientset with the admin identity. Its requests ride
// out an apiserver restart (kube.Resilient): the sandbox's node upgrader
// runs while kup's control-plane hops restart the apiserver.
func (c *Cluster) Client() *kubernetes.Clientset {
	if c.client == nil {
		c.client = kubernetes.NewForConfigOrDie(kube.Resilient(c.restConfig(), 2*time.Minute))
	}
	return c.client
}

// ServerVersion is the gitVersion /version reports.
func (c *Cluster) ServerVersion(ctx context.Context) (string, error) {
	body, err := c.Client().Discovery().RESTClient().Get().AbsPath("/version").Do(ctx).Raw()
	if err != nil {
		return "", err
	}
	var v struct {
		GitVersion string `json:"gitVersion"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return "", fmt.Errorf("decoding /version: %w", err)
	}
	return v.GitVersion, nil
}

var buildInfoRE = regexp.MustCompile(`kubernetes_build_info\{[^}]*git_version="([^"]+)"`)

// ComponentVersion asks a controller-manager or scheduler for its version
// through the kubernetes_build_info metric it serves.
func (c *Cluster) ComponentVersion(ctx context.Context, component string) (string, error) {
	if component == APIServer {
		return c.ServerVersion(ctx)
	}
	url := fmt.Sprintf("https://127.0.0.1:%d/metrics", c.componentPort(component))
	body, err := httpGet(ctx, c.httpClient(), url, metricsLimit)
	if err != nil {
		return "", err
	}
	m := buildInfoRE.FindStringSubmatch(body)
	if m == nil {
		return "", fmt.Errorf("%s: no kubernetes_build_info metric", url)
	}
	return m[1], nil
}

// metricsLimit bounds what is read of a component's /metrics (a
// controller-manager's is a few hundred KiB).
const metricsLimit = 16 << 20

func (c *Cluster) writeKubeconfig() error {
	ctxName := "kup-sandbox-" + c.Name
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[ctxName] = &clientcmdapi.Cluster{
		Server:               fmt.Sprintf("https://127.0.0.1:%d", c.Ports.APIServer),
		CertificateAuthority: c.pki.CACert,
	}
	cfg.AuthInfos[ctxName] = &clientcmdapi.AuthInfo{ClientCertificate: c.pki.AdminCert, ClientKey: c.pki.AdminKey}
	cfg.Contexts[ctxName] = &clientcmdapi.Context{Cluster: ctxName, AuthInfo: ctxName}
	cfg.CurrentContext = ctxName
	if err := clientcmd.WriteToFile(*cfg, c.Kubeconfig); err != nil {
		return fmt.Errorf("writing kubeconfig %s: %w", c.Kubeconfig, err)
	}
	return os.Chmod(c.Kubeconfig, 0o600)
}

func (c *Cluster) save() error {
	data, err := json.MarshalIndent(c.State, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(c.Dir, "sandbox.json")
	tmp := path + ".part"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("saving sandbox state: %w", err)
	}
	return os.Rename(tmp, path)
}

// Load finds a sandbox by name under stateDir (StateDir() when empty).
func Load(stateDir, name string) (*Cluster, error) {
	if stateDir == "" {
		d, err := StateDir()
		if err != nil {
			return nil, err
		}
		stateDir = d
	}
	dir := filepath.Join(stateDir, "sandboxes", name)
	data, err := os.ReadFile(filepath.Join(dir, "sandbox.json"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("no sandbox named %q under %s (start one with `kup sandbox up --name %s`)", name, stateDir, name)
		}
		return nil, fmt.Errorf("reading sandbox %q: %w", name, err)
	}
	c := &Cluster{}
	if err := json.Unmarshal(data, &c.State); err != nil {
		return nil, fmt.Errorf("sandbox %q state %s is corrupt: %w", name, filepath.Join(dir, "sandbox.json"), err)
	}
	if c.Processes == nil {
		c.Processes = map[string]*Process{}
	}
	c.pki, _ = newPKI(filepath.Join(dir, "pki"))
	bins, err := NewBinaries(nil)
	if err != nil {
		return nil, err
	}
	bins.BinDir = c.BinDir
	c.bins = bins
	return c, nil
}

// List returns the sandboxes recorded under stateDir.
func List(stateDir string) ([]*Cluster, error) {
	if stateDir == "" {
		d, err := StateDir()
		if err != nil {
			return nil, err
		}
		stateDir = d
	}
	entries, err := os.ReadDir(filepath.Join(stateDir, "sandboxes"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*Cluster
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if c, err := Load(stateDir, e.Name()); err == nil {
			out = append(out, c)
		}
	}
	return out, nil
}

// SetProgress directs progress lines of later operations to w.
func (c *Cluster) SetProgress(w io.Writer) { c.progress = w; c.bins.Progress = w }

// Running reports whether every process of the sandbox is alive.
func (c *Cluster) Running() bool {
	if len(c.Processes) == 0 {
		return false
	}
	for _, p := range c.Processes {
		if !p.Alive() {
			return false
		}
	}
	return true
}

// stopOrder stops the clients of the apiserver before it, and etcd last.
var stopOrder = []string{Kwok, Scheduler, ControllerManager, APIServer, Etcd}

func (c *Cluster) stopProcesses(ctx context.Context) error {
	var errs []error
	for _, name := range stopOrder {
		if p := c.Processes[name]; p != nil {
			if err := p.Stop(ctx, 5*time.Second); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// Stop stops every process of the sandbox (SIGTERM to each process group,
// SIGKILL after a grace period) and removes its directory.
func (c *Cluster) Stop() error { return c.StopContext(context.Background()) }

// StopContext is Stop with a context bounding the wait.
func (c *Cluster) StopContext(ctx context.Context) error {
	if err := c.stopProcesses(ctx); err != nil {
		return fmt.Errorf("stopping sandbox %q: %w (state kept in %s)", c.Name, err, c.Dir)
	}
	if err := os.RemoveAll(c.Dir); err != nil {
		return fmt.Errorf("removing sandbox directory %s: %w", c.Dir, err)
	}
	return nil
}

// Describe is a one-screen summary of the sandbox for `kup sandbox status`.
func (c *Cluster) Describe() string {
	var b strings.Builder
	state := "running"
	if !c.Running() {
		state = "not running"
	}
	fmt.Fprintf(&b, "sandbox %s: %s, Kubernetes %s, %d nodes, created %s\n", c.Name, state, c.Version, c.NodeCount, c.Created.Local().Format(time.RFC3339))
	fmt.Fprintf(&b, "  kubeconfig  %s\n", c.Kubeconfig)
	for _, name := range []string{Etcd, APIServer, ControllerManager, Scheduler, Kwok} {
		p := c.Processes[name]
		if p == nil {
			continue
		}
		alive := "up"
		if !p.Alive() {
			alive = "DOWN"
		}
		port := ""
		switch name {
		case Etcd:
			port = fmt.Sprintf("127.0.0.1:%d", c.Ports.EtcdClient)
		case APIServer, ControllerManager, Scheduler:
			port = fmt.Sprintf("127.0.0.1:%d", c.componentPort(name))
		}
		rss, peak := p.Memory()
		fmt.Fprintf(&b, "  %-24s %-8s pid %-8d %-4s %-16s rss %5d MiB (peak %5d MiB)  log %s\n", name, p.Version, p.PID, alive, port, rss>>20, peak>>20, p.Log)
	}
	return b.String()
}

// processEnv is the environment of the sandbox's processes: kup's, with
// the sandbox's GOGC appended, which os/exec keeps over kup's own.
func (c *Cluster) processEnv() []string {
	env := os.Environ()
	if c.GOGC != 0 {
		env = append(env, "GOGC="+strconv.Itoa(c.GOGC))
	}
	return env
}
