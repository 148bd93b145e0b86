package version

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func TestDefaultReleases(t *testing.T) {
	rel := DefaultReleases()
	if got := rel.Date().Format("2006-01-02"); got != "2026-11-25" {
		t.Errorf("table date = %s, want 2026-11-25", got)
	}
	minors := rel.Minors()
	if len(minors) < 10 || minors[0].String() != "v1.28" {
		t.Fatalf("minors = %s, want 1.28 through at least 1.37", listVersions(minors))
	}
	for i, m := range minors {
		if m.Minor() != 28+i {
			t.Errorf("minor %d is %s: the table must have no gaps", i, m)
		}
		if _, ok := rel.NewestPatch(m); !ok {
			t.Errorf("minor %s has no patches", m)
		}
	}
	if got := rel.NewestMinor().String(); got != "v1.37" {
		t.Errorf("NewestMinor = %s, want v1.37", got)
	}
	// The releases known to be served (testbed.md) must all be known.
	for _, s := range []string{"v1.34.0", "v1.34.2", "v1.34.3", "v1.34.4", "v1.35.4", "v1.36.1", "v1.36.3", "v1.37.2",
		"v1.28.15", "v1.29.15", "v1.30.14", "v1.31.14", "v1.33.9"} {
		if !rel.Known(MustParse(s)) {
			t.Errorf("Known(%s) = false", s)
		}
	}
	newest := map[string]string{"1.28": "v1.28.15", "1.29": "v1.29.15", "1.30": "v1.30.14", "1.31": "v1.31.14",
		"1.34": "v1.34.4", "1.35": "v1.35.4", "1.36": "v1.36.3", "1.37": "v1.37.2"}
	for m, want := range newest {
		got, ok := rel.NewestPatch(MustParse(m))
		if !ok || got.String() != want {
			t.Errorf("NewestPatch(%s) = %s, %v; want %s", m, got, ok, want)
		}
	}
	for _, tt := range []struct {
		v    string
		want bool
	}{
		{"v1.36.3-eks-abc123", true}, // distribution builds match by upstream
		{"v1.36.3+k3s1", true},
		{"1.36", true}, // a minor-only version: the minor is known
		{"v1.36.9", false},
		{"v1.37.0-rc.1", false}, // pre-releases are not in the table
		{"v1.38.0", false},
		{"1.27", false},
	} {
		if got := rel.Known(MustParse(tt.v)); got != tt.want {
			t.Errorf("Known(%s) = %v, want %v", tt.v, got, tt.want)
		}
	}
	if _, ok := rel.NewestPatch(MustParse("1.27")); ok {
		t.Error("NewestPatch(1.27) found a patch in a table starting at 1.28")
	}
	got, ok := rel.NewestMatching(MustParse("1.34"), func(v Version) bool { return v.Patch() <= 2 })
	if !ok || got.String() != "v1.34.2" {
		t.Errorf("NewestMatching(1.34, patch<=2) = %s, %v; want v1.34.2", got, ok)
	}
}

func TestReleasesStale(t *testing.T) {
	rel := DefaultReleases()
	day := 24 * time.Hour
	tests := []struct {
		now       time.Time
		wantStale bool
		wantDays  string
	}{
		{rel.Date(), false, ""},
		{rel.Date().Add(120 * day), false, ""},
		{rel.Date().Add(121 * day), true, "121 days old"},
		{time.Date(2027, 6, 1, 12, 0, 0, 0, time.UTC), true, "188 days old"},
	}
	for _, tt := range tests {
		w := rel.Stale(tt.now)
		if (w != "") != tt.wantStale {
			t.Errorf("Stale(%s) = %q, want stale %v", tt.now, w, tt.wantStale)
		}
		if tt.wantStale && (!strings.Contains(w, tt.wantDays) || !strings.Contains(w, "2026-11-25") || !strings.Contains(w, "--releases")) {
			t.Errorf("Stale(%s) = %q: want the age (%s), the date and the way out", tt.now, w, tt.wantDays)
		}
	}
	if got := rel.Age(rel.Date().Add(36 * time.Hour)); got != 36*time.Hour {
		t.Errorf("Age = %s, want 36h", got)
	}
}

func TestLoadReleases(t *testing.T) {
	for _, file := range []string{"testdata/releases-override.json", "testdata/releases-override.yaml"} {
		t.Run(file, func(t *testing.T) {
			f, err := os.Open(file)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			rel, err := LoadReleases(f)
			if err != nil {
				t.Fatalf("LoadReleases: %v", err)
			}
			if got := rel.Date().Format("2006-01-02"); got != "2027-04-20" {
				t.Errorf("date = %s, want 2027-04-20", got)
			}
			if got := rel.NewestMinor().String(); got != "v1.38" {
				t.Errorf("NewestMinor = %s, want v1.38", got)
			}
			if got, _ := rel.NewestPatch(MustParse("1.30")); got.String() != "v1.30.14" {
				t.Errorf("NewestPatch(1.30) = %s, want v1.30.14 (listed out of order)", got)
			}
			if got, _ := rel.NewestPatch(MustParse("1.38")); got.String() != "v1.38.1" {
				t.Errorf("NewestPatch(1.38) = %s, want v1.38.1", got)
			}
			if rel.Known(MustParse("v1.37.3")) != true || rel.Known(MustParse("v1.37.4")) {
				t.Error("Known disagrees with the override file")
			}
			// The override makes a path to 1.38 possible.
			p, err := Path(MustParse("v1.37.2"), MustParse("v1.38.1"), rel, PathOptions{})
			if err != nil || len(p.Hops) != 1 {
				t.Errorf("Path to v1.38.1 with the override: %v, %v", p, err)
			}
		})
	}
}

func TestLoadReleasesErrors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"syntax", `{"date": "2026-11-25", "releases": {"1.37": ["v1.37.0"]`, "expected JSON or YAML"},
		{"unknown field", `{"date": "2026-11-25", "relases": {"1.37": ["v1.37.0"]}}`, `unknown field "relases"`},
		{"no date", `{"releases": {"1.37": ["v1.37.0"]}}`, `missing "date"`},
		{"bad date", `{"date": "25/11/2026", "releases": {"1.37": ["v1.37.0"]}}`, `"date" "25/11/2026" is not a YYYY-MM-DD date`},
		{"empty", `{"date": "2026-11-25", "releases": {}}`, `"releases" is empty`},
		{"bad minor key", `{"date": "2026-11-25", "releases": {"1.37.0": ["v1.37.0"]}}`, `minor "1.37.0" is not a minor`},
		{"unquoted yaml minor", "date: 2026-11-25\nreleases:\n  1.30: [v1.30.0]\n", `belongs to minor 1.30`},
		{"duplicate minor", `{"date": "2026-11-25", "releases": {"1.37": ["v1.37.0"], "v1.37": ["v1.37.1"]}}`, "listed twice"},
		{"no patches", `{"date": "2026-11-25", "releases": {"1.37": []}}`, `minor "1.37" has no patches`},
		{"bad patch", `{"date": "2026-11-25", "releases": {"1.37": ["v1.37.x"]}}`, `minor "1.37": invalid Kubernetes version "v1.37.x"`},
		{"wrong minor", `{"date": "2026-11-25", "releases": {"1.37": ["v1.36.3"]}}`, `"v1.36.3" belongs to minor 1.36`},
		{"minor-only patch", `{"date": "2026-11-25", "releases": {"1.37": ["1.37"]}}`, `is not a patch release`},
		{"pre-release", `{"date": "2026-11-25", "releases": {"1.37": ["v1.37.0-rc.1"]}}`, "not an upstream release"},
		{"distribution", `{"date": "2026-11-25", "releases": {"1.37": ["v1.37.0-eks-1"]}}`, "not an upstream release"},
		{"duplicate patch", `{"date": "2026-11-25", "releases": {"1.37": ["v1.37.0", "1.37.0"]}}`, `"1.37.0" is listed twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rel, err := LoadReleases(strings.NewReader(tt.in))
			if err == nil {
				t.Fatalf("LoadReleases accepted %s: %+v", tt.in, rel)
			}
			if !errors.Is(err, ErrInvalidReleases) {
				t.Errorf("error %v does not wrap ErrInvalidReleases", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
		})
	}
}

// errReader fails like a broken file.
type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestLoadReleasesReadError(t *testing.T) {
	_, err := LoadReleases(errReader{})
	if !errors.Is(err, ErrInvalidReleases) || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("err = %v, want the read error wrapped in ErrInvalidReleases", err)
	}
}
