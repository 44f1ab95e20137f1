package sign

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/kms"

	// KMS providers built in. gcpkms:// (grpc, OpenTelemetry and the Google
	// API client) and hashivault:// (it replaces the hashicorp/hcl version
	// terraform-config-inspect is pinned to) are left out: sigstore reaches
	// them through a `sigstore-kms-<scheme>` plugin on PATH instead, as
	// cosign does for any scheme it was not built with.
	_ "github.com/sigstore/sigstore/pkg/signature/kms/aws"
	_ "github.com/sigstore/sigstore/pkg/signature/kms/azure"
)

// SupportedKMS lists the KMS URI prefixes built into this package, sorted.
func SupportedKMS() []string {
	p := kms.SupportedProviders()
	slices.Sort(p)
	return p
}

func kmsSignerVerifier(ctx context.Context, keyRef string) (signature.SignerVerifier, error) {
	// SHA-256 whatever the key, as cosign (pkg/signature/keys.go).
	sv, err := kms.Get(ctx, keyRef, crypto.SHA256)
	if err != nil {
		var nf *kms.ProviderNotFoundError
		if errors.As(err, &nf) {
			scheme, _, _ := strings.Cut(keyRef, "://")
			return nil, fmt.Errorf("key %s: no KMS provider for %s:// (built in: %s; others need a sigstore-kms-%s plugin on PATH)",
				keyRef, scheme, strings.Join(SupportedKMS(), ", "), scheme)
		}
		return nil, fmt.Errorf("key %s: %w", keyRef, err)
	}
	return sv, nil
}
