package bundles

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Limits bound what reading an archive may cost. A zero field takes its
// value from DefaultLimits, so Limits{} is DefaultLimits.
type Limits struct {
	// MaxFiles bounds the number of regular files, and separately the
	// number of directories.
	MaxFiles int
	// MaxFileSize bounds the size of one file in bytes.
	MaxFileSize int64
	// MaxTotalSize bounds the sum of the file sizes in bytes. The
	// decompressed stream as a whole may exceed it only by a fixed
	// allowance for tar headers (see headerAllowance).
	MaxTotalSize int64
}

// DefaultLimits match what Argo CD extracts at most (1 GiB in total) and
// are far above what a compiled platform needs.
var DefaultLimits = Limits{
	MaxFiles:     10_000,
	MaxFileSize:  64 << 20, // 64 MiB
	MaxTotalSize: 1 << 30,  // 1 GiB
}

func (l Limits) withDefaults() (Limits, error) {
	if l.MaxFiles < 0 || l.MaxFileSize < 0 || l.MaxTotalSize < 0 {
		return l, fmt.Errorf("invalid limits %+v: negative value", l)
	}
	if l.MaxFiles == 0 {
		l.MaxFiles = DefaultLimits.MaxFiles
	}
	if l.MaxFileSize == 0 {
		l.MaxFileSize = DefaultLimits.MaxFileSize
	}
	if l.MaxTotalSize == 0 {
		l.MaxTotalSize = DefaultLimits.MaxTotalSize
	}
	return l, nil
}

// headerAllowance is how many decompressed bytes beyond MaxTotalSize an
// archive may use for headers, padding and trailing zeros: 8 KiB for each
// allowed entry (a header block, a PAX header with a long path, padding)
// plus 1 MiB. Counting every decompressed byte against it stops archives
// that never reach a file body, such as endless chains of PAX headers.
func (l Limits) headerAllowance() int64 {
	return int64(2*l.MaxFiles+1)*(8<<10) + 1<<20
}

// ReadTree reads a gzip-compressed tar into a Tree, with the same checks as
// Untar. Explicit directory entries are checked and then dropped, since a
// Tree implies its directories.
func ReadTree(r io.Reader, lim Limits) (*Tree, error) {
	t := NewTree()
	err := readEntries(r, lim, func(name string, isDir bool, size int64, body io.Reader) error {
		if isDir {
			return nil
		}
		data := make([]byte, size)
		if _, err := io.ReadFull(body, data); err != nil {
			return fmt.Errorf("reading %s from tar: %w", name, err)
		}
		// readEntries has already rejected every path and conflict Add
		// would.
		return t.Add(name, data)
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// CheckArchive reads a gzip-compressed tar with the checks of ReadTree and
// Untar, keeping nothing: whether pull would unpack it, in constant
// memory whatever its size.
func CheckArchive(r io.Reader, lim Limits) error {
	return readEntries(r, lim, func(name string, isDir bool, _ int64, body io.Reader) error {
		if isDir {
			return nil
		}
		if _, err := io.Copy(io.Discard, body); err != nil {
			return fmt.Errorf("reading %s from tar: %w", name, err)
		}
		return nil
	})
}

// Untar extracts a gzip-compressed tar into dir. It accepts regular files
// and directories only, with clean relative paths, and refuses anything
// else with an *UnsafeEntryError: "..", absolute paths, backslashes,
// symlinks, hard links, devices, fifos, duplicates. It counts the bytes it
// actually decompresses against lim and fails with ErrLimitExceeded beyond.
//
// dir must not exist or be an empty directory; its parent must exist.
// Untar extracts into a new directory beside dir and renames it into place
// at the end, so on failure dir is left as it was and nothing else remains.
// Files get mode 0644 and directories 0755, less the umask.
func Untar(r io.Reader, dir string, lim Limits) error {
	dir = filepath.Clean(dir)
	if err := checkEmptyDir(dir); err != nil {
		return err
	}
	tmp, err := mkdirTemp(dir, "untar", dirMode)
	if err != nil {
		return err
	}
	done := false
	defer func() {
		if !done {
			_ = os.RemoveAll(tmp)
		}
	}()
	root, err := os.OpenRoot(tmp)
	if err != nil {
		return err
	}
	err = readEntries(r, lim, func(name string, isDir bool, _ int64, body io.Reader) error {
		if isDir {
			return root.MkdirAll(filepath.FromSlash(name), dirMode)
		}
		return extractFile(root, name, body)
	})
	if cerr := root.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("extracting into %s: %w", dir, err)
	}
	if err := replaceDir(tmp, dir, checkEmptyDir); err != nil {
		return err
	}
	done = true
	return nil
}

func extractFile(root *os.Root, name string, body io.Reader) error {
	if d := path.Dir(name); d != "." {
		if err := root.MkdirAll(filepath.FromSlash(d), dirMode); err != nil {
			return err
		}
	}
	// O_EXCL: on a case-insensitive file system two names can still
	// collide; fail rather than let one overwrite the other.
	f, err := root.OpenFile(filepath.FromSlash(name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, fileMode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, body); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", name, err)
	}
	return f.Close()
}

// readEntries walks a gzip-compressed tar, checks every entry and calls fn
// for each accepted one with its clean path. body yields exactly size bytes.
func readEntries(r io.Reader, lim Limits, fn func(name string, isDir bool, size int64, body io.Reader) error) error {
	lim, err := lim.withDefaults()
	if err != nil {
		return err
	}
	gz, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("reading gzip header: %w", err)
	}
	defer gz.Close()
	counted := &limitedReader{r: gz, what: "archive decompresses to", limit: lim.MaxTotalSize + lim.headerAllowance()}
	tr := tar.NewReader(counted)

	seen := newPathSet()
	var files, dirs int
	var total int64
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("reading tar: %w", err)
		}
		name, isDir, skip, err := entryName(hdr)
		if err != nil {
			return err
		}
		if skip {
			continue
		}
		if reason := seen.add(name, isDir); reason != "" {
			return &UnsafeEntryError{Name: hdr.Name, Reason: reason}
		}
		if isDir {
			if dirs++; dirs > lim.MaxFiles {
				return fmt.Errorf("%w: more than %d directories (at %s)", ErrLimitExceeded, lim.MaxFiles, hdr.Name)
			}
			if err := fn(name, true, 0, nil); err != nil {
				return err
			}
			continue
		}
		if files++; files > lim.MaxFiles {
			return fmt.Errorf("%w: more than %d files (at %s)", ErrLimitExceeded, lim.MaxFiles, hdr.Name)
		}
		if hdr.Size > lim.MaxFileSize {
			return fmt.Errorf("%w: file %s is %d bytes, limit is %d", ErrLimitExceeded, hdr.Name, hdr.Size, lim.MaxFileSize)
		}
		if total += hdr.Size; total > lim.MaxTotalSize {
			return fmt.Errorf("%w: files add up to more than %d bytes (at %s)", ErrLimitExceeded, lim.MaxTotalSize, hdr.Name)
		}
		if err := fn(name, false, hdr.Size, tr); err != nil {
			return err
		}
	}
	// Read to the end of the gzip stream so its checksum is verified;
	// trailing zeros (tar record padding) still count against the limit.
	if _, err := io.Copy(io.Discard, counted); err != nil {
		return fmt.Errorf("reading gzip: %w", err)
	}
	return nil
}

// entryName checks a tar header and returns its clean path, whether it is a
// directory, and whether to skip it (the "./" root entry some tars carry).
func entryName(hdr *tar.Header) (name string, isDir, skip bool, err error) {
	switch hdr.Typeflag {
	case tar.TypeReg:
	case tar.TypeDir:
		isDir = true
	case tar.TypeSymlink:
		return "", false, false, &UnsafeEntryError{Name: hdr.Name, Reason: "symbolic link to " + hdr.Linkname}
	case tar.TypeLink:
		return "", false, false, &UnsafeEntryError{Name: hdr.Name, Reason: "hard link to " + hdr.Linkname}
	case tar.TypeChar, tar.TypeBlock:
		return "", false, false, &UnsafeEntryError{Name: hdr.Name, Reason: "device file"}
	case tar.TypeFifo:
		return "", false, false, &UnsafeEntryError{Name: hdr.Name, Reason: "named pipe"}
	default:
		return "", false, false, &UnsafeEntryError{Name: hdr.Name, Reason: fmt.Sprintf("unsupported entry type %q", hdr.Typeflag)}
	}
	name = hdr.Name
	if isDir {
		name = strings.TrimSuffix(name, "/")
		if name == "." {
			return "", true, true, nil
		}
	}
	// Tars made with "tar -C dir ." prefix every name with "./".
	name = strings.TrimPrefix(name, "./")
	if reason := checkPath(name); reason != "" {
		return "", false, false, &UnsafeEntryError{Name: hdr.Name, Reason: reason}
	}
	return name, isDir, false, nil
}

// pathSet tracks the files and directories seen in an archive to reject
// duplicates and file/directory conflicts before anything is written.
type pathSet struct {
	files    map[string]struct{}
	explicit map[string]struct{} // directories with their own entry
	implied  map[string]struct{} // every directory, explicit or implied
}

func newPathSet() *pathSet {
	return &pathSet{files: map[string]struct{}{}, explicit: map[string]struct{}{}, implied: map[string]struct{}{}}
}

// add records an entry and returns why it conflicts, or "".
func (s *pathSet) add(name string, isDir bool) string {
	if _, ok := s.files[name]; ok {
		if isDir {
			return "directory where an earlier entry has a file"
		}
		return "duplicate of an earlier file"
	}
	if isDir {
		if _, ok := s.explicit[name]; ok {
			return "duplicate of an earlier directory"
		}
	} else if _, ok := s.implied[name]; ok {
		return "file where an earlier entry has a directory"
	}
	for d := range parents(name) {
		if _, ok := s.files[d]; ok {
			return "parent " + d + " is a file"
		}
	}
	for d := range parents(name) {
		s.implied[d] = struct{}{}
	}
	if isDir {
		s.explicit[name] = struct{}{}
		s.implied[name] = struct{}{}
	} else {
		s.files[name] = struct{}{}
	}
	return ""
}

// limitedReader fails with ErrLimitExceeded once more than limit bytes
// have been read, unlike io.LimitReader which reports a silent EOF.
type limitedReader struct {
	r     io.Reader
	what  string // for the error: "archive decompresses to", "index.json is"
	read  int64
	limit int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	// Allow one byte past the limit: it tells a stream that ends exactly
	// at the limit from one that goes beyond it.
	if room := l.limit + 1 - l.read; int64(len(p)) > room {
		p = p[:room]
	}
	n, err := l.r.Read(p)
	if l.read += int64(n); l.read > l.limit {
		return 0, fmt.Errorf("%w: %s more than %d bytes", ErrLimitExceeded, l.what, l.limit)
	}
	return n, err
}
