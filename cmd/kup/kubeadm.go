package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kup-project/kup/internal/apply"
	"github.com/kup-project/kup/internal/checks"
	"github.com/kup-project/kup/internal/drain"
	"github.com/kup-project/kup/internal/journal"
	"github.com/kup-project/kup/internal/provider/kubeadm"
	"github.com/kup-project/kup/internal/provider/kubeadm/standin"
	"github.com/kup-project/kup/internal/report"
	"github.com/kup-project/kup/internal/sandbox"
	"github.com/kup-project/kup/internal/sshexec"
)

// sshFlags configure how kup reaches kubeadm hosts over SSH.
type sshFlags struct {
	inventory      string
	user           string
	port           int
	bastion        string
	key            string
	passphraseEnv  string
	knownHosts     string
	acceptNew      bool
	connectTimeout time.Duration
	commandTimeout time.Duration
	showOutput     bool
	log            string
	firstNode      string

	cmd      *cobra.Command
	once     sync.Once
	hosts    *kubeadm.Hosts
	exec     *sshexec.Executor
	redactor *sshexec.Redactor
	err      error

	mu       sync.Mutex
	logFile  *os.File
	onRecord func(sshexec.Record)
}

func (f *sshFlags) add(cmd *cobra.Command) {
	f.cmd = cmd
	fl := cmd.Flags()
	fl.StringVar(&f.inventory, "ssh-inventory", "", "with kubeadm: YAML file mapping node names to SSH address, port, user and bastion (else the kup.dev/ssh-* node annotations, else the node's InternalIP)")
	fl.StringVar(&f.user, "ssh-user", "", "with kubeadm: SSH user when neither the inventory nor the node says (default: your user name); root commands go through sudo -n")
	fl.IntVar(&f.port, "ssh-port", 0, "with kubeadm: SSH port when neither the inventory nor the node says (default 22)")
	fl.StringVar(&f.bastion, "ssh-bastion", "", "with kubeadm: jump host, [user@]host[:port], as ssh -J")
	fl.StringVar(&f.key, "ssh-key", "", "with kubeadm: private key file (default: ssh-agent via SSH_AUTH_SOCK, else ~/.ssh/id_*)")
	fl.StringVar(&f.passphraseEnv, "ssh-key-passphrase-env", "KUP_SSH_KEY_PASSPHRASE", "with kubeadm: environment variable holding the --ssh-key passphrase (never a flag: flags show in ps)")
	fl.StringVar(&f.knownHosts, "ssh-known-hosts", "", "with kubeadm: known_hosts file every host key is checked against (default ~/.ssh/known_hosts); unknown and changed keys are refused")
	fl.BoolVar(&f.acceptNew, "ssh-accept-new", false, "with kubeadm: trust hosts not yet in --ssh-known-hosts and record their keys (a changed key is still refused)")
	fl.DurationVar(&f.connectTimeout, "ssh-connect-timeout", sshexec.DefaultConnectTimeout, "with kubeadm: deadline for connecting to a host")
	fl.DurationVar(&f.commandTimeout, "ssh-command-timeout", sshexec.DefaultCommandTimeout, "with kubeadm: deadline for one command on a host")
	fl.BoolVar(&f.showOutput, "ssh-show-output", false, "with kubeadm: print each command's output too (secrets are redacted)")
	fl.StringVar(&f.log, "ssh-log", "", "with kubeadm: append every SSH command and its exit status as JSON lines here (default: the state dir's ssh/commands.jsonl)")
	fl.StringVar(&f.firstNode, "kubeadm-first-node", "", "with kubeadm: control-plane node to run kubeadm upgrade apply on (default: the first by name)")
}

// build makes the executor and host resolver once. secrets are values
// the command knows (the kubeconfig's token) that must never be logged.
func (f *sshFlags) build(secrets ...string) (*kubeadm.Hosts, error) {
	f.once.Do(func() {
		f.redactor = sshexec.NewRedactor(secrets...)
		r := &sshexec.Resolver{Defaults: sshexec.Endpoint{User: f.user, Port: f.port, Bastion: f.bastion}}
		if f.inventory != "" {
			inv, err := sshexec.LoadInventory(f.inventory)
			if err != nil {
				f.err = usageError("--ssh-inventory: %v", err)
				return
			}
			r.Inventory = inv
		}
		var pass []byte
		if f.passphraseEnv != "" {
			pass = []byte(os.Getenv(f.passphraseEnv))
		}
		e, err := sshexec.New(sshexec.Options{
			KnownHostsFile: f.knownHosts, AcceptNew: f.acceptNew,
			KeyFile: f.key, KeyPassphrase: pass,
			ConnectTimeout: f.connectTimeout, CommandTimeout: f.commandTimeout,
			Redactor: f.redactor, Recorder: f.record,
		})
		if err != nil {
			f.err = usageError("SSH: %v", err)
			return
		}
		f.exec = e
		f.hosts = &kubeadm.Hosts{Runner: e, Resolver: r}
	})
	return f.hosts, f.err
}

// configSecrets are the credentials in a client configuration.
func configSecrets(cfg *rest.Config) []string {
	if cfg == nil {
		return nil
	}
	out := []string{cfg.BearerToken, cfg.Password}
	if cfg.BearerTokenFile != "" {
		if data, err := os.ReadFile(cfg.BearerTokenFile); err == nil {
			out = append(out, strings.TrimSpace(string(data)))
		}
	}
	return out
}

// record appends a command to the SSH log and passes it on.
func (f *sshFlags) record(rec sshexec.Record) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.logFile == nil {
		path := f.log
		if path == "" {
			if dir, err := journal.StateDir(); err == nil {
				path = filepath.Join(dir, "ssh", "commands.jsonl")
			}
		}
		if path != "" {
			_ = os.MkdirAll(filepath.Dir(path), 0o700)
			if lf, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err == nil {
				f.logFile = lf
			}
		}
	}
	if f.logFile != nil {
		line, _ := json.Marshal(rec)
		_, _ = f.logFile.Write(append(line, '\n'))
	}
	if f.onRecord != nil {
		f.onRecord(rec)
	} else if f.cmd != nil {
		fmt.Fprintf(f.cmd.ErrOrStderr(), "%s ssh %s: %s\n", rec.Time.Format("15:04:05"), rec.Node, f.describe(rec))
	}
}

// describe is one record as a progress line (the node is said by the
// caller).
func (f *sshFlags) describe(rec sshexec.Record) string {
	s := "$ " + rec.Command
	if rec.ExitStatus >= 0 {
		s += fmt.Sprintf(" → exit %d (%s)", rec.ExitStatus, rec.Duration.Round(10*time.Millisecond))
	}
	if rec.Error != "" {
		s += " → " + rec.Error
	}
	if f.showOutput {
		for _, out := range []string{rec.Stdout, rec.Stderr} {
			if out = strings.TrimSpace(out); out != "" {
				s += "\n    " + strings.ReplaceAll(out, "\n", "\n    ")
			}
		}
	}
	return s
}

func (f *sshFlags) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.exec != nil {
		_ = f.exec.Close()
	}
	if f.logFile != nil {
		_ = f.logFile.Close()
	}
}

// kubeadmControlPlane builds the kubeadm control-plane provider, sending
// its progress and its SSH records to progress.
func (f *sshFlags) kubeadmControlPlane(cfg *rest.Config, d drain.Options, progress func(apply.Event)) (*kubeadm.ControlPlane, error) {
	hosts, err := f.build(configSecrets(cfg)...)
	if err != nil {
		return nil, err
	}
	cp := &kubeadm.ControlPlane{Config: cfg, Hosts: hosts, Drain: d, FirstNode: f.firstNode}
	if progress != nil {
		cp.Progress = func(node, step, msg string) {
			progress(apply.Event{Time: time.Now(), Phase: "controlplane", Node: node, Step: step, Message: msg})
		}
		f.onRecord = func(rec sshexec.Record) {
			progress(apply.Event{Time: rec.Time, Phase: "ssh", Node: rec.Node, Step: "ssh", Message: f.describe(rec)})
		}
	}
	return cp, nil
}

// buildKubeadmApplier makes apply drive a kubeadm cluster over SSH.
func buildKubeadmApplier(cmd *cobra.Command, a *apply.Applier, f *applyFlags) (*apply.Applier, error) {
	cp, err := f.rf.ssh.kubeadmControlPlane(f.cfg, a.Options.Rollout.Drain, func(e apply.Event) {
		if a.Options.Progress != nil {
			a.Options.Progress(e)
		}
	})
	if err != nil {
		return nil, err
	}
	a.ControlPlane = cp
	if f.skipBackup {
		a.Options.SkipBackupReason = "--skip-backup"
	} else {
		dir := f.backupDir
		name := clusterDirName(f.cfg.Host)
		if dir == "" {
			state, err := journal.StateDir()
			if err != nil {
				return nil, err
			}
			dir = filepath.Join(state, "backups", name)
		}
		a.Options.Backup = kubeadmBackup(cp, dir, name, f.target)
	}
	if _, err := finishApplier(cmd, a, f, f.cfg.Host); err != nil {
		return nil, err
	}
	a.Options.Preflight = withKubeadmPreflight(a.Options.Preflight, f.cfg, cp.Hosts, f.waive)
	return a, nil
}

// kubeadmBackup snapshots the etcd member behind the first control-plane
// node's apiserver through that node's SSH connection, with the
// apiserver's own etcd client certificate held in memory.
func kubeadmBackup(cp *kubeadm.ControlPlane, dir, cluster, target string) apply.Backup {
	return func(ctx context.Context) (*report.BackupRecord, error) {
		ep, err := cp.EtcdEndpoint(ctx)
		if err != nil {
			return nil, fmt.Errorf("finding etcd for the backup (or pass --skip-backup after taking one yourself): %w", err)
		}
		var versions []string
		if comps, err := cp.Components(ctx); err == nil {
			seen := map[string]bool{}
			for _, c := range comps {
				if c.Name == "kube-apiserver" && !seen[c.Version] {
					seen[c.Version] = true
					versions = append(versions, c.Version)
				}
			}
		}
		return apply.EtcdBackup(ep, dir, cluster, target, versions)(ctx)
	}
}

// clusterDirName makes a directory name of the API server's address.
func clusterDirName(host string) string {
	host = strings.TrimPrefix(strings.TrimPrefix(host, "https://"), "http://")
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' {
			return r
		}
		return '-'
	}, host)
}

// withKubeadmPreflight adds the kubeadm host checks (certificates, disk,
// holds, repository) to the cluster preflight.
func withKubeadmPreflight(inner apply.Preflight, cfg *rest.Config, hosts *kubeadm.Hosts, waive []string) apply.Preflight {
	waived := map[string]bool{}
	for _, w := range waive {
		waived[w] = true
	}
	return func(ctx context.Context, target string) ([]report.FindingSummary, []report.FindingSummary, error) {
		var blockers, all []report.FindingSummary
		if inner != nil {
			b, a, err := inner(ctx, target)
			if err != nil {
				return nil, nil, err
			}
			blockers, all = b, a
		}
		cs, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			return nil, nil, err
		}
		nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, nil, fmt.Errorf("kubeadm preflight: listing nodes: %w", err)
		}
		for _, fd := range kubeadm.Preflight(ctx, hosts, nodes.Items, time.Now()) {
			s := report.FindingSummary{ID: fd.ID, Severity: string(fd.Severity), Title: fd.Title, Waived: waived[fd.ID]}
			for _, o := range fd.Objects {
				s.Objects = append(s.Objects, o.String())
			}
			all = append(all, s)
			if fd.Severity == checks.Blocker && !s.Waived {
				blockers = append(blockers, s)
			}
		}
		return blockers, all, nil
	}
}

// newSandboxHookCommand is the hidden command the kubeadm tests'
// stand-in host tools call to change a kup sandbox as the real tools
// change a real cluster (see internal/provider/kubeadm/standin).
func newSandboxHookCommand() *cobra.Command {
	var name, node, version string
	cmd := &cobra.Command{
		Use:    "sandbox-hook control-plane|upgrade-node|kubelet --name SANDBOX --node NODE --version VERSION",
		Short:  "For test stand-ins: apply what a kubeadm host step does to a kup sandbox",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := sandbox.Load("", name)
			if err != nil {
				return err
			}
			switch args[0] {
			case "control-plane":
				return standin.UpgradeControlPlane(cmd.Context(), c, node, version)
			case "upgrade-node":
				return standin.UpgradeNode(cmd.Context(), c, node, version)
			case "kubelet":
				return standin.RestartKubelet(cmd.Context(), c, node, version)
			}
			return usageError("sandbox-hook %q: want control-plane, upgrade-node or kubelet", args[0])
		},
	}
	cmd.Flags().StringVar(&name, "name", "default", "sandbox name")
	cmd.Flags().StringVar(&node, "node", "", "node the host is")
	cmd.Flags().StringVar(&version, "version", "", "version the step installs")
	return cmd
}
