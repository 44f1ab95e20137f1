package registry_test

import (
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/galley-dev/galley/bundles/sign"
	"github.com/galley-dev/galley/registry"
)

// failingSigner is a key whose signing fails, as a KMS that is down does.
type failingSigner struct{ signature.SignerVerifier }

func (failingSigner) SignMessage(io.Reader, ...signature.SignOption) ([]byte, error) {
	return nil, errors.New("kms unavailable")
}

var _ signature.SignerVerifier = failingSigner{}

// Publish checks, signs, pushes and pushes the signature last (here in the
// legacy .sig format; publish_sigstore_test.go covers the default); every
// refusal comes before the first write.
func TestPublish(t *testing.T) {
	ctx := t.Context()
	m := startMem(t, nil)
	c := plainClient()
	key := newSigner(t)
	b1, b2 := testBundle(t, "1.4.0", 1), testBundle(t, "1.4.0", 2)
	ref := m.ref(t, "shop:1.4.0")

	res, err := c.Publish(ctx, b1, ref, registry.PublishOptions{Tags: []string{"latest"}, Signer: key, SignatureFormat: registry.FormatCosignSig})
	if err != nil {
		t.Fatal(err)
	}
	if res.SignatureTag != sign.SignatureTag(b1.Digest()) || len(res.Tags) != 2 || !res.ManifestPushed {
		t.Errorf("publish: %+v", res)
	}
	var kinds []string
	for _, w := range writes(m.log.take()) {
		switch {
		case strings.Contains(w, "/blobs/uploads/"):
			kinds = append(kinds, "blob")
		case strings.HasSuffix(w, "/manifests/"+b1.Digest().String()):
			kinds = append(kinds, "manifest")
		case strings.HasSuffix(w, "/manifests/"+res.SignatureTag):
			kinds = append(kinds, "signature")
		case strings.Contains(w, "/manifests/"):
			kinds = append(kinds, "tag "+w[strings.LastIndex(w, "/")+1:])
		}
	}
	want := []string{"blob", "manifest", "tag 1.4.0", "tag latest", "blob", "signature"}
	if kinds = slices.Compact(kinds); !slices.Equal(kinds, want) {
		t.Errorf("writes in order %v, want %v", kinds, want)
	}
	if _, err := c.Verify(ctx, ref, key); err != nil {
		t.Errorf("verify the published bundle: %v", err)
	}

	// Publishing the same bundle again writes nothing.
	if _, err := c.Publish(ctx, b1, ref, registry.PublishOptions{Tags: []string{"latest"}, Signer: key, SignatureFormat: registry.FormatCosignSig}); err != nil {
		t.Fatal(err)
	}
	if w := writes(m.log.take()); len(w) != 0 {
		t.Errorf("publishing again wrote %v", w)
	}

	for _, tc := range []struct {
		name string
		o    registry.PublishOptions
		want error
	}{
		{"other content under a released version", registry.PublishOptions{}, registry.ErrVersionExists},
		{"a key that cannot sign", registry.PublishOptions{Force: true, Signer: failingSigner{key}}, nil},
		{"a bad tag", registry.PublishOptions{Tags: []string{"v1_2"}}, registry.ErrInvalidTag},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Publish(ctx, b2, ref, tc.o)
			if err == nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("publish: %v, want %v", err, tc.want)
			}
			if w := writes(m.log.take()); len(w) != 0 {
				t.Errorf("a refused publish wrote %v", w)
			}
		})
	}

	res, err = c.Publish(ctx, b2, ref, registry.PublishOptions{Force: true, Signer: key})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Tags) != 1 || res.Tags[0].Previous != b1.Digest() || !res.Tags[0].Changed {
		t.Errorf("forced publish: tags %+v, want 1.4.0 moved from %s", res.Tags, b1.Digest())
	}
}

// A version taken by another push between Prepare and Push is refused
// when its tag is written, not moved.
func TestPublishRaceKeepsTheVersion(t *testing.T) {
	ctx := t.Context()
	m := startMem(t, nil)
	c := plainClient()
	b1, b2 := testBundle(t, "1.4.0", 1), testBundle(t, "1.4.0", 2)
	ref := m.ref(t, "shop:1.4.0")
	p, err := c.Prepare(ctx, b1, ref, registry.PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Push(ctx, b2, ref); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Push(ctx); !errors.Is(err, registry.ErrVersionExists) {
		t.Fatalf("push after the version was taken: %v, want ErrVersionExists", err)
	}
	if d, err := c.Resolve(ctx, ref); err != nil || d.Digest != b2.Digest() {
		t.Errorf("1.4.0 names %s (%v), want %s", d.Digest, err, b2.Digest())
	}
}
