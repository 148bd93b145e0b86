package deprecation

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// DeprecatedAPIsMetric is the stable kube-apiserver gauge, set to 1 for every
// deprecated group/version/resource/subresource a client has requested since
// the apiserver started. See
// https://kubernetes.io/blog/2020/09/03/warnings/#deprecation-warnings.
const DeprecatedAPIsMetric = "apiserver_requested_deprecated_apis"

// ScanMetrics reads the kube-apiserver's /metrics text and returns a Usage for
// every deprecated API that has been requested, using the built-in table.
func ScanMetrics(r io.Reader) ([]Usage, error) { return Builtin().ScanMetrics(r) }

// ScanMetrics reads the kube-apiserver's /metrics text (Prometheus text
// format) and returns a Usage for every series of DeprecatedAPIsMetric whose
// value is 1. The metric names a resource, not a kind: the table maps it back.
// A resource the table does not know (a deprecated CRD version, an API newer
// than the table) still yields a Usage, with an entry built from the metric's
// own labels (Basis "metric", no Kind).
//
// The gauge is per apiserver instance and resets when it restarts, so callers
// should read every apiserver and treat an empty result as "nothing seen since
// start", not "nothing uses deprecated APIs".
func (t *Table) ScanMetrics(r io.Reader) ([]Usage, error) {
	// Only the lines of our metric go to the parser. A full /metrics page has
	// thousands of series, and one line the parser dislikes anywhere in it
	// (a newer exposition feature, a truncated read) would otherwise lose the
	// answer for the one metric we need.
	var kept bytes.Buffer
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 && isDeprecatedAPIsLine(line) {
			kept.Write(line)
			if line[len(line)-1] != '\n' {
				kept.WriteByte('\n')
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading apiserver metrics: %w", err)
		}
	}
	if kept.Len() == 0 {
		return nil, nil
	}

	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(&kept)
	if err != nil {
		return nil, fmt.Errorf("parsing %s from apiserver metrics: %w", DeprecatedAPIsMetric, err)
	}
	family, ok := families[DeprecatedAPIsMetric]
	if !ok {
		return nil, nil
	}

	var usages []Usage
	var errs []error
	for _, m := range family.GetMetric() {
		// The apiserver declares the gauge; a page without TYPE lines parses it
		// as untyped. Any other value than 1 is not a "requested" mark.
		value := m.GetGauge().GetValue()
		if m.GetGauge() == nil {
			value = m.GetUntyped().GetValue()
		}
		if value != 1 {
			continue
		}
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		group, version, resource, sub := labels["group"], labels["version"], labels["resource"], labels["subresource"]
		if version == "" || resource == "" {
			errs = append(errs, fmt.Errorf("%s series %v has no version or resource", DeprecatedAPIsMetric, labels))
			continue
		}
		e, ok := t.LookupResource(group, version, resource, sub)
		if !ok {
			removed, err := parseMinor(labels["removed_release"])
			if err != nil {
				errs = append(errs, fmt.Errorf("%s series for %s/%s/%s: removed_release: %w", DeprecatedAPIsMetric, group, version, resource, err))
			}
			e = Entry{Group: group, Version: version, Resource: resource, Subresource: sub, RemovedIn: removed, Basis: BasisMetric}
		}
		usages = append(usages, Usage{
			Entry:  e,
			Source: SourceMetric,
			Object: ObjectRef{Kind: e.Kind},
			Where:  Location{Resource: e.APIVersion() + "/" + resource, Subresource: sub},
		})
	}
	slices.SortFunc(usages, func(a, b Usage) int {
		if c := compareEntries(a.Entry, b.Entry); c != 0 {
			return c
		}
		if c := strings.Compare(a.Where.Resource, b.Where.Resource); c != 0 {
			return c
		}
		return strings.Compare(a.Where.Subresource, b.Where.Subresource)
	})
	return usages, errors.Join(errs...)
}

// isDeprecatedAPIsLine keeps the samples and the HELP/TYPE comments of
// DeprecatedAPIsMetric.
func isDeprecatedAPIsLine(line []byte) bool {
	s := strings.TrimLeft(string(line), " \t")
	if rest, ok := strings.CutPrefix(s, "#"); ok {
		f := strings.Fields(rest)
		return len(f) >= 2 && (f[0] == "HELP" || f[0] == "TYPE") && f[1] == DeprecatedAPIsMetric
	}
	rest, ok := strings.CutPrefix(s, DeprecatedAPIsMetric)
	return ok && rest != "" && (rest[0] == '{' || rest[0] == ' ' || rest[0] == '\t')
}
