// Package buildinfo reports which kup binary is running. It never reads the
// cluster; the version is stamped at link time or taken from the module
// information the Go toolchain embeds.
package buildinfo

import "runtime/debug"

// Version is overridden at link time with
// -ldflags "-X github.com/kup-project/kup/internal/buildinfo.Version=v0.1.0".
var Version = ""

// String returns the kup version, falling back to the VCS revision the Go
// toolchain recorded, so a `go build` from a checkout still says what it is.
func String() string {
	if Version != "" {
		return Version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	if info.Main.Version != "" && info.Main.Version != "(devel)" {
		return info.Main.Version
	}
	rev, dirty := "", false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "devel"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "-dirty"
	}
	return "devel-" + rev
}
