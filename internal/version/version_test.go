package version

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in                  string
		major, minor, patch int
		pre, dist           string
		minorOnly           bool
		str                 string
	}{
		{in: "v1.36.3", major: 1, minor: 36, patch: 3, str: "v1.36.3"},
		{in: "1.36.3", major: 1, minor: 36, patch: 3, str: "v1.36.3"},
		{in: "1.36", major: 1, minor: 36, minorOnly: true, str: "v1.36"},
		{in: "v1.36", major: 1, minor: 36, minorOnly: true, str: "v1.36"},
		{in: "1.36.3-eks-abc123", major: 1, minor: 36, patch: 3, dist: "-eks-abc123", str: "v1.36.3-eks-abc123"},
		{in: "v1.36.3+k3s1", major: 1, minor: 36, patch: 3, dist: "+k3s1", str: "v1.36.3+k3s1"},
		{in: "v1.36.3-gke.1200", major: 1, minor: 36, patch: 3, dist: "-gke.1200", str: "v1.36.3-gke.1200"},
		{in: "v1.30.4-eks-a737599", major: 1, minor: 30, patch: 4, dist: "-eks-a737599", str: "v1.30.4-eks-a737599"},
		{in: "v1.37.0-rc.1", major: 1, minor: 37, pre: "rc.1", str: "v1.37.0-rc.1"},
		{in: "v1.37.0-alpha.2", major: 1, minor: 37, pre: "alpha.2", str: "v1.37.0-alpha.2"},
		{in: "v1.37.0-beta.0", major: 1, minor: 37, pre: "beta.0", str: "v1.37.0-beta.0"},
		{in: "v1.37.0-alpha.2.120+a1b2c3d", major: 1, minor: 37, pre: "alpha.2.120", dist: "+a1b2c3d", str: "v1.37.0-alpha.2.120+a1b2c3d"},
		{in: "v1.37.0-rc.1+k3s1", major: 1, minor: 37, pre: "rc.1", dist: "+k3s1", str: "v1.37.0-rc.1+k3s1"},
		{in: "v1.37.0-rc.1-eks-1", major: 1, minor: 37, pre: "rc.1", dist: "-eks-1", str: "v1.37.0-rc.1-eks-1"},
		{in: "v1.36.3-betamax", major: 1, minor: 36, patch: 3, dist: "-betamax", str: "v1.36.3-betamax"},
		{in: "v1.0.0", major: 1, str: "v1.0.0"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			v, err := Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if v.Major() != tt.major || v.Minor() != tt.minor || v.Patch() != tt.patch {
				t.Errorf("Parse(%q) = %d.%d.%d, want %d.%d.%d", tt.in, v.Major(), v.Minor(), v.Patch(), tt.major, tt.minor, tt.patch)
			}
			if v.PreRelease() != tt.pre {
				t.Errorf("PreRelease() = %q, want %q", v.PreRelease(), tt.pre)
			}
			if v.Distribution() != tt.dist {
				t.Errorf("Distribution() = %q, want %q", v.Distribution(), tt.dist)
			}
			if v.IsMinorOnly() != tt.minorOnly {
				t.Errorf("IsMinorOnly() = %v, want %v", v.IsMinorOnly(), tt.minorOnly)
			}
			if v.String() != tt.str {
				t.Errorf("String() = %q, want %q", v.String(), tt.str)
			}
			if v.Upstream().Distribution() != "" || v.Upstream().Compare(v) != 0 {
				t.Errorf("Upstream() = %s, want %s without its distribution", v.Upstream(), v)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		in   string
		want string // part of the error that says what was wrong
	}{
		{"", "empty string"},
		{" v1.36.3", "whitespace"},
		{"v1.36.3\n", "whitespace"},
		{"latest", `major version must be a number, found "latest"`},
		{"v1", "missing minor version"},
		{"1.", "missing minor version"},
		{"1.36.", "missing patch version"},
		{"2.0.0", "major version 2"},
		{"0.36.1", "major version 0"},
		{"v01.36.3", "leading zero"},
		{"1.036.3", "leading zero"},
		{"1.36.03", "leading zero"},
		{"1.99999999999.0", "too large"},
		{"1.36.3.4", `unexpected ".4"`},
		{"1.36.3_eks", `unexpected "_eks"`},
		{"1.36-eks", "minor-only version takes no suffix"},
		{"V1.36.3", "must be a number"},
		{"v1.36.3-", "malformed distribution suffix"},
		{"v1.36.3+", "malformed distribution suffix"},
		{"v1.36.3-eks abc", "malformed distribution suffix"},
		{"v1.36.3-é", "malformed distribution suffix"},
		{"v1.37.0-rc1+k3s1", "malformed upstream pre-release"},
		{"v1.37.0-rc", "malformed upstream pre-release"},
		{"v1.37.0-alpha.x", "malformed upstream pre-release"},
		{"v1.37.0-beta.01", "malformed upstream pre-release"},
		{"v1.37.0-rc.1.x", "malformed upstream pre-release"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			v, err := Parse(tt.in)
			if err == nil {
				t.Fatalf("Parse(%q) = %s, want an error", tt.in, v)
			}
			if !errors.Is(err, ErrInvalidVersion) {
				t.Errorf("error %v does not wrap ErrInvalidVersion", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.want) {
				t.Errorf("error %q does not say %q", msg, tt.want)
			}
			if !strings.Contains(msg, `"v1.36.3"`) {
				t.Errorf("error %q shows no valid example", msg)
			}
			if !v.IsZero() {
				t.Errorf("failed Parse returned non-zero %s", v)
			}
		})
	}
}

func TestCompare(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"v1.36.3", "1.36.3", 0},
		{"v1.36.3-eks-abc123", "v1.36.3", 0},               // distribution ignored
		{"v1.36.3-eks-abc123", "v1.36.3+k3s1", 0},          // across distributions
		{"v1.36.3-gke.1200", "v1.36.4", -1},                // by upstream
		{"v1.36.10+k3s1", "v1.36.9-eks-zzz", 1},            // numeric, not lexical
		{"v1.37.0-rc.1", "v1.37.0", -1},                    // pre-release before release
		{"v1.37.0-alpha.2", "v1.37.0-beta.0", -1},          // alpha < beta < rc
		{"v1.37.0-beta.2", "v1.37.0-rc.0", -1},             //
		{"v1.37.0-rc.2", "v1.37.0-rc.10", -1},              // numeric pre-release parts
		{"v1.37.0-rc.1", "v1.36.9", 1},                     //
		{"1.37", "v1.37.0", 0},                             // minor-only as .0
		{"1.37", "v1.37.0-rc.1", 1},                        // consistent with .0
		{"1.37", "v1.37.1", -1},                            //
		{"1.28", "1.100", -1},                              //
		{"v1.37.0-alpha.2.120+abc", "v1.37.0-alpha.2", 1},  // builds after a tag
		{"v1.37.0-alpha.2.120+abc", "v1.37.0-alpha.3", -1}, //
	}
	for _, tt := range tests {
		a, b := MustParse(tt.a), MustParse(tt.b)
		if got := a.Compare(b); got != tt.want {
			t.Errorf("%s.Compare(%s) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := b.Compare(a); got != -tt.want {
			t.Errorf("%s.Compare(%s) = %d, want %d (antisymmetry)", tt.b, tt.a, got, -tt.want)
		}
	}
	if got := (Version{}).Compare(MustParse("v1.0.0")); got != -1 {
		t.Errorf("zero.Compare(v1.0.0) = %d, want -1", got)
	}
}

func TestMinorsAfter(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"v1.37.2", "v1.33.9", 4},
		{"v1.33.9-eks-1", "v1.37.0", -4},
		{"1.36", "v1.36.3", 0},
		{"v1.36.0-rc.1", "v1.35.9", 1},
	}
	for _, tt := range tests {
		if got := MustParse(tt.a).MinorsAfter(MustParse(tt.b)); got != tt.want {
			t.Errorf("%s.MinorsAfter(%s) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestVersionJSON(t *testing.T) {
	type doc struct {
		V    Version  `json:"v"`
		Opt  *Version `json:"opt,omitempty"`
		Zero Version  `json:"zero"`
	}
	in := doc{V: MustParse("1.36.3-eks-abc123")}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"v":"v1.36.3-eks-abc123","zero":""}`; string(b) != want {
		t.Errorf("json = %s, want %s", b, want)
	}
	var out doc
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if out.V.String() != in.V.String() || !out.Zero.IsZero() {
		t.Errorf("round trip = %+v, want %+v", out, in)
	}
	if err := json.Unmarshal([]byte(`{"v":"v1.36.3 "}`), &out); !errors.Is(err, ErrInvalidVersion) {
		t.Errorf("unmarshal of a bad version: err = %v, want ErrInvalidVersion", err)
	}
}

func TestMinorVersion(t *testing.T) {
	m := MinorVersion(1, 36)
	if !m.IsMinorOnly() || m.String() != "v1.36" || m.Compare(MustParse("1.36")) != 0 {
		t.Errorf("MinorVersion(1, 36) = %s (minor-only %v)", m, m.IsMinorOnly())
	}
	if got := MustParse("v1.36.3+k3s1").AsMinor(); got.String() != "v1.36" {
		t.Errorf("AsMinor = %s, want v1.36", got)
	}
	if got := m.Compare(MustParse("v1.36.0-rc.1")); got != 1 {
		t.Errorf("MinorVersion(1,36).Compare(v1.36.0-rc.1) = %d, want 1 (same as a parsed 1.36)", got)
	}
}

// FuzzParse: Parse never panics, and whatever it accepts survives
// String → Parse unchanged.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"v1.36.3", "1.36", "1.36.3-eks-abc123", "v1.36.3+k3s1", "v1.36.3-gke.1200",
		"v1.37.0-rc.1", "v1.37.0-alpha.2.120+abc", "v1.37.0-rc.1-eks-1", "v1.37.0-rc1+k3s1",
		"", "v", "1.", "1.36.", "01.2.3", "1.2.3.4", "v1.36.3-", "1.4294967296.0", "v1.36.3-beta.01",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidVersion) {
				t.Fatalf("Parse(%q) error %v does not wrap ErrInvalidVersion", s, err)
			}
			return
		}
		again, err := Parse(v.String())
		if err != nil {
			t.Fatalf("Parse(%q) = %s, which does not parse: %v", s, v, err)
		}
		if again.String() != v.String() || again.Compare(v) != 0 ||
			again.Distribution() != v.Distribution() || again.PreRelease() != v.PreRelease() ||
			again.IsMinorOnly() != v.IsMinorOnly() {
			t.Fatalf("round trip of %q: %s became %s", s, v, again)
		}
		if v.Major() != 1 {
			t.Fatalf("Parse(%q) accepted major %d", s, v.Major())
		}
		b, err := v.MarshalText()
		if err != nil || string(b) != v.String() {
			t.Fatalf("MarshalText(%s) = %q, %v", v, b, err)
		}
	})
}
