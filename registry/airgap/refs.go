package airgap

import (
	"fmt"
	"path"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/opencontainers/go-digest"
	orasregistry "oras.land/oras-go/v2/registry"

	"github.com/galley-dev/galley/registry"
)

// Docker Hub's names: references say docker.io (or nothing), the API
// answers at registry-1.docker.io.
const (
	dockerHubName = "index.docker.io"
	dockerHubAPI  = "registry-1.docker.io"
)

// imageRef is an image reference of a bundle, parsed.
type imageRef struct {
	// Original is the reference as bundle.json writes it.
	Original string
	// Registry is host[:port], normalised: Docker Hub is index.docker.io.
	Registry string
	// Path is the repository inside the registry (library/postgres).
	Path   string
	Tag    string
	Digest digest.Digest
}

// parseImage parses an image reference the way Kubernetes and docker read
// it: no registry means Docker Hub, no tag and no digest means "latest".
func parseImage(s string) (imageRef, error) {
	r, err := name.ParseReference(s)
	if err != nil {
		return imageRef{}, fmt.Errorf("image reference %q: %w", s, err)
	}
	ref := imageRef{Original: s, Registry: r.Context().RegistryStr(), Path: r.Context().RepositoryStr()}
	if d, ok := r.(name.Digest); ok {
		if ref.Digest, err = digest.Parse(d.DigestStr()); err != nil {
			return imageRef{}, fmt.Errorf("image reference %q: %w", s, err)
		}
		// go-containerregistry drops the tag of repo:tag@digest; keep it
		// for the tag pushed beside the digest.
		base, _, _ := strings.Cut(s, "@")
		if i := strings.LastIndex(base, ":"); i > strings.LastIndex(base, "/") {
			ref.Tag = base[i+1:]
		}
	} else {
		ref.Tag = r.Identifier()
	}
	return ref, nil
}

// apiHost is the host to talk to for the registry.
func (r imageRef) apiHost() string {
	if r.Registry == dockerHubName {
		return dockerHubAPI
	}
	return r.Registry
}

// source is the registry reference to fetch the image from: its digest
// when the reference pins one, else its tag.
func (r imageRef) source() registry.Reference {
	return registry.Reference{Registry: r.apiHost(), Repository: r.Path, Tag: r.Tag, Digest: r.Digest}
}

// name is the normalised full name, as io.containerd.image.name wants it.
func (r imageRef) name() string {
	host := r.Registry
	if host == dockerHubName {
		host = "docker.io"
	}
	s := host + "/" + r.Path
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest.String()
	}
	return s
}

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
// parseImage does, or "" when it does not parse.
func imageHost(s string) string {
	r, err := name.ParseReference(s)
	if err != nil {
		return ""
	}
	return r.Context().RegistryStr()
}

// normalizeHost lowercases a host[:port] and names Docker Hub one way.
func normalizeHost(h string) string {
	h = strings.ToLower(strings.TrimSpace(h))
	switch h {
	case "docker.io", dockerHubAPI:
		return dockerHubName
	}
	return h
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
