package bundles

import (
	"errors"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// Problems CheckRepositoryURL reports, for callers to explain in their
// own terms (Argo CD's targetRevision, Flux's ref).
var (
	ErrRepositoryTag    = errors.New("no tag here")
	ErrRepositoryDigest = errors.New("no digest here")
)

// CheckRepositoryURL accepts oci://<registry>/<repository>, the form Argo
// CD's repoURL and Flux's OCIRepository url take: an explicit registry,
// and no tag or digest, since both tools take the version elsewhere.
func CheckRepositoryURL(u string) error {
	rest, ok := strings.CutPrefix(u, "oci://")
	if !ok {
		return fmt.Errorf("%q: want oci://<registry>/<repository>", u)
	}
	if strings.Contains(rest, "@") {
		return fmt.Errorf("%q: %w", u, ErrRepositoryDigest)
	}
	host, repo, ok := strings.Cut(rest, "/")
	if !ok || host == "" || repo == "" {
		return fmt.Errorf("%q: want oci://<registry>/<repository>", u)
	}
	if strings.Contains(repo, ":") {
		return fmt.Errorf("%q: %w", u, ErrRepositoryTag)
	}
	if _, err := name.NewRepository(rest, name.StrictValidation); err != nil {
		return fmt.Errorf("%q: %w", u, err)
	}
	return nil
}
