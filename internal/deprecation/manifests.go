package deprecation

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// This file is the one place in the package that reads files.

// ScanManifests scans manifest files and directories with the built-in table.
func ScanManifests(paths ...string) ([]Usage, error) { return Builtin().ScanManifests(paths...) }

// ScanManifests reads each path (a file, or a directory walked recursively for
// *.yaml, *.yml and *.json) and scans it with ScanManifestBytes. A file named
// directly is scanned whatever its extension. Directories whose names start
// with "." (.git) are not entered, and symbolic links to directories are not
// followed, so a walk cannot loop. Errors, from reading or parsing, name the
// file and do not stop the scan; they come back joined next to the usages.
func (t *Table) ScanManifests(paths ...string) ([]Usage, error) {
	var usages []Usage
	var errs []error
	scan := func(path string) {
		data, err := os.ReadFile(path)
		if err != nil {
			errs = append(errs, fmt.Errorf("reading manifest %s: %w", path, err))
			return
		}
		found, err := t.ScanManifestBytes(path, data)
		usages = append(usages, found...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	for _, root := range paths {
		info, err := os.Stat(root)
		if err != nil {
			errs = append(errs, fmt.Errorf("reading manifests: %w", err))
			continue
		}
		if !info.IsDir() {
			scan(root)
			continue
		}
		err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				errs = append(errs, fmt.Errorf("reading manifests under %s: %w", root, err))
				if d != nil && d.IsDir() {
					return fs.SkipDir
				}
				return nil
			}
			if d.IsDir() {
				if path != root && strings.HasPrefix(d.Name(), ".") {
					return fs.SkipDir
				}
				return nil
			}
			if !d.Type().IsRegular() && d.Type()&fs.ModeSymlink == 0 {
				return nil
			}
			if isManifestName(d.Name()) {
				if d.Type()&fs.ModeSymlink != 0 {
					// A link to a file is scanned; a link to a directory is not.
					if fi, err := os.Stat(path); err != nil || fi.IsDir() {
						return nil
					}
				}
				scan(path)
			}
			return nil
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("walking %s: %w", root, err))
		}
	}
	return usages, errors.Join(errs...)
}

func isManifestName(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}
