package version

import (
	_ "embed"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"sigs.k8s.io/yaml"
)

// StaleAfter is how old a release table may get before Stale warns. Upstream
// cuts patch releases about monthly (https://kubernetes.io/releases/patch-releases/#cadence)
// and a new minor every ~4 months, so after 120 days the table has almost
// certainly missed a minor and several patches.
const StaleAfter = 120 * 24 * time.Hour

// dateLayout is the table's date format.
const dateLayout = "2006-01-02"

//go:embed releases.json
var embeddedReleases []byte

// ErrInvalidReleases is wrapped by every error LoadReleases returns.
var ErrInvalidReleases = errors.New("invalid release table")

// Releases is a dated table of the Kubernetes patch releases known to exist,
// per minor. It decides which versions a path may go through; it is never
// fetched from the network (kup runs where the network may be closed), so it
// can be out of date: Stale says when to distrust it.
type Releases struct {
	date   time.Time
	source string
	// minors is sorted oldest first; each minor's patches oldest first.
	minors []minorReleases
}

type minorReleases struct {
	minor   Version // minor-only
	patches []Version
}

// releasesFile is the on-disk shape shared by the embedded table and
// override files (JSON, or YAML with the same fields).
type releasesFile struct {
	Date     string              `json:"date"`
	Source   string              `json:"source,omitempty"`
	Releases map[string][]string `json:"releases"`
}

var defaultReleases = sync.OnceValue(func() *Releases {
	r, err := parseReleases(embeddedReleases)
	if err != nil {
		// The embedded table is part of the binary; TestDefaultReleases
		// keeps this from ever happening in a release.
		panic(fmt.Sprintf("embedded releases.json: %v", err))
	}
	return r
})

// DefaultReleases is the table embedded in the binary. It is shared and
// immutable.
func DefaultReleases() *Releases { return defaultReleases() }

// LoadReleases reads an override table (for --releases FILE) in the format of
// the embedded releases.json, or the same fields in YAML:
//
//	{"date": "2026-11-25", "releases": {"1.37": ["v1.37.0", "v1.37.1"]}}
//
// Every patch must belong to the minor it is listed under, appear once, and
// be an upstream release (no pre-release, no distribution suffix).
func LoadReleases(r io.Reader) (*Releases, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("%w: reading: %w", ErrInvalidReleases, err)
	}
	return parseReleases(data)
}

func parseReleases(data []byte) (*Releases, error) {
	bad := func(format string, args ...any) (*Releases, error) {
		return nil, fmt.Errorf("%w: %s", ErrInvalidReleases, fmt.Sprintf(format, args...))
	}
	var f releasesFile
	// Strict: a misspelt field ("relases") must not silently give an empty table.
	if err := yaml.UnmarshalStrict(data, &f); err != nil {
		return bad("%v (expected JSON or YAML like {\"date\": \"2026-11-25\", \"releases\": {\"1.37\": [\"v1.37.0\", \"v1.37.1\"]}})", err)
	}
	if f.Date == "" {
		return bad(`missing "date" (YYYY-MM-DD, the day the table was last checked against upstream)`)
	}
	date, err := time.Parse(dateLayout, f.Date)
	if err != nil {
		return bad(`"date" %q is not a YYYY-MM-DD date, e.g. "2026-11-25"`, f.Date)
	}
	if len(f.Releases) == 0 {
		return bad(`"releases" is empty: list at least one minor and its patches, e.g. "1.37": ["v1.37.0"]`)
	}
	out := &Releases{date: date, source: f.Source}
	seenMinor := map[int]string{}
	for key, patches := range f.Releases {
		minor, err := Parse(key)
		if err != nil || !minor.IsMinorOnly() {
			return bad(`minor %q is not a minor like "1.37" (in YAML, quote it: unquoted 1.30 is the number 1.3)`, key)
		}
		if prev, dup := seenMinor[minor.Minor()]; dup {
			return bad("minor %q is listed twice (also as %q)", key, prev)
		}
		seenMinor[minor.Minor()] = key
		if len(patches) == 0 {
			return bad("minor %q has no patches: list its releases or remove it", key)
		}
		mr := minorReleases{minor: minor}
		for _, p := range patches {
			v, err := Parse(p)
			if err != nil {
				return bad("minor %q: %v", key, err)
			}
			switch {
			case v.IsMinorOnly():
				return bad("minor %q: %q is not a patch release; write it as e.g. \"v%s.0\"", key, p, key)
			case v.PreRelease() != "" || v.Distribution() != "":
				return bad("minor %q: %q is not an upstream release (the table lists upstream releases only; distribution builds are matched by their upstream version)", key, p)
			case v.Minor() != minor.Minor():
				return bad("minor %q: %q belongs to minor %s (in YAML, quote minor keys: unquoted 1.30 is the number 1.3)", key, p, v.MinorString())
			}
			for _, q := range mr.patches {
				if q.Compare(v) == 0 {
					return bad("minor %q: %q is listed twice", key, p)
				}
			}
			mr.patches = append(mr.patches, v)
		}
		slices.SortFunc(mr.patches, Version.Compare)
		out.minors = append(out.minors, mr)
	}
	sort.Slice(out.minors, func(i, j int) bool { return out.minors[i].minor.Compare(out.minors[j].minor) < 0 })
	return out, nil
}

// Date is the day the table was last checked against upstream.
func (r *Releases) Date() time.Time { return r.date }

// Source says where the table's data came from.
func (r *Releases) Source() string { return r.source }

// Age is how old the table is at now.
func (r *Releases) Age(now time.Time) time.Duration { return now.Sub(r.date) }

// Stale returns a warning when the table is older than StaleAfter at now,
// and "" while it is fresh.
func (r *Releases) Stale(now time.Time) string {
	age := r.Age(now)
	if age <= StaleAfter {
		return ""
	}
	return fmt.Sprintf("release table dated %s is %d days old (warning after %d): newer Kubernetes releases probably exist that kup does not know; pass --releases FILE with a current table",
		r.date.Format(dateLayout), int(age/(24*time.Hour)), int(StaleAfter/(24*time.Hour)))
}

// Minors lists the known minors, oldest first, as minor-only versions.
func (r *Releases) Minors() []Version {
	out := make([]Version, len(r.minors))
	for i, m := range r.minors {
		out[i] = m.minor
	}
	return out
}

// Patches lists the known patch releases of v's minor, oldest first (nil
// when the minor is unknown).
func (r *Releases) Patches(v Version) []Version {
	if m := r.find(v); m != nil {
		return slices.Clone(m.patches)
	}
	return nil
}

// NewestMinor is the newest minor in the table, as a minor-only version.
func (r *Releases) NewestMinor() Version {
	if len(r.minors) == 0 {
		return Version{}
	}
	return r.minors[len(r.minors)-1].minor
}

// NewestPatch is the newest known patch release of v's minor; false when the
// table does not know that minor.
func (r *Releases) NewestPatch(v Version) (Version, bool) {
	return r.NewestMatching(v, nil)
}

// NewestMatching is the newest known patch release of v's minor for which
// keep returns true (nil keeps all).
func (r *Releases) NewestMatching(v Version, keep func(Version) bool) (Version, bool) {
	m := r.find(v)
	if m == nil {
		return Version{}, false
	}
	for i := len(m.patches) - 1; i >= 0; i-- {
		if keep == nil || keep(m.patches[i]) {
			return m.patches[i], true
		}
	}
	return Version{}, false
}

// Known reports whether v's upstream version is a release in the table
// (ignoring any distribution suffix). A minor-only v is known when its minor
// is; a pre-release never is.
func (r *Releases) Known(v Version) bool {
	m := r.find(v)
	if m == nil || v.PreRelease() != "" {
		return false
	}
	if v.IsMinorOnly() {
		return true
	}
	for _, p := range m.patches {
		if p.Compare(v) == 0 {
			return true
		}
	}
	return false
}

func (r *Releases) find(v Version) *minorReleases {
	for i := range r.minors {
		if r.minors[i].minor.Major() == v.Major() && r.minors[i].minor.Minor() == v.Minor() {
			return &r.minors[i]
		}
	}
	return nil
}

// listVersions renders versions for messages: "v1.36.0, v1.36.1".
func listVersions(vs []Version) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = v.String()
	}
	return strings.Join(s, ", ")
}
