package deprecation

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"

	"sigs.k8s.io/yaml"
)

//go:embed apis.yaml
var builtinAPIs []byte

// Minor is a Kubernetes 1.x minor release (25 means 1.25). Zero means unknown
// or, for a removal, none scheduled. In apis.yaml and in JSON it is written as
// the string "1.25".
type Minor int

// String renders the release as "1.25", or "" for zero.
func (m Minor) String() string {
	if m == 0 {
		return ""
	}
	return "1." + strconv.Itoa(int(m))
}

// MarshalJSON writes the release as "1.25" (or "").
func (m Minor) MarshalJSON() ([]byte, error) {
	return json.Marshal(m.String())
}

// UnmarshalJSON reads "1.25" (or ""). A bare number is refused because YAML
// reads an unquoted 1.20 as the number 1.2.
func (m *Minor) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("release %s must be a quoted string like \"1.25\": %w", b, err)
	}
	v, err := parseMinor(s)
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// parseMinor reads "1.25" (an optional leading "v" and patch are allowed, as
// the apiserver's removed_release label and version strings use them) into 25.
func parseMinor(s string) (Minor, error) {
	if s == "" {
		return 0, nil
	}
	t := strings.TrimPrefix(s, "v")
	parts := strings.Split(t, ".")
	if len(parts) < 2 || len(parts) > 3 || parts[0] != "1" {
		return 0, fmt.Errorf("release %q is not of the form 1.N", s)
	}
	n, err := strconv.Atoi(parts[1])
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("release %q is not of the form 1.N", s)
	}
	return Minor(n), nil
}

// Basis values say where an entry of the table comes from.
const (
	// BasisGuide: the Deprecated API Migration Guide lists the removal.
	BasisGuide = "guide"
	// BasisLifecycle: the Kubernetes source's prerelease-lifecycle annotations
	// schedule the removal; the apiserver applies it by itself.
	BasisLifecycle = "lifecycle"
	// BasisDeprecation: a GA API marked deprecated, with no removal scheduled.
	BasisDeprecation = "deprecation"
	// BasisMetric: not in the table; built from what the apiserver's metric said.
	BasisMetric = "metric"
)

// NoReplacement is Entry.Replacement for an API that goes away without a
// successor (PodSecurityPolicy).
const NoReplacement = "none"

// Entry is one API group/version/kind that is removed or deprecated.
type Entry struct {
	Group       string `json:"group"` // "" is the core group
	Version     string `json:"version"`
	Kind        string `json:"kind"`
	Resource    string `json:"resource"`              // plural, as in URLs and metrics
	Subresource string `json:"subresource,omitempty"` // e.g. "eviction" for Eviction

	DeprecatedIn Minor `json:"deprecatedIn,omitempty"` // 0: not recorded
	RemovedIn    Minor `json:"removedIn,omitempty"`    // 0: no removal scheduled

	// Replacement is the apiVersion to migrate to before upgrading to
	// RemovedIn, or NoReplacement. It may itself be in the table (flowcontrol
	// went through three betas); Table.FinalReplacement follows the chain.
	Replacement      string `json:"replacement"`
	ReplacementKind  string `json:"replacementKind,omitempty"`  // only when the kind changes
	ReplacementSince Minor  `json:"replacementSince,omitempty"` // first release serving it

	Changes string `json:"changes,omitempty"` // what the migration changes, for people
	Basis   string `json:"basis"`
}

// APIVersion is the entry's apiVersion as written in manifests: "v1" for the
// core group, "group/version" otherwise.
func (e Entry) APIVersion() string {
	if e.Group == "" {
		return e.Version
	}
	return e.Group + "/" + e.Version
}

// String names the entry as kubectl's warnings do: "policy/v1beta1 PodDisruptionBudget".
func (e Entry) String() string {
	kind := e.Kind
	if kind == "" {
		kind = e.Resource
		if e.Subresource != "" {
			kind += "/" + e.Subresource
		}
	}
	return e.APIVersion() + " " + kind
}

// RemovedBy reports whether a cluster at minor no longer serves the entry.
func (e Entry) RemovedBy(minor int) bool {
	return e.RemovedIn != 0 && minor >= int(e.RemovedIn)
}

// DeprecatedBy reports whether a cluster at minor warns about the entry.
func (e Entry) DeprecatedBy(minor int) bool {
	return e.DeprecatedIn != 0 && minor >= int(e.DeprecatedIn)
}

// ReplacementAPI is Replacement and the kind it serves ("apps/v1 Deployment"),
// or "none".
func (e Entry) ReplacementAPI() string {
	if e.Replacement == NoReplacement || e.Replacement == "" {
		return NoReplacement
	}
	kind := e.ReplacementKind
	if kind == "" {
		kind = e.Kind
	}
	return e.Replacement + " " + kind
}

type gvk struct{ apiVersion, kind string }
type gvr struct{ group, version, resource, subresource string }

// Table is a loaded set of entries with the release it was reviewed through.
// A Table is never modified after Load, so one value may be shared freely.
type Table struct {
	// ReviewedThrough is the newest release whose removals the table is sure
	// of; entries removed later than this are scheduled, not done.
	ReviewedThrough Minor

	entries    []Entry
	byKind     map[gvk]int
	byResource map[gvr]int
}

type tableFile struct {
	ReviewedThrough Minor   `json:"reviewedThrough"`
	Entries         []Entry `json:"entries"`
}

var builtin = sync.OnceValue(func() *Table {
	t, err := Load(bytes.NewReader(builtinAPIs))
	if err != nil {
		// The file is embedded and covered by tests: this is a build defect.
		panic(fmt.Sprintf("deprecation: embedded apis.yaml: %v", err))
	}
	return t
})

// Builtin returns the table embedded from apis.yaml. (It is not called Table
// because that is the type's name.)
func Builtin() *Table { return builtin() }

// Load reads a table in the apis.yaml format (YAML or JSON) and checks it: every
// entry names a version, kind and resource, no apiVersion/kind or resource
// appears twice, a deprecation does not come after its removal, and a
// replacement is named.
func Load(r io.Reader) (*Table, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("reading API table: %w", err)
	}
	var f tableFile
	if err := yaml.UnmarshalStrict(data, &f); err != nil {
		return nil, fmt.Errorf("parsing API table: %w", err)
	}
	if f.ReviewedThrough == 0 {
		return nil, errors.New("API table: reviewedThrough is missing")
	}
	t := &Table{
		ReviewedThrough: f.ReviewedThrough,
		entries:         f.Entries,
		byKind:          make(map[gvk]int, len(f.Entries)),
		byResource:      make(map[gvr]int, len(f.Entries)),
	}
	var errs []error
	for i, e := range f.Entries {
		if err := checkEntry(e); err != nil {
			errs = append(errs, fmt.Errorf("API table entry %d (%s): %w", i+1, e, err))
			continue
		}
		k := gvk{e.APIVersion(), e.Kind}
		if j, dup := t.byKind[k]; dup {
			errs = append(errs, fmt.Errorf("API table entry %d (%s): same apiVersion and kind as entry %d", i+1, e, j+1))
			continue
		}
		t.byKind[k] = i
		r := gvr{e.Group, e.Version, e.Resource, e.Subresource}
		if j, dup := t.byResource[r]; dup {
			errs = append(errs, fmt.Errorf("API table entry %d (%s): same resource as entry %d", i+1, e, j+1))
			continue
		}
		t.byResource[r] = i
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return t, nil
}

func checkEntry(e Entry) error {
	switch {
	case e.Version == "" || e.Kind == "" || e.Resource == "":
		return errors.New("version, kind and resource are required")
	case strings.Contains(e.Group, "/") || strings.Contains(e.Version, "/"):
		return errors.New("group and version must not contain '/'")
	case e.Resource != strings.ToLower(e.Resource):
		return fmt.Errorf("resource %q must be lower case", e.Resource)
	case e.Replacement == "":
		return fmt.Errorf("replacement is required (an apiVersion, or %q)", NoReplacement)
	case e.RemovedIn == 0 && e.DeprecatedIn == 0:
		return errors.New("neither deprecatedIn nor removedIn is set")
	case e.RemovedIn != 0 && e.DeprecatedIn > e.RemovedIn:
		return fmt.Errorf("deprecated in %s after its removal in %s", e.DeprecatedIn, e.RemovedIn)
	case e.Replacement != NoReplacement && e.ReplacementSince != 0 && e.RemovedIn != 0 && e.ReplacementSince >= e.RemovedIn:
		return fmt.Errorf("replacement %s first served in %s, not before the removal in %s", e.Replacement, e.ReplacementSince, e.RemovedIn)
	}
	switch e.Basis {
	case BasisGuide, BasisLifecycle, BasisDeprecation:
	default:
		return fmt.Errorf("basis %q is not one of %s, %s, %s", e.Basis, BasisGuide, BasisLifecycle, BasisDeprecation)
	}
	return nil
}

// Entries returns a copy of every entry, in file order.
func (t *Table) Entries() []Entry { return slices.Clone(t.entries) }

// Lookup finds the entry for an apiVersion ("policy/v1beta1", or "v1" for the
// core group) and kind, exactly as written in a manifest.
func (t *Table) Lookup(apiVersion, kind string) (Entry, bool) {
	i, ok := t.byKind[gvk{apiVersion, kind}]
	if !ok {
		return Entry{}, false
	}
	return t.entries[i], true
}

// LookupResource finds the entry for a group, version and resource as the
// apiserver names them in URLs and metrics. A subresource with no entry of its
// own (deployments/scale) falls back to its resource's entry.
func (t *Table) LookupResource(group, version, resource, subresource string) (Entry, bool) {
	if i, ok := t.byResource[gvr{group, version, resource, subresource}]; ok {
		return t.entries[i], true
	}
	if subresource != "" {
		if i, ok := t.byResource[gvr{group, version, resource, ""}]; ok {
			return t.entries[i], true
		}
	}
	return Entry{}, false
}

// RemovedBetween returns the entries removed by an upgrade from fromMinor to
// toMinor: those with fromMinor < RemovedIn <= toMinor, ordered by release,
// then group, version and kind.
func (t *Table) RemovedBetween(fromMinor, toMinor int) []Entry {
	var out []Entry
	for _, e := range t.entries {
		if e.RemovedIn != 0 && int(e.RemovedIn) > fromMinor && int(e.RemovedIn) <= toMinor {
			out = append(out, e)
		}
	}
	slices.SortStableFunc(out, compareEntries)
	return out
}

func compareEntries(a, b Entry) int {
	if a.RemovedIn != b.RemovedIn {
		return int(a.RemovedIn) - int(b.RemovedIn)
	}
	if c := strings.Compare(a.Group, b.Group); c != 0 {
		return c
	}
	if c := strings.Compare(a.Version, b.Version); c != 0 {
		return c
	}
	return strings.Compare(a.Kind, b.Kind)
}

// FinalReplacement follows Replacement through the table until it reaches an
// apiVersion that is not itself removed or deprecated, and returns that
// apiVersion ("none" if the chain ends without a successor). For
// flowcontrol.apiserver.k8s.io/v1beta1 it answers .../v1, where Replacement
// says v1beta2.
func (t *Table) FinalReplacement(e Entry) string {
	seen := map[gvk]bool{}
	for {
		if e.Replacement == "" || e.Replacement == NoReplacement {
			return NoReplacement
		}
		kind := e.ReplacementKind
		if kind == "" {
			kind = e.Kind
		}
		k := gvk{e.Replacement, kind}
		next, ok := t.Lookup(k.apiVersion, k.kind)
		// A GA API that is only deprecated (RemovedIn 0) is still a valid
		// destination; stop there rather than chase its suggestion.
		if !ok || next.RemovedIn == 0 || seen[k] {
			return e.Replacement
		}
		seen[k] = true
		e = next
	}
}
