package version

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	utilversion "k8s.io/apimachinery/pkg/util/version"
)

// validExample is quoted by every parse error so the user sees what would work.
const validExample = `e.g. "v1.36.3", "1.36", "v1.36.3-eks-abc123", "v1.36.3+k3s1" or "v1.37.0-rc.1"`

// maxComponent bounds each numeric component so that minor arithmetic can
// never overflow an int, whatever the platform.
const maxComponentBits = 31

// ErrInvalidVersion is wrapped by every error Parse returns.
var ErrInvalidVersion = errors.New("invalid Kubernetes version")

// Version is a Kubernetes version as a cluster reports it: the upstream
// release (major.minor.patch plus an upstream pre-release such as -rc.1) and,
// apart from it, whatever a distribution appended (-eks-abc123, +k3s1,
// -gke.1200). Every comparison and every skew rule uses the upstream part
// only: a distribution's build of v1.36.3 is v1.36.3 for the policy.
//
// A Version may name a minor only ("1.36"); IsMinorOnly says so, and it
// compares like the .0 patch of that minor.
//
// The zero Version is not a valid version; IsZero reports it.
type Version struct {
	// upstream is always a semantic version (minor-only versions are stored
	// as .0) so that apimachinery compares pre-releases correctly.
	upstream     *utilversion.Version
	minorOnly    bool
	distribution string
}

// preReleaseRE matches the pre-releases the Kubernetes project itself cuts
// (v1.37.0-alpha.1, -beta.0, -rc.2, and builds between tags such as
// -alpha.2.120). Anything else after a "-" is a distribution's suffix.
// https://git.k8s.io/sig-release/release-engineering/versioning.md
var preReleaseRE = regexp.MustCompile(`^-((?:alpha|beta|rc)(?:\.(?:0|[1-9][0-9]*))+)`)

// preReleaseWordRE recognises a suffix that tries to be an upstream
// pre-release ("-rc", "-rc1", "-alpha.x"): those are rejected rather than
// silently read as a distribution suffix, which would make an RC look like
// the final release.
var preReleaseWordRE = regexp.MustCompile(`^-(?:alpha|beta|rc)(?:[0-9]*)(?:$|[.+-])`)

// distributionRE is what a distribution suffix may contain.
var distributionRE = regexp.MustCompile(`^[-+][0-9A-Za-z][0-9A-Za-z._+-]*$`)

// Parse reads a Kubernetes version: an optional "v", MAJOR.MINOR or
// MAJOR.MINOR.PATCH, an optional upstream pre-release (-alpha.N, -beta.N,
// -rc.N) and an optional distribution suffix starting with "-" or "+".
// Errors say what was wrong and show a valid example.
func Parse(s string) (Version, error) {
	bad := func(format string, args ...any) (Version, error) {
		return Version{}, fmt.Errorf("%w %q: %s; expected v1.MINOR[.PATCH][-SUFFIX], %s",
			ErrInvalidVersion, s, fmt.Sprintf(format, args...), validExample)
	}
	if s == "" {
		return bad("empty string")
	}
	if strings.TrimSpace(s) != s {
		return bad("leading or trailing whitespace")
	}
	rest := strings.TrimPrefix(s, "v")

	// Split off the numeric components: up to three dot-separated numbers.
	var nums []int
	for i := 0; i < 3; i++ {
		end := 0
		for end < len(rest) && rest[end] >= '0' && rest[end] <= '9' {
			end++
		}
		name := [...]string{"major", "minor", "patch"}[i]
		if end == 0 {
			if rest == "" {
				return bad("missing %s version", name)
			}
			return bad("%s version must be a number, found %q", name, rest)
		}
		digits := rest[:end]
		if len(digits) > 1 && digits[0] == '0' {
			return bad("%s version %q has a leading zero", name, digits)
		}
		n, err := strconv.ParseUint(digits, 10, maxComponentBits)
		if err != nil {
			return bad("%s version %q is too large", name, digits)
		}
		nums = append(nums, int(n))
		rest = rest[end:]
		if i == 2 || !strings.HasPrefix(rest, ".") {
			break
		}
		rest = rest[1:]
	}
	if len(nums) < 2 {
		return bad("missing minor version")
	}
	if nums[0] != 1 {
		return bad("major version %d: Kubernetes has only ever released major version 1", nums[0])
	}
	minorOnly := len(nums) == 2
	if minorOnly {
		nums = append(nums, 0)
		if rest != "" {
			return bad("a minor-only version takes no suffix (found %q); give the patch too", rest)
		}
	}

	var pre, dist string
	if rest != "" {
		if rest[0] != '-' && rest[0] != '+' {
			return bad("unexpected %q after the version numbers", rest)
		}
		if m := preReleaseRE.FindStringSubmatch(rest); m != nil &&
			(len(m[0]) == len(rest) || rest[len(m[0])] == '-' || rest[len(m[0])] == '+') {
			pre, rest = m[1], rest[len(m[0]):]
		} else if preReleaseWordRE.MatchString(rest) {
			return bad("malformed upstream pre-release %q (upstream uses -alpha.N, -beta.N or -rc.N, e.g. v1.37.0-rc.1)", rest)
		}
		if rest != "" {
			if !distributionRE.MatchString(rest) {
				return bad("malformed distribution suffix %q (letters, digits, '.', '-', '+' after a leading '-' or '+')", rest)
			}
			dist = rest
		}
	}

	core := fmt.Sprintf("%d.%d.%d", nums[0], nums[1], nums[2])
	if pre != "" {
		core += "-" + pre
	}
	up, err := utilversion.ParseSemantic(core)
	if err != nil {
		// Unreachable for what the checks above accept; kept so that a
		// future apimachinery rule surfaces as a parse error, not a panic.
		return bad("%v", err)
	}
	return Version{upstream: up, minorOnly: minorOnly, distribution: dist}, nil
}

// MustParse is Parse for constants in code and tests; it panics on error.
func MustParse(s string) Version {
	v, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return v
}

// MinorVersion is the minor-only version 1.MINOR.
func MinorVersion(major, minor int) Version {
	// Semantic (not "generic") so that it compares with pre-releases the way
	// a parsed "1.36" does.
	return Version{upstream: utilversion.MustParseSemantic(fmt.Sprintf("%d.%d.0", major, minor)), minorOnly: true}
}

// IsZero reports whether v is the zero Version (not parsed).
func (v Version) IsZero() bool { return v.upstream == nil }

// Major is the major version (always 1 for a parsed version).
func (v Version) Major() int {
	if v.upstream == nil {
		return 0
	}
	return int(v.upstream.Major())
}

// Minor is the minor version.
func (v Version) Minor() int {
	if v.upstream == nil {
		return 0
	}
	return int(v.upstream.Minor())
}

// Patch is the patch version (0 for a minor-only version).
func (v Version) Patch() int {
	if v.upstream == nil {
		return 0
	}
	return int(v.upstream.Patch())
}

// PreRelease is the upstream pre-release ("rc.1"), empty for a release.
func (v Version) PreRelease() string {
	if v.upstream == nil {
		return ""
	}
	return v.upstream.PreRelease()
}

// Distribution is the suffix a distribution appended, with its leading "-"
// or "+" ("-eks-abc123", "+k3s1"), empty for an upstream build.
func (v Version) Distribution() string { return v.distribution }

// IsMinorOnly reports whether v names a minor without a patch ("1.36").
func (v Version) IsMinorOnly() bool { return v.minorOnly }

// Upstream is v without its distribution suffix.
func (v Version) Upstream() Version {
	v.distribution = ""
	return v
}

// AsMinor is the minor-only version of v's minor ("v1.36.3" → "v1.36").
func (v Version) AsMinor() Version {
	if v.upstream == nil {
		return v
	}
	return MinorVersion(v.Major(), v.Minor())
}

// String is the canonical form: "v", the upstream version, the distribution
// suffix. Parse(v.String()) gives v back.
func (v Version) String() string {
	if v.upstream == nil {
		return "<none>"
	}
	if v.minorOnly {
		return fmt.Sprintf("v%d.%d", v.Major(), v.Minor())
	}
	return "v" + v.upstream.String() + v.distribution
}

// MinorString is "1.36" for any version of minor 36, as the policy speaks.
func (v Version) MinorString() string {
	return fmt.Sprintf("%d.%d", v.Major(), v.Minor())
}

// Compare returns -1, 0 or +1 as v is older than, the same upstream version
// as, or newer than o. Distribution suffixes are ignored; a minor-only
// version compares as its .0 patch; pre-releases sort before their release.
// The zero Version sorts before every parsed one.
func (v Version) Compare(o Version) int {
	switch {
	case v.upstream == nil && o.upstream == nil:
		return 0
	case v.upstream == nil:
		return -1
	case o.upstream == nil:
		return 1
	case v.upstream.LessThan(o.upstream):
		return -1
	case v.upstream.GreaterThan(o.upstream):
		return 1
	}
	return 0
}

// MinorsAfter is how many minors v is ahead of o (negative when behind),
// the unit every skew rule is written in.
func (v Version) MinorsAfter(o Version) int {
	return (v.Major()-o.Major())*1_000_000 + v.Minor() - o.Minor()
}

// MarshalText writes String, so versions are plain strings in JSON.
func (v Version) MarshalText() ([]byte, error) {
	if v.upstream == nil {
		return []byte{}, nil
	}
	return []byte(v.String()), nil
}

// UnmarshalText parses with Parse; an empty string gives the zero Version.
func (v *Version) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*v = Version{}
		return nil
	}
	p, err := Parse(string(b))
	if err != nil {
		return err
	}
	*v = p
	return nil
}
