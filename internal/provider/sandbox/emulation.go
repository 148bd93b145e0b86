package sandbox

import (
	"context"
	"fmt"

	"github.com/kup-project/kup/internal/provider"
	sbx "github.com/kup-project/kup/internal/sandbox"
)

var _ provider.Emulator = (*ControlPlane)(nil)

// RunComponent swaps one component of the sandbox to the binaries of
// version emulating emulate (see sandbox.Cluster.RunComponent): the old
// process is put back if the new one does not serve, at both versions,
// within the ready timeout.
func (p *ControlPlane) RunComponent(ctx context.Context, component, version, emulate string) error {
	return p.Cluster.RunComponent(ctx, component, version, emulate, sbx.UpgradeOptions{ReadyTimeout: p.ReadyTimeout, Binary: p.Binary})
}

// Emulation asks every component what it runs and emulates: /version of
// the apiserver, the version_info metric of the others.
func (p *ControlPlane) Emulation(ctx context.Context) ([]provider.EmulatedComponent, error) {
	var out []provider.EmulatedComponent
	for _, name := range sbx.ControlPlaneComponents {
		e, err := p.Cluster.EmulatedVersion(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("reading what %s of sandbox %q emulates: %w", name, p.Cluster.Name, err)
		}
		src := "version_info metric"
		if name == sbx.APIServer {
			src = "/version"
		}
		out = append(out, provider.EmulatedComponent{
			Component: provider.Component{Name: name, Instance: "127.0.0.1", Version: e.Binary, Source: src},
			Emulated:  e.Emulated,
		})
	}
	return out, nil
}
