package registry

import (
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/opencontainers/go-digest"
)

// Docker Hub's names: image references say docker.io (or nothing), its API
// answers at registry-1.docker.io.
const (
	dockerHubName = "index.docker.io"
	dockerHubAPI  = "registry-1.docker.io"
)

// Image is a container image reference parsed the way Kubernetes and
// docker read it: no registry means Docker Hub, a single-name repository
// there is under library/, no tag and no digest means latest. It is the
// one parser of image references galley has (ResolveImages, air-gap export
// and import).
type Image struct {
	// Original is the reference as written.
	Original string
	// Registry is host[:port]; Docker Hub is index.docker.io.
	Registry string
	// Path is the repository inside the registry (library/postgres).
	Path string
	// Tag is the tag, also when a digest pins the image
	// (postgres:16@sha256:...); "" when only a digest is given.
	Tag    string
	Digest digest.Digest
}

// ParseImage parses a container image reference; the error wraps
// ErrInvalidReference.
func ParseImage(s string) (Image, error) {
	r, err := name.ParseReference(s)
	if err != nil {
		return Image{}, invalidRef(s, err.Error())
	}
	im := Image{Original: s, Registry: r.Context().RegistryStr(), Path: r.Context().RepositoryStr()}
	if d, ok := r.(name.Digest); ok {
		if im.Digest, err = digest.Parse(d.DigestStr()); err != nil {
			return Image{}, invalidRef(s, err.Error())
		}
		// go-containerregistry drops the tag of repo:tag@digest; keep it
		// for the tag pushed beside the digest.
		base, _, _ := strings.Cut(s, "@")
		if i := strings.LastIndex(base, ":"); i > strings.LastIndex(base, "/") {
			im.Tag = base[i+1:]
		}
	} else {
		im.Tag = r.Identifier()
	}
	return im, nil
}

// Reference is the registry reference to talk to for the image: Docker
// Hub's API host, its tag and its digest (which wins when resolving).
func (im Image) Reference() Reference {
	host := im.Registry
	if host == dockerHubName {
		host = dockerHubAPI
	}
	return Reference{Registry: host, Repository: im.Path, Tag: im.Tag, Digest: im.Digest}
}

// Name is the normalised full name, as io.containerd.image.name wants it:
// docker.io/library/postgres:16.
func (im Image) Name() string {
	host := im.Registry
	if host == dockerHubName {
		host = "docker.io"
	}
	s := host + "/" + im.Path
	if im.Tag != "" {
		s += ":" + im.Tag
	}
	if im.Digest != "" {
		s += "@" + im.Digest.String()
	}
	return s
}

// ImageReference returns the registry reference of a container image
// reference (see Image.Reference): postgres:16 is
// registry-1.docker.io/library/postgres:16. A reference pinned by digest
// keeps only its digest.
func ImageReference(image string) (Reference, error) {
	im, err := ParseImage(image)
	if err != nil {
		return Reference{}, err
	}
	ref := im.Reference()
	if ref.Digest != "" {
		ref.Tag = ""
	}
	return ref, nil
}

// NormalizeHost lowercases a host[:port] and names Docker Hub one way
// (index.docker.io), as Image.Registry does.
func NormalizeHost(h string) string {
	h = strings.ToLower(strings.TrimSpace(h))
	switch h {
	case "docker.io", dockerHubAPI:
		return dockerHubName
	}
	return h
}
