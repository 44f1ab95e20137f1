package bundles

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
)

// mkdirTemp creates a new hidden directory beside target, on the same file
// system so that a rename can move it into place. Unlike os.MkdirTemp it
// takes a mode, so the result has the usual permissions less the umask
// rather than 0700.
func mkdirTemp(target, purpose string, perm fs.FileMode) (string, error) {
	parent, base := filepath.Split(filepath.Clean(target))
	if base == "" || base == "." || base == ".." {
		return "", fmt.Errorf("invalid output directory %q", target)
	}
	for range 100 {
		name := filepath.Join(parent, "."+base+"."+purpose+"-"+strconv.FormatUint(rand.Uint64(), 36))
		err := os.Mkdir(name, perm)
		if err == nil {
			return name, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return "", fmt.Errorf("creating temporary directory beside %s: %w", target, err)
		}
	}
	return "", fmt.Errorf("creating temporary directory beside %s: too many collisions", target)
}

// replaceDir moves the finished directory tmp to dir. If dir exists it
// must be a real directory that canReplace accepts; it is moved aside
// first and removed only once tmp is in place, so a failure at any point
// leaves either the old or the new content at dir.
func replaceDir(tmp, dir string, canReplace func(string) error) error {
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.Rename(tmp, dir); err != nil {
			return fmt.Errorf("moving output into place: %w", err)
		}
		return nil
	}
	if err != nil {
		return err
	}
	if err := checkIsDir(dir, fi); err != nil {
		return err
	}
	if err := canReplace(dir); err != nil {
		return err
	}
	// Reserve a unique name, then free it for the rename: not every
	// system lets rename replace an empty directory.
	old, err := mkdirTemp(dir, "old", 0o700)
	if err != nil {
		return err
	}
	if err := os.Remove(old); err != nil {
		return err
	}
	if err := os.Rename(dir, old); err != nil {
		return fmt.Errorf("moving %s aside: %w", dir, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		if rerr := os.Rename(old, dir); rerr != nil {
			return fmt.Errorf("moving output into place: %w (and restoring the previous %s from %s: %v)", err, dir, old, rerr)
		}
		return fmt.Errorf("moving output into place: %w", err)
	}
	if err := os.RemoveAll(old); err != nil {
		return fmt.Errorf("removing previous %s: %w", dir, err)
	}
	return nil
}

// checkEmptyDir accepts a missing directory or an empty one.
func checkEmptyDir(dir string) error {
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := checkIsDir(dir, fi); err != nil {
		return err
	}
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Readdirnames(1); !errors.Is(err, io.EOF) {
		if err != nil {
			return fmt.Errorf("reading %s: %w", dir, err)
		}
		return fmt.Errorf("%w %s: directory is not empty", ErrRefuseOverwrite, dir)
	}
	return nil
}

func checkIsDir(dir string, fi fs.FileInfo) error {
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		return fmt.Errorf("%w %s: it is a symbolic link, not a directory", ErrRefuseOverwrite, dir)
	case !fi.IsDir():
		return fmt.Errorf("%w %s: not a directory", ErrRefuseOverwrite, dir)
	}
	return nil
}
