package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// Component names, as they appear in the binary cache and in messages.
const (
	APIServer         = "kube-apiserver"
	ControllerManager = "kube-controller-manager"
	Scheduler         = "kube-scheduler"
	Etcd              = "etcd"
	Kwok              = "kwok"
)

// Versions of the helpers the sandbox runs next to Kubernetes. etcd 3.6 is
// what Kubernetes 1.34–1.37 ship with (kubeadm's constants.SupportedEtcdVersion).
const (
	DefaultEtcdVersion = "v3.6.16"
	DefaultKwokVersion = "v0.8.0"
)

// ControlPlaneComponents are built together from k8s.io/kubernetes, in the
// order a control-plane upgrade moves them (apiserver first, per the
// version-skew policy: no component may be newer than the apiserver).
var ControlPlaneComponents = []string{APIServer, ControllerManager, Scheduler}

// CacheDir is where built binaries live: $KUP_CACHE_DIR, else the user's
// cache directory + "/kup". Never inside the repository.
func CacheDir() (string, error) {
	if d := os.Getenv("KUP_CACHE_DIR"); d != "" {
		return filepath.Abs(d)
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("finding the user cache directory (set KUP_CACHE_DIR): %w", err)
	}
	return filepath.Join(d, "kup"), nil
}

// Binaries finds or builds the programs a sandbox runs. A binary directory
// in the cache is complete or absent: builds happen in a temporary
// directory renamed into place at the end, so an interrupted build never
// leaves something that looks usable. A file lock per component and version
// makes concurrent callers (parallel test packages, two terminals) build
// each version once.
type Binaries struct {
	// CacheDir holds built binaries, keyed by component and version.
	CacheDir string
	// BinDir, when set, holds binaries the user already has (release
	// binaries, an envtest cache). They are used after checking that each
	// reports the requested version; nothing is built.
	BinDir string
	// Progress receives one line per build step and a heartbeat while a
	// long build runs. Nil discards.
	Progress io.Writer
}

// NewBinaries returns a Binaries on the default cache directory.
func NewBinaries(progress io.Writer) (*Binaries, error) {
	d, err := CacheDir()
	if err != nil {
		return nil, err
	}
	return &Binaries{CacheDir: d, Progress: progress}, nil
}

func (b *Binaries) progressf(format string, args ...any) {
	if b.Progress != nil {
		fmt.Fprintf(b.Progress, format+"\n", args...)
	}
}

// kubeVersionRE is what we accept as a Kubernetes version to build: exact
// releases only, because the cache is keyed by them and the module proxy
// serves tags, not ranges.
var kubeVersionRE = regexp.MustCompile(`^v1\.(\d+)\.(\d+)$`)

// Kubernetes returns the directory holding kube-apiserver,
// kube-controller-manager and kube-scheduler at version (e.g. "v1.37.2"),
// building them on first use.
func (b *Binaries) Kubernetes(ctx context.Context, version string) (string, error) {
	m := kubeVersionRE.FindStringSubmatch(version)
	if m == nil {
		return "", fmt.Errorf("control-plane version %q: want an exact release such as v1.37.2", version)
	}
	if b.BinDir != "" {
		for _, c := range ControlPlaneComponents {
			if err := checkReportedVersion(ctx, filepath.Join(b.BinDir, c), version); err != nil {
				return "", err
			}
		}
		return b.BinDir, nil
	}
	dir := filepath.Join(b.CacheDir, "bin", "kubernetes", version)
	return dir, b.ensure(ctx, "kubernetes "+version, dir, func(ctx context.Context, out string) error {
		return b.buildKubernetes(ctx, version, m[1], out)
	})
}

// Etcd returns the path of an etcd binary at version.
func (b *Binaries) Etcd(ctx context.Context, version string) (string, error) {
	if b.BinDir != "" {
		p := filepath.Join(b.BinDir, Etcd)
		return p, checkReportedVersion(ctx, p, version)
	}
	dir := filepath.Join(b.CacheDir, "bin", "etcd", version)
	err := b.ensure(ctx, "etcd "+version, dir, func(ctx context.Context, out string) error {
		return b.buildWrapped(ctx, "go.etcd.io/etcd/server/v3", version, []string{"go.etcd.io/etcd/server/v3"}, []string{Etcd}, nil, out)
	})
	return filepath.Join(dir, Etcd), err
}

// Kwok returns the path of a kwok binary at version.
func (b *Binaries) Kwok(ctx context.Context, version string) (string, error) {
	if b.BinDir != "" {
		if p := filepath.Join(b.BinDir, Kwok); fileExists(p) {
			return p, checkReportedVersion(ctx, p, version)
		}
		// Users with release binaries of Kubernetes rarely have kwok; fall
		// through to the cache.
	}
	dir := filepath.Join(b.CacheDir, "bin", "kwok", version)
	err := b.ensure(ctx, "kwok "+version, dir, func(ctx context.Context, out string) error {
		return b.buildWrapped(ctx, "sigs.k8s.io/kwok", version, []string{"sigs.k8s.io/kwok/cmd/kwok"}, []string{Kwok}, nil, out)
	})
	return filepath.Join(dir, Kwok), err
}

// ensure makes dir exist and hold a complete build, building with build
// into a temporary sibling directory under an exclusive lock.
func (b *Binaries) ensure(ctx context.Context, what, dir string, build func(ctx context.Context, out string) error) error {
	if dirExists(dir) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fmt.Errorf("creating binary cache %s: %w", filepath.Dir(dir), err)
	}
	unlock, err := lockFile(ctx, dir+".lock", func() { b.progressf("waiting for another kup to finish building %s", what) })
	if err != nil {
		return err
	}
	defer unlock()
	if dirExists(dir) { // built by whoever held the lock before us
		return nil
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), filepath.Base(dir)+".partial-")
	if err != nil {
		return fmt.Errorf("creating build directory for %s: %w", what, err)
	}
	defer os.RemoveAll(tmp)
	start := time.Now()
	b.progressf("building %s into %s (first use; later runs reuse it)", what, dir)
	stop := b.heartbeat(what, start)
	err = build(ctx, tmp)
	stop()
	if err != nil {
		return fmt.Errorf("building %s: %w", what, err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("installing %s into the cache: %w", what, err)
	}
	syncDir(filepath.Dir(dir))
	b.progressf("built %s in %s", what, time.Since(start).Round(time.Second))
	return nil
}

// heartbeat prints the elapsed time every 20 s so a four-minute build does
// not look hung.
func (b *Binaries) heartbeat(what string, start time.Time) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(20 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				b.progressf("  still building %s… %s elapsed", what, time.Since(start).Round(time.Second))
			}
		}
	}()
	return func() { close(done) }
}

// buildKubernetes builds the three control-plane binaries from the
// k8s.io/kubernetes module. That module's go.mod points every k8s.io staging
// repository at ./staging, which does not exist in the module zip, so the
// wrapper module replaces each with the published v0.MINOR.PATCH tag — the
// recipe in docs/testbed.md.
func (b *Binaries) buildKubernetes(ctx context.Context, version, minor, out string) error {
	gomod, err := b.download(ctx, "k8s.io/kubernetes", version)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(gomod)
	if err != nil {
		return fmt.Errorf("reading k8s.io/kubernetes %s go.mod: %w", version, err)
	}
	staging := regexp.MustCompile(`(?m)^\s*(k8s\.io/[A-Za-z0-9._-]+)\s*=>\s*\./staging/`).FindAllSubmatch(data, -1)
	if len(staging) == 0 {
		return fmt.Errorf("k8s.io/kubernetes %s go.mod has no staging replacements; this version's layout is not supported", version)
	}
	patch := strings.Split(version, ".")[2]
	var replaces []string
	for _, s := range staging {
		replaces = append(replaces, fmt.Sprintf("%s => %s v0.%s.%s", s[1], s[1], minor, patch))
	}
	pkgs := []string{
		"k8s.io/kubernetes/cmd/kube-apiserver",
		"k8s.io/kubernetes/cmd/kube-controller-manager",
		"k8s.io/kubernetes/cmd/kube-scheduler",
	}
	// Without these the binaries report v0.0.0-master+$Format:%H$, which
	// every version parser (kubectl's included) rejects.
	ldflags := strings.Join([]string{
		"-X k8s.io/component-base/version.gitVersion=" + version,
		"-X k8s.io/component-base/version.gitMajor=1",
		"-X k8s.io/component-base/version.gitMinor=" + minor,
		"-X k8s.io/component-base/version.gitTreeState=clean",
		"-s -w",
	}, " ")
	if err := b.buildWrapped(ctx, "k8s.io/kubernetes", version, pkgs, ControlPlaneComponents, replaces, out, "-ldflags", ldflags); err != nil {
		return err
	}
	for _, c := range ControlPlaneComponents {
		if err := checkReportedVersion(ctx, filepath.Join(out, c), version); err != nil {
			return err
		}
	}
	return nil
}

// download fetches module@version through the module proxy and returns the
// path of its go.mod. An unserved version fails here, with the proxy's words.
func (b *Binaries) download(ctx context.Context, module, version string) (string, error) {
	goBin, err := goTool()
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, goBin, "mod", "download", "-json", module+"@"+version)
	cmd.Env = goEnv()
	cmd.Dir = os.TempDir()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	b.progressf("  downloading %s@%s", module, version)
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String() + " " + extractJSONError(stdout.String()))
		return "", fmt.Errorf("%s@%s is not available from the Go module proxy (%s); the sandbox can only run versions the proxy serves: %w", module, version, lastLine(msg), err)
	}
	m := regexp.MustCompile(`"GoMod":\s*"([^"]+)"`).FindStringSubmatch(stdout.String())
	if m == nil {
		return "", fmt.Errorf("go mod download %s@%s did not report a go.mod", module, version)
	}
	return m[1], nil
}

// buildWrapped builds pkgs from module@version inside a throw-away wrapper
// module (needed because modules with replace directives, like etcd's and
// kubernetes', refuse `go install pkg@version`). Binaries land in out under
// names; go.sum comes from `go mod tidy` against a file importing pkgs.
func (b *Binaries) buildWrapped(ctx context.Context, module, version string, pkgs, names, replaces []string, out string, buildArgs ...string) error {
	goBin, err := goTool()
	if err != nil {
		return err
	}
	if module != "k8s.io/kubernetes" { // already downloaded by buildKubernetes
		if _, err := b.download(ctx, module, version); err != nil {
			return err
		}
	}
	work, err := os.MkdirTemp("", "kup-build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	var gomod strings.Builder
	fmt.Fprintf(&gomod, "module kupbuild\n\ngo 1.26\n\nrequire %s %s\n", module, version)
	if len(replaces) > 0 {
		gomod.WriteString("\nreplace (\n")
		for _, r := range replaces {
			gomod.WriteString("\t" + r + "\n")
		}
		gomod.WriteString(")\n")
	}
	var imports strings.Builder
	imports.WriteString("//go:build tools\n\npackage kupbuild\n\nimport (\n")
	for _, p := range pkgs {
		fmt.Fprintf(&imports, "\t_ %q\n", p)
	}
	imports.WriteString(")\n")
	if err := os.WriteFile(filepath.Join(work, "go.mod"), []byte(gomod.String()), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(work, "tools.go"), []byte(imports.String()), 0o644); err != nil {
		return err
	}
	run := func(step string, args ...string) error {
		cmd := exec.CommandContext(ctx, goBin, args...)
		cmd.Dir = work
		cmd.Env = goEnv()
		var outBuf bytes.Buffer
		cmd.Stdout, cmd.Stderr = &outBuf, &outBuf
		if err := cmd.Run(); err != nil {
			log := filepath.Join(filepath.Dir(out), filepath.Base(out)+".failed.log")
			_ = os.WriteFile(log, outBuf.Bytes(), 0o644)
			return fmt.Errorf("%s failed (%v): %s; full output in %s", step, err, lastLine(outBuf.String()), log)
		}
		return nil
	}
	b.progressf("  resolving dependencies of %s@%s", module, version)
	if err := run("go mod tidy", "mod", "tidy"); err != nil {
		return err
	}
	for i, p := range pkgs {
		b.progressf("  compiling %s", names[i])
		args := append([]string{"build", "-o", filepath.Join(out, names[i])}, buildArgs...)
		args = append(args, p)
		if err := run("go build "+p, args...); err != nil {
			return err
		}
	}
	return nil
}

func goTool() (string, error) {
	p, err := exec.LookPath("go")
	if err != nil {
		if fileExists("/usr/local/go/bin/go") {
			return "/usr/local/go/bin/go", nil
		}
		return "", errors.New("building sandbox binaries needs the Go toolchain (1.26 or newer), and `go` is not on PATH: install Go, or pass --bin-dir with release binaries of kube-apiserver, kube-controller-manager, kube-scheduler and etcd")
	}
	return p, nil
}

// goEnv is the environment of the wrapper builds: the user's, minus what
// would make the build use a workspace or vendor directory of theirs.
func goEnv() []string {
	env := os.Environ()
	out := env[:0:0]
	for _, e := range env {
		if strings.HasPrefix(e, "GOWORK=") || strings.HasPrefix(e, "GOFLAGS=") {
			continue
		}
		out = append(out, e)
	}
	return append(out, "GOWORK=off", "GOFLAGS=-mod=mod")
}

// checkReportedVersion runs `bin --version` and insists the output names
// version, so a mislabelled binary in --bin-dir or a half-built one in the
// cache is refused instead of silently running the wrong control plane.
func checkReportedVersion(ctx context.Context, bin, version string) error {
	if !fileExists(bin) {
		return fmt.Errorf("%s: no such file", bin)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "--version").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s --version: %w (%s)", bin, err, lastLine(string(out)))
	}
	want := strings.TrimPrefix(version, "v")
	if !regexp.MustCompile(`(^|[^0-9.])v?` + regexp.QuoteMeta(want) + `([^0-9]|$)`).Match(out) {
		return fmt.Errorf("%s reports %q, want %s", bin, strings.TrimSpace(firstLine(string(out))), version)
	}
	return nil
}

// lockFile takes an exclusive flock on path, calling waiting once if
// someone else holds it. The lock dies with the process, so a killed build
// never blocks the next one.
func lockFile(ctx context.Context, path string, waiting func()) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening lock %s: %w", path, err)
	}
	told := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		if !told && waiting != nil {
			waiting()
			told = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func extractJSONError(s string) string {
	m := regexp.MustCompile(`"Error":\s*"([^"]+)"`).FindStringSubmatch(s)
	if m == nil {
		return ""
	}
	return m[1]
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

func dirExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

func syncDir(p string) {
	if d, err := os.Open(p); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

func firstLine(s string) string {
	return strings.TrimSpace(strings.SplitN(strings.TrimSpace(s), "\n", 2)[0])
}
