package deprecation

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// HelmRelease is the part of a Helm 3 release record this package reads.
type HelmRelease struct {
	Name         string
	Namespace    string
	Revision     int    // Helm's "version"
	Status       string // info.status: deployed, superseded, failed, pending-upgrade, ...
	ChartName    string
	ChartVersion string
	Manifest     string // the rendered objects, multi-document YAML
}

// helmReleaseJSON mirrors the fields of helm.sh/helm/v3/pkg/release.Release
// that HelmRelease keeps.
type helmReleaseJSON struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	Version   int    `json:"version"`
	Manifest  string `json:"manifest"`
	Info      struct {
		Status string `json:"status"`
	} `json:"info"`
	Chart struct {
		Metadata struct {
			Name    string `json:"name"`
			Version string `json:"version"`
		} `json:"metadata"`
	} `json:"chart"`
}

var gzipMagic = []byte{0x1f, 0x8b, 0x08}

// maxReleaseJSON bounds the decompressed record. Kubernetes caps a Secret at
// 1 MiB; gzip rarely shrinks YAML more than 20-fold, so 64 MiB is generous
// while stopping a crafted record from exhausting memory.
const maxReleaseJSON = 64 << 20

// DecodeHelmRelease decodes the value of a Helm 3 release Secret's "release"
// key (or ConfigMap's, for the configmap storage driver), after the client has
// removed the Secret's own base64: base64 of gzip of the release JSON, exactly
// as helm's storage driver encodes it (pkg/storage/driver/util.go). Like helm,
// it also accepts uncompressed JSON inside the base64. A value that still
// carries the Secret's base64 layer (copied from `kubectl get -o json`) is
// unwrapped too: the inner text is base64 again, never gzip or JSON.
func DecodeHelmRelease(data []byte) (*HelmRelease, error) {
	raw, err := decodeBase64(data)
	if err != nil {
		return nil, fmt.Errorf("decoding helm release: base64: %w", err)
	}
	if !bytes.HasPrefix(raw, gzipMagic) && !startsJSON(raw) {
		if inner, err := decodeBase64(raw); err == nil {
			raw = inner
		}
	}
	if bytes.HasPrefix(raw, gzipMagic) {
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("decoding helm release: gzip: %w", err)
		}
		raw, err = io.ReadAll(io.LimitReader(zr, maxReleaseJSON+1))
		if err != nil {
			return nil, fmt.Errorf("decoding helm release: gzip: %w", err)
		}
		if len(raw) > maxReleaseJSON {
			return nil, fmt.Errorf("decoding helm release: more than %d bytes once decompressed", maxReleaseJSON)
		}
	}
	var r helmReleaseJSON
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("decoding helm release: JSON: %w", err)
	}
	if r.Name == "" {
		return nil, errors.New("decoding helm release: the record has no release name")
	}
	return &HelmRelease{
		Name:         r.Name,
		Namespace:    r.Namespace,
		Revision:     r.Version,
		Status:       r.Info.Status,
		ChartName:    r.Chart.Metadata.Name,
		ChartVersion: r.Chart.Metadata.Version,
		Manifest:     r.Manifest,
	}, nil
}

func decodeBase64(b []byte) ([]byte, error) {
	s := strings.TrimSpace(string(b))
	return base64.StdEncoding.DecodeString(s)
}

func startsJSON(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) > 0 && b[0] == '{'
}

// ScanHelmRelease scans one decoded release's manifest with the built-in table.
func ScanHelmRelease(rel *HelmRelease) ([]Usage, error) { return Builtin().ScanHelmRelease(rel) }

// ScanHelmRelease scans the manifest stored in rel. Objects without a
// namespace in the manifest keep an empty Object.Namespace: Helm puts the
// namespaced ones in Where.ReleaseNamespace, but the table cannot tell which
// kinds are cluster-scoped.
func (t *Table) ScanHelmRelease(rel *HelmRelease) ([]Usage, error) {
	what := fmt.Sprintf("helm release %s/%s revision %d", rel.Namespace, rel.Name, rel.Revision)
	return t.scanDocuments([]byte(rel.Manifest), func(doc int, template string) (Usage, string) {
		return Usage{
			Source: SourceHelmRelease,
			Where: Location{
				Release:          rel.Name,
				Revision:         rel.Revision,
				Chart:            rel.ChartName,
				ChartVersion:     rel.ChartVersion,
				ReleaseNamespace: rel.Namespace,
				Document:         doc,
				Template:         template,
			},
		}, what
	})
}

// HelmSecret is a Helm 3 release record as stored in the cluster: a Secret of
// type helm.sh/release.v1 named sh.helm.release.v1.NAME.vREVISION (or a
// ConfigMap with the same name and labels). Data is the "release" key's value,
// with the Secret's own base64 already removed (as client-go returns it).
type HelmSecret struct {
	Namespace string
	Name      string
	Labels    map[string]string
	Data      []byte
}

// HelmStatusDeployed is the status of the revision Helm considers live.
const HelmStatusDeployed = "deployed"

// ScanHelmReleases scans Helm release records with the built-in table.
func ScanHelmReleases(secrets []HelmSecret) ([]Usage, error) {
	return Builtin().ScanHelmReleases(secrets)
}

// ScanHelmReleases picks, for each release (namespace and the "name" label),
// the newest revision whose status is deployed, and scans its manifest. That
// is the revision `helm upgrade` reads back and diffs against: when it names an
// API the upgraded cluster no longer serves, the upgrade fails with "unable to
// build kubernetes objects from current release manifest" until the stored
// manifest is rewritten (e.g. by the helm-mapkubeapis plugin). Older revisions
// are history and only matter to `helm rollback`.
//
// The release name, revision and status come from the labels Helm sets
// (owner=helm, name, version, status); records without them, or without
// owner=helm and not named sh.helm.release.v1.*, are skipped. A release with
// no deployed revision is skipped: nothing of it is live. A record that does
// not decode yields an error naming the Secret, and the others are still
// scanned.
func (t *Table) ScanHelmReleases(secrets []HelmSecret) ([]Usage, error) {
	type releaseKey struct{ namespace, name string }
	newest := map[releaseKey]int{} // index into secrets
	newestRev := map[releaseKey]int{}
	var errs []error
	for i, s := range secrets {
		if s.Labels["owner"] != "helm" && !strings.HasPrefix(s.Name, "sh.helm.release.v1.") {
			continue
		}
		name := s.Labels["name"]
		if name == "" || s.Labels["status"] != HelmStatusDeployed {
			continue
		}
		rev, err := strconv.Atoi(s.Labels["version"])
		if err != nil {
			errs = append(errs, fmt.Errorf("helm release secret %s/%s: label version=%q is not a revision number", s.Namespace, s.Name, s.Labels["version"]))
			continue
		}
		k := releaseKey{s.Namespace, name}
		if cur, seen := newestRev[k]; !seen || rev > cur {
			newest[k], newestRev[k] = i, rev
		}
	}

	keys := make([]releaseKey, 0, len(newest))
	for k := range newest {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b releaseKey) int {
		return cmp.Or(strings.Compare(a.namespace, b.namespace), strings.Compare(a.name, b.name))
	})

	var usages []Usage
	for _, k := range keys {
		s := secrets[newest[k]]
		rel, err := DecodeHelmRelease(s.Data)
		if err != nil {
			errs = append(errs, fmt.Errorf("helm release secret %s/%s: %w", s.Namespace, s.Name, err))
			continue
		}
		// The Secret's namespace is where Helm keeps the record; older records
		// may lack the namespace field in the JSON.
		if rel.Namespace == "" {
			rel.Namespace = s.Namespace
		}
		found, err := t.ScanHelmRelease(rel)
		usages = append(usages, found...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return usages, errors.Join(errs...)
}
