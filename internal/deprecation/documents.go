package deprecation

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"sigs.k8s.io/yaml"
)

// ScanManifestBytes scans one manifest file's content against the built-in table.
func ScanManifestBytes(name string, data []byte) ([]Usage, error) {
	return Builtin().ScanManifestBytes(name, data)
}

// ScanManifestBytes scans data, one file's worth of YAML or JSON named name,
// and returns a Usage (Source manifest, Where.File name) for every object whose
// apiVersion/kind is in the table.
//
// The content may hold many YAML documents, as `helm template` writes them:
// "---" separators, "# Source:" comments (kept as Where.Template), empty
// documents, and List kinds whose items are scanned one by one. Documents that
// are YAML but not Kubernetes objects (values files, Chart.yaml) are skipped.
// A document that cannot be parsed yields an error naming the file and the
// document; the other documents are still scanned, and all such errors are
// returned joined, next to the usages found.
func (t *Table) ScanManifestBytes(name string, data []byte) ([]Usage, error) {
	return t.scanDocuments(data, func(doc int, template string) (Usage, string) {
		return Usage{
			Source: SourceManifest,
			Where:  Location{File: name, Document: doc, Template: template},
		}, name
	})
}

// scanDocuments splits data into YAML documents and scans each. base builds
// the Usage template for a document and says how errors name the content.
func (t *Table) scanDocuments(data []byte, base func(doc int, template string) (Usage, string)) ([]Usage, error) {
	var usages []Usage
	var errs []error
	for i, d := range splitDocuments(data) {
		doc := d.body
		proto, what := base(i+1, sourceComment(doc))
		var obj any
		js, err := yaml.YAMLToJSON(doc)
		if err == nil {
			err = json.Unmarshal(js, &obj)
		}
		if err != nil {
			hint := ""
			if bytes.Contains(doc, []byte("{{")) {
				hint = " (an unrendered Helm template? scan the output of helm template instead)"
			}
			// The parser counts lines from the document's start; say where
			// that is in the file.
			errs = append(errs, fmt.Errorf("%s document %d (from line %d): not valid YAML%s: %w", what, i+1, d.line, hint, err))
			continue
		}
		found, err := t.scanObject(obj, proto, "")
		usages = append(usages, found...)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s document %d: %w", what, i+1, err))
		}
	}
	return usages, errors.Join(errs...)
}

// maxListDepth bounds List-in-List recursion; real manifests nest one level.
const maxListDepth = 8

// scanObject checks one decoded document (or List item) and, for a List,
// its items. item is the path of obj inside the document ("" at the top).
func (t *Table) scanObject(obj any, proto Usage, item string) ([]Usage, error) {
	m, ok := obj.(map[string]any)
	if !ok {
		return nil, nil // empty document, or YAML that is not an object
	}
	apiVersion, err := stringField(m, "apiVersion")
	if err != nil {
		return nil, atItem(item, err)
	}
	kind, err := stringField(m, "kind")
	if err != nil {
		return nil, atItem(item, err)
	}
	var usages []Usage
	if e, ok := t.Lookup(apiVersion, kind); ok {
		u := proto
		u.Entry = e
		u.Object = ObjectRef{Kind: kind}
		if meta, ok := m["metadata"].(map[string]any); ok {
			u.Object.Name, _ = meta["name"].(string)
			u.Object.Namespace, _ = meta["namespace"].(string)
		}
		u.Where.Item = item
		usages = append(usages, u)
	}
	items, isList := m["items"].([]any)
	if !isList || !strings.HasSuffix(kind, "List") {
		return usages, nil
	}
	if strings.Count(item, "items[") >= maxListDepth {
		return usages, atItem(item, fmt.Errorf("Lists nested deeper than %d", maxListDepth))
	}
	var errs []error
	for j, it := range items {
		found, err := t.scanObject(it, proto, fmt.Sprintf("%sitems[%d]", prefixDot(item), j))
		usages = append(usages, found...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return usages, errors.Join(errs...)
}

func prefixDot(item string) string {
	if item == "" {
		return ""
	}
	return item + "."
}

func atItem(item string, err error) error {
	if item == "" {
		return err
	}
	return fmt.Errorf("%s: %w", item, err)
}

// stringField returns m[key] as a string; absent is "", any other type is an error.
func stringField(m map[string]any, key string) (string, error) {
	v, ok := m[key]
	if !ok || v == nil {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%s is a %T, not a string", key, v)
	}
	return s, nil
}

// splitDocuments cuts a YAML stream at "---" document markers (and "..."
// end markers) at the start of a line. Indented "---" inside a block scalar is
// content and is left alone. A marker followed by content ("--- {a: 1}")
// starts the next document with that content. Comments before the first
// marker (a licence header) or after a "..." are not a document, so the
// document numbers match what a person counts in the file; empty documents
// between markers do count.
func splitDocuments(data []byte) []document {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // UTF-8 byte order mark
	var docs []document
	var cur bytes.Buffer
	between := true // before the first marker, or after "..."
	lineNo, start := 0, 1
	flush := func() {
		docs = append(docs, document{body: bytes.Clone(cur.Bytes()), line: start})
		cur.Reset()
	}
	for len(data) > 0 {
		lineNo++
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i+1], data[i+1:]
		} else {
			data = nil
		}
		body := bytes.TrimRight(line, " \t\r\n")
		switch {
		case bytes.Equal(body, []byte("---")) || bytes.HasPrefix(body, []byte("--- ")) || bytes.HasPrefix(body, []byte("---\t")):
			if between && blankOrComments(cur.Bytes()) {
				cur.Reset()
			} else {
				flush()
			}
			between = false
			start = lineNo + 1
			rest := bytes.TrimLeft(body[3:], " \t")
			if len(rest) > 0 && rest[0] != '#' {
				cur.Write(rest)
				cur.WriteByte('\n')
				start = lineNo
			}
		case bytes.Equal(body, []byte("...")):
			flush()
			between = true
			start = lineNo + 1
		default:
			cur.Write(line)
		}
	}
	if between && !blankOrComments(cur.Bytes()) || !between && cur.Len() > 0 {
		flush()
	}
	return docs
}

// document is one YAML document of a stream and the file line it starts on.
type document struct {
	body []byte
	line int
}

// blankOrComments reports whether b holds nothing but blank and comment lines.
func blankOrComments(b []byte) bool {
	for _, line := range bytes.Split(b, []byte("\n")) {
		s := bytes.TrimSpace(line)
		if len(s) > 0 && s[0] != '#' {
			return false
		}
	}
	return true
}

// sourceComment returns the path of the "# Source: chart/templates/x.yaml"
// comment Helm writes at the top of each rendered document, or "".
func sourceComment(doc []byte) string {
	for _, line := range bytes.Split(doc, []byte("\n")) {
		s := strings.TrimSpace(string(line))
		if s == "" {
			continue
		}
		if rest, ok := strings.CutPrefix(s, "# Source:"); ok {
			return strings.TrimSpace(rest)
		}
		if !strings.HasPrefix(s, "#") {
			return "" // the comment only counts above the object
		}
	}
	return ""
}
