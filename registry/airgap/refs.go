package airgap

import (
	"fmt"
	"path"
	"strings"

	"github.com/opencontainers/go-digest"
	orasregistry "oras.land/oras-go/v2/registry"

	"github.com/galley-dev/galley/registry"
)

// Destination returns the repository Import pushes an image or bundle from
// the repository path repoPath to: to's registry, with repoPath under to's
// repository (the prefix, which may be empty).
func Destination(to registry.Reference, repoPath string) (registry.Reference, error) {
	repo := repoPath
	if to.Repository != "" {
		repo = to.Repository + "/" + repoPath
	}
	d := registry.Reference{Registry: to.Registry, Repository: repo}
	o := orasregistry.Reference{Registry: d.Registry, Repository: d.Repository}
	if err := o.ValidateRepository(); err != nil {
		return registry.Reference{}, fmt.Errorf("destination repository %s/%s: %w", d.Registry, d.Repository, err)
	}
	if len(d.Repo()) > 255 {
		return registry.Reference{}, fmt.Errorf("destination repository %s is %d characters, registries accept 255", d.Repo(), len(d.Repo()))
	}
	return d, nil
}

// RelocatedImage returns the image reference Import writes for an image
// pushed to repository dst with digest d: host/repo@digest.
func RelocatedImage(dst registry.Reference, d digest.Digest) string {
	return dst.Repo() + "@" + d.String()
}

// imageHost returns the host of an image reference, normalised as
// registry.ParseImage does, or "" when it does not parse.
func imageHost(s string) string {
	im, err := registry.ParseImage(s)
	if err != nil {
		return ""
	}
	return im.Registry
}

// sourceHost returns the host of a repository URL: oci://host/..,
// https://host/.., ssh://git@host/.. or scp-like git@host:path.
func sourceHost(u string) string {
	if _, rest, ok := strings.Cut(u, "://"); ok {
		host, _, _ := strings.Cut(rest, "/")
		if at := strings.LastIndex(host, "@"); at >= 0 {
			host = host[at+1:]
		}
		return host
	}
	if at := strings.Index(u, "@"); at >= 0 {
		if host, _, ok := strings.Cut(u[at+1:], ":"); ok {
			return host
		}
	}
	// A bare host/path, as Argo CD accepts for OCI and Helm repositories.
	host, _, _ := strings.Cut(u, "/")
	if host == "" || host == "." || host == ".." || path.IsAbs(u) {
		return ""
	}
	return host
}
