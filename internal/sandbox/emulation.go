package sandbox

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/kup-project/kup/internal/rollbacksafe"
	"github.com/kup-project/kup/internal/version"
)

// The sandbox side of KEP-4330 compatibility versions: each control-plane
// component can be started with --emulated-version (kube-apiserver,
// kube-controller-manager and kube-scheduler all accept it; `--help` of
// the v1.37.2 binaries: "Options are: kube=1.34..1.37"). What each one
// emulates is recorded in State.Emulated before it starts, so a restart
// (EnsureRunning after a killed kup, an etcd restore) starts it the same
// way. The order in which components move is the caller's
// (rollbacksafe.Order); this file moves one at a time.

// emulationArgs are the flags that make component emulate what the
// sandbox records for it.
func (c *Cluster) emulationArgs(component string) []string {
	if e := c.emulation(component); e != "" {
		return []string{"--emulated-version", "kube=" + e}
	}
	return nil
}

// emulation is the minor component is to emulate ("1.36"), "" for none.
func (c *Cluster) emulation(component string) string {
	if e, ok := c.Emulated[component]; ok {
		return e
	}
	return c.EmulatedFrom
}

func (c *Cluster) setEmulation(component, emulate string) {
	if c.Emulated == nil {
		c.Emulated = map[string]string{}
	}
	c.Emulated[component] = emulate
}

// argsEmulation is the --emulated-version a recorded process was started
// with ("" for none): what really runs, which the record of intent
// (State.Emulated) may be ahead of when a kup was killed mid-swap.
func argsEmulation(args []string) string {
	for i, a := range args {
		switch {
		case a == "--emulated-version" && i+1 < len(args):
			return strings.TrimPrefix(args[i+1], "kube=")
		case strings.HasPrefix(a, "--emulated-version="):
			return strings.TrimPrefix(strings.TrimPrefix(a, "--emulated-version="), "kube=")
		}
	}
	return ""
}

// normalEmulation checks emulate against the binary version and returns
// the value to record: "" when it is the binary's own minor, which is
// what the component does without the flag.
func normalEmulation(binary, emulate string) (string, error) {
	if emulate == "" {
		return "", nil
	}
	v, err := version.Parse(binary)
	if err != nil {
		return "", err
	}
	if err := rollbacksafe.CheckEmulation(v, emulate); err != nil {
		return "", err
	}
	e, _ := rollbacksafe.ParseEmulation(emulate)
	if e.MinorString() == v.MinorString() {
		return "", nil
	}
	return e.MinorString(), nil
}

// effectiveEmulation is the minor a component of binary version runs
// with emulate recorded: emulate, or the binary's own minor.
func effectiveEmulation(binary, emulate string) string {
	if emulate != "" {
		return emulate
	}
	v, err := version.Parse(binary)
	if err != nil {
		return ""
	}
	return v.MinorString()
}

// RunComponent makes component run the binaries of version emulating the
// minor emulate ("1.36"; "" for the binary's own), swapping the process
// as UpgradeControlPlane does: the old one stops, the new one must serve
// and report both its version and its emulated version within the
// ready timeout, or the old process (binary and emulation) is started
// again and a *SwapError says so. A component already running as asked is
// left alone.
func (c *Cluster) RunComponent(ctx context.Context, component, version, emulate string, opts UpgradeOptions) error {
	if c.componentPort(component) == 0 {
		return fmt.Errorf("%s is not a control-plane component of the sandbox (want one of %s)", component, strings.Join(ControlPlaneComponents, ", "))
	}
	emulate, err := normalEmulation(version, emulate)
	if err != nil {
		return fmt.Errorf("%s %s: %w", component, version, err)
	}
	if p := c.Processes[component]; p != nil && p.Version == version && p.Alive() && argsEmulation(p.Args) == emulate {
		return nil
	}
	dir, err := c.bins.Kubernetes(ctx, version)
	if err != nil {
		return fmt.Errorf("%s to %s: %w", component, version, err)
	}
	bin := filepath.Join(dir, component)
	if opts.Binary != nil {
		if b := opts.Binary(component, version); b != "" {
			bin = b
		}
	}
	if err := c.swap(ctx, component, componentLaunch{bin: bin, version: version, emulate: emulate}, opts.readyTimeout()); err != nil {
		return err
	}
	// The sandbox's version is the control plane's once every component
	// runs it.
	same := true
	for _, comp := range ControlPlaneComponents {
		if p := c.Processes[comp]; p == nil || p.Version != version {
			same = false
		}
	}
	if same && c.Version != version {
		c.Version = version
		return c.save()
	}
	return nil
}

// Emulation is what one component reports about itself.
type Emulation struct {
	// Binary is the component's version ("v1.37.2").
	Binary string
	// Emulated is the minor it emulates ("1.36").
	Emulated string
}

var versionInfoRE = regexp.MustCompile(`(?m)^version_info\{([^}]*)\}`)
var labelRE = regexp.MustCompile(`(\w+)="([^"]*)"`)

// EmulatedVersion asks component what it emulates: the apiserver through
// /version (emulationMajor.emulationMinor, KEP-4330 "Version
// introspection"), the controller-manager and scheduler through the
// version_info metric's emulation label. A component that reports none
// is an error, never taken as its binary's minor.
func (c *Cluster) EmulatedVersion(ctx context.Context, component string) (Emulation, error) {
	if component == APIServer {
		body, err := c.Client().Discovery().RESTClient().Get().AbsPath("/version").Do(ctx).Raw()
		if err != nil {
			return Emulation{}, err
		}
		var v struct {
			GitVersion     string `json:"gitVersion"`
			EmulationMajor string `json:"emulationMajor"`
			EmulationMinor string `json:"emulationMinor"`
		}
		if err := json.Unmarshal(body, &v); err != nil {
			return Emulation{}, fmt.Errorf("decoding /version: %w", err)
		}
		if v.EmulationMajor == "" || v.EmulationMinor == "" {
			return Emulation{}, fmt.Errorf("kube-apiserver %s: /version reports no emulationMajor/emulationMinor", v.GitVersion)
		}
		return Emulation{Binary: v.GitVersion, Emulated: v.EmulationMajor + "." + v.EmulationMinor}, nil
	}
	url := fmt.Sprintf("https://127.0.0.1:%d/metrics", c.componentPort(component))
	body, err := httpGet(ctx, c.httpClient(), url, metricsLimit)
	if err != nil {
		return Emulation{}, err
	}
	e, err := parseVersionInfo([]byte(body))
	if err != nil {
		return Emulation{}, fmt.Errorf("%s %s: %w", component, url, err)
	}
	if m := buildInfoRE.FindStringSubmatch(body); m != nil {
		e.Binary = m[1]
	}
	return e, nil
}

// parseVersionInfo reads the "kube" series of component-base's
// version_info metric: version_info{binary="1.36.3",component="kube",
// emulation="1.36",min_compat="1.35"} 1.
func parseVersionInfo(metrics []byte) (Emulation, error) {
	for _, m := range versionInfoRE.FindAllSubmatch(metrics, -1) {
		labels := map[string]string{}
		for _, l := range labelRE.FindAllSubmatch(m[1], -1) {
			labels[string(l[1])] = string(l[2])
		}
		if labels["component"] != "kube" && labels["component"] != "" {
			continue
		}
		if labels["emulation"] == "" {
			return Emulation{}, fmt.Errorf("version_info has no emulation label")
		}
		e := Emulation{Emulated: labels["emulation"]}
		if b := labels["binary"]; b != "" {
			e.Binary = "v" + strings.TrimPrefix(b, "v")
		}
		return e, nil
	}
	return Emulation{}, fmt.Errorf("no version_info metric (components before v1.%d do not emulate)", rollbacksafe.EmulationFlagMinor)
}

// waitEmulation waits until component reports it emulates want.
func (c *Cluster) waitEmulation(ctx context.Context, component, want string) error {
	p := c.Processes[component]
	deadline := 30 * time.Second
	if d, ok := ctx.Deadline(); ok {
		deadline = time.Until(d)
	}
	return waitFor(ctx, deadline, fmt.Sprintf("%s emulating %s", component, want), p, func(ctx context.Context) error {
		got, err := c.EmulatedVersion(ctx, component)
		if err != nil {
			return err
		}
		if got.Emulated != want {
			return fmt.Errorf("%s reports it emulates %s, want %s", component, got.Emulated, want)
		}
		return nil
	})
}
