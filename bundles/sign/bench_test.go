package sign_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/galley-dev/galley/bundles/sign"
)

// BenchmarkLoadSigner is dominated by scrypt (N=2^16, r=8: 64 MiB), the
// price cosign's key format sets on every signing.
func BenchmarkLoadSigner(b *testing.B) {
	ctx := context.Background()
	p := filepath.Join(fixtureDir, "cosign.key")
	for b.Loop() {
		if _, err := sign.LoadSigner(ctx, p, pass(fixturePassword)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSignAndBuild(b *testing.B) {
	ctx := context.Background()
	sv := newKey(b)
	payload, err := sign.Payload("registry.example.com/team/app", digestA)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		s, err := sign.SignPayload(ctx, sv, payload)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := sign.BuildSignatureManifest(nil, s); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyMany verifies the last of 100 signatures, the worst case
// for a manifest many keys have signed.
func BenchmarkVerifyMany(b *testing.B) {
	ctx := context.Background()
	var a *sign.Artifact
	sv := newKey(b)
	for i := 0; i < 99; i++ {
		a = signed(b, newKey(b), a, "registry.example.com/team/app", digestA)
	}
	a = signed(b, sv, a, "registry.example.com/team/app", digestA)
	fetch := fetchFrom(a.Blobs)
	for b.Loop() {
		if _, err := sign.Verify(ctx, sv, a.Manifest, fetch, digestA); err != nil {
			b.Fatal(err)
		}
	}
}
