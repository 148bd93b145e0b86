package rehearse

import (
	"fmt"

	"github.com/kup-project/kup/internal/version"
)

// TwinVersion picks the twin's control-plane version for a real cluster
// serving server: the same release if the sandbox can install it, else
// the nearest patch of the same minor it can (the newer on a tie), with a
// note saying so. served nil means "anything can be tried".
func TwinVersion(server string, served []string) (string, string, error) {
	v, err := version.Parse(server)
	if err != nil {
		return "", "", fmt.Errorf("the real cluster's version %q: %w", server, err)
	}
	up := v.Upstream()
	exact := fmt.Sprintf("v%d.%d.%d", up.Major(), up.Minor(), up.Patch())
	if served == nil {
		return exact, "", nil
	}
	best, bestDist := "", -1
	for _, s := range served {
		sv, err := version.Parse(s)
		if err != nil || sv.PreRelease() != "" || sv.Major() != up.Major() || sv.Minor() != up.Minor() {
			continue
		}
		if sv.Patch() == up.Patch() {
			return exact, note(server, exact), nil
		}
		d := sv.Patch() - up.Patch()
		if d < 0 {
			d = -d
		}
		if bestDist < 0 || d < bestDist || (d == bestDist && sv.Patch() > up.Patch()) {
			best, bestDist = sv.String(), d
		}
	}
	if best == "" {
		return "", "", fmt.Errorf("the sandbox can install no release of %d.%d (the real cluster runs %s)", up.Major(), up.Minor(), server)
	}
	return best, fmt.Sprintf("the real cluster runs %s; the sandbox cannot install %s, so the twin runs %s, the nearest patch of the same minor", server, exact, best), nil
}

func note(server, exact string) string {
	if server == exact {
		return ""
	}
	return fmt.Sprintf("the real cluster runs %s (a distribution build); the twin runs upstream %s", server, exact)
}
