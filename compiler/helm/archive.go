package helm

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"

	"helm.sh/helm/v3/pkg/chart/loader"
)

// readArchiveFile reads a chart archive into the files helm's loader takes,
// refusing anything unsafe, and returns the sha256 digest of the file.
func readArchiveFile(name string, lim archiveLimits) ([]*loader.BufferedFile, string, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	// The compressed file can be no larger than what it may decompress to;
	// reading it whole lets the digest cover every byte, trailing ones too.
	data, err := io.ReadAll(io.LimitReader(f, lim.maxTotal+1))
	if err != nil {
		return nil, "", err
	}
	if int64(len(data)) > lim.maxTotal {
		return nil, "", fmt.Errorf("archive is over %d bytes: %w", lim.maxTotal, ErrUnsafeArchive)
	}
	if !bytes.HasPrefix(data, []byte{0x1f, 0x8b}) {
		return nil, "", fmt.Errorf("not a directory or a gzip-compressed chart archive: %w", ErrNotChart)
	}
	sum := sha256.Sum256(data)

	r := archiveReader{lim: lim}
	files, err := r.read(bytes.NewReader(data), path.Base(name), 0)
	if err != nil {
		return nil, "", err
	}
	return files, "sha256:" + hex.EncodeToString(sum[:]), nil
}

// checkNestedArchives applies the archive rules to the subchart archives
// (charts/*.tgz) of a chart read from a directory, which helm would
// otherwise unpack with its own, laxer checks.
func checkNestedArchives(files []*loader.BufferedFile, lim archiveLimits) error {
	r := archiveReader{lim: lim}
	return r.nested(files, "", 0)
}

type archiveReader struct {
	lim     archiveLimits
	total   int64 // decompressed bytes so far, nested archives included
	entries int
}

var drivePath = regexp.MustCompile(`^[a-zA-Z]:`)

// read reads one gzip-compressed tar the way helm's loader.LoadArchiveFiles
// does (every entry under one top directory, which is stripped, "\" taken as
// a separator in archives made on Windows), but refuses what helm lets
// through: links, devices, "..", several top directories, duplicate names.
// where names the archive in errors.
func (r *archiveReader) read(in io.Reader, where string, depth int) ([]*loader.BufferedFile, error) {
	unsafe := func(format string, args ...any) error {
		return fmt.Errorf("%s: %s: %w", where, fmt.Sprintf(format, args...), ErrUnsafeArchive)
	}
	zr, err := gzip.NewReader(in)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	defer zr.Close()
	tr := tar.NewReader(zr)

	var (
		files []*loader.BufferedFile
		top   string
		seen  = map[string]bool{}
	)
	for {
		hd, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: reading tar: %w", where, err)
		}
		r.entries++
		if r.entries > r.lim.maxEntries {
			return nil, unsafe("more than %d entries", r.lim.maxEntries)
		}

		switch hd.Typeflag {
		case tar.TypeReg, tar.TypeDir:
		case tar.TypeXGlobalHeader:
			continue // e.g. the commit id git archive writes
		case tar.TypeSymlink:
			return nil, unsafe("entry %q is a symbolic link", hd.Name)
		case tar.TypeLink:
			return nil, unsafe("entry %q is a hard link", hd.Name)
		case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
			return nil, unsafe("entry %q is a device or pipe", hd.Name)
		default:
			return nil, unsafe("entry %q has unsupported type %q", hd.Name, hd.Typeflag)
		}

		name := hd.Name
		if strings.ContainsRune(name, 0) {
			return nil, unsafe("entry %q has a NUL byte in its name", name)
		}
		name = strings.ReplaceAll(name, `\`, "/")
		if strings.HasPrefix(name, "/") || drivePath.MatchString(name) {
			return nil, unsafe("entry %q has an absolute path", hd.Name)
		}
		parts := strings.Split(strings.TrimSuffix(name, "/"), "/")
		if slices.Contains(parts, "..") {
			return nil, unsafe("entry %q refers to a parent directory", hd.Name)
		}
		if top == "" {
			top = parts[0]
		} else if parts[0] != top {
			return nil, unsafe("entries in two top directories, %q and %q", top, parts[0])
		}
		rel := path.Clean(strings.Join(parts[1:], "/"))
		if hd.Typeflag == tar.TypeDir {
			continue
		}
		if len(parts) < 2 || rel == "." {
			return nil, unsafe("entry %q is not inside the chart directory", hd.Name)
		}
		if seen[rel] {
			return nil, unsafe("entry %q appears twice", hd.Name)
		}
		seen[rel] = true

		if hd.Size > r.lim.maxFile {
			return nil, unsafe("entry %q is %d bytes, over the %d byte limit for one file", hd.Name, hd.Size, r.lim.maxFile)
		}
		if r.total+hd.Size > r.lim.maxTotal {
			return nil, unsafe("decompresses to more than %d bytes", r.lim.maxTotal)
		}
		data, err := io.ReadAll(io.LimitReader(tr, hd.Size))
		if err != nil {
			return nil, fmt.Errorf("%s: reading %q: %w", where, hd.Name, err)
		}
		r.total += int64(len(data))
		files = append(files, &loader.BufferedFile{Name: rel, Data: data})
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s: no files in chart archive: %w", where, ErrNotChart)
	}
	if !seen["Chart.yaml"] {
		return nil, fmt.Errorf("%s: no Chart.yaml in %s/: %w", where, top, ErrNotChart)
	}
	if err := r.nested(files, where, depth); err != nil {
		return nil, err
	}
	return files, nil
}

// nested reads the subchart archives among files, to the depth limit.
func (r *archiveReader) nested(files []*loader.BufferedFile, where string, depth int) error {
	for _, f := range files {
		if path.Base(path.Dir(f.Name)) != "charts" || path.Ext(f.Name) != ".tgz" {
			continue
		}
		if depth+1 > r.lim.maxDepth {
			return fmt.Errorf("%s: subchart archives nested more than %d deep: %w", where, r.lim.maxDepth, ErrUnsafeArchive)
		}
		w := f.Name
		if where != "" {
			w = where + ": " + f.Name
		}
		if _, err := r.read(bytes.NewReader(f.Data), w, depth+1); err != nil {
			return err
		}
	}
	return nil
}
