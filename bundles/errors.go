package bundles

import (
	"errors"
	"fmt"

	"github.com/opencontainers/go-digest"
)

var (
	// ErrLimitExceeded is returned (wrapped) when an archive goes over one
	// of its Limits. The message says which limit and which entry.
	ErrLimitExceeded = errors.New("limit exceeded")
	// ErrNotBundle is returned (wrapped) when a manifest is valid OCI but not
	// a galley bundle, or not an image manifest at all.
	ErrNotBundle = errors.New("not a galley bundle")
	// ErrNotLayout is returned (wrapped) when a directory is not an OCI image
	// layout.
	ErrNotLayout = errors.New("not an OCI image layout")
	// ErrNotFound is returned (wrapped) when a reference is not in a layout.
	ErrNotFound = errors.New("not found")
	// ErrRefuseOverwrite is returned (wrapped) when an output directory
	// exists and holds something this package did not write, so replacing it
	// could destroy a user's files.
	ErrRefuseOverwrite = errors.New("refusing to overwrite")
)

// InvalidPathError reports a path that cannot be part of a Tree.
type InvalidPathError struct {
	Path   string
	Reason string
}

func (e *InvalidPathError) Error() string {
	return fmt.Sprintf("invalid bundle path %q: %s", e.Path, e.Reason)
}

// UnsafeEntryError reports a tar entry that extraction refuses: a path that
// could escape the target, a link, a device, a duplicate.
type UnsafeEntryError struct {
	Name   string // entry name as written in the archive
	Reason string
}

func (e *UnsafeEntryError) Error() string {
	return fmt.Sprintf("unsafe tar entry %q: %s", e.Name, e.Reason)
}

// DigestMismatchError reports a blob whose content does not match the
// descriptor that references it.
type DigestMismatchError struct {
	Blob     string // what the blob is: "manifest", "config", "layer"
	Want     digest.Digest
	Got      digest.Digest
	WantSize int64
	GotSize  int64
}

// ErrDigestMismatch: content does not match the digest (or size) that
// names it, wherever galley checks one: a blob or manifest from a registry
// or a layout, a chart against galley.lock, a signed payload against the
// manifest it is for. It is defined here once; registry, compiler/charts
// and bundles/sign export the same value.
var ErrDigestMismatch = errors.New("digest mismatch")

// Is makes errors.Is(err, ErrDigestMismatch) hold.
func (e *DigestMismatchError) Is(target error) bool { return target == ErrDigestMismatch }

func (e *DigestMismatchError) Error() string {
	if e.WantSize != e.GotSize {
		return fmt.Sprintf("%s blob %s: size is %d bytes, descriptor says %d", e.Blob, e.Want, e.GotSize, e.WantSize)
	}
	return fmt.Sprintf("%s blob %s: content digest is %s", e.Blob, e.Want, e.Got)
}
