package provenance_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/galley-dev/galley/bundles"
	"github.com/galley-dev/galley/bundles/provenance"
	"github.com/galley-dev/galley/bundles/sign"
)

const index = `{"schemaVersion":1,"galley":"v0.9.0","stack":{"name":"shop","version":"1.4.0","kubernetes":"1.33.0","environment":"prod"},
"apps":[{"name":"web","namespace":"shop","path":"apps/web","chart":{"name":"nginx","version":"18.2.1","digest":"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},"syncWave":0,"dependsOn":null,"objects":1,"images":[]},
 {"name":"web2","namespace":"shop","path":"apps/web2","chart":{"name":"nginx","version":"18.2.1","digest":"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},"syncWave":0,"dependsOn":null,"objects":1,"images":[]}],
"terraform":[{"name":"bucket","path":"terraform/bucket","providers":[],"variables":[],"outputs":[],"files":1}],
"images":["docker.io/library/nginx:1.27@sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb","busybox:1.36"]}`

func testBundle(t testing.TB) *bundles.Bundle {
	t.Helper()
	tree := bundles.NewTree()
	for name, data := range map[string]string{
		bundles.IndexPath:                 index,
		"apps/web/cm.yaml":                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\n",
		"terraform/bucket/main.tf":        "resource \"null_resource\" \"x\" {}\n",
		"terraform/bucketeer/variable.tf": "variable \"y\" {}\n",
	} {
		if err := tree.Add(name, []byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	b, err := bundles.Pack(tree, bundles.Metadata{Name: "shop", Version: "1.4.0", Source: "https://git.example/shop", Revision: "main@sha1:0123456789abcdef0123456789abcdef01234567", Created: time.Unix(0, 0).UTC()})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The provenance records the stack, its source and every resolved
// dependency, and reads back as written.
func TestBuildRoundTrip(t *testing.T) {
	b := testBundle(t)
	p, err := provenance.Build(b, provenance.Options{GalleyVersion: "ignored: the bundle says"})
	if err != nil {
		t.Fatal(err)
	}
	st, err := p.Statement()
	if err != nil {
		t.Fatal(err)
	}
	var raw struct {
		Type          string `json:"_type"`
		PredicateType string `json:"predicateType"`
		Subject       []struct {
			Digest map[string]string `json:"digest"`
		} `json:"subject"`
		Predicate struct {
			BuildDefinition struct {
				BuildType          string            `json:"buildType"`
				ExternalParameters map[string]string `json:"externalParameters"`
				Resolved           []struct {
					Name   string            `json:"name"`
					Digest map[string]string `json:"digest"`
				} `json:"resolvedDependencies"`
			} `json:"buildDefinition"`
			RunDetails struct {
				Builder struct {
					ID      string            `json:"id"`
					Version map[string]string `json:"version"`
				} `json:"builder"`
			} `json:"runDetails"`
		} `json:"predicate"`
	}
	if err := json.Unmarshal(st, &raw); err != nil {
		t.Fatal(err)
	}
	bd := raw.Predicate.BuildDefinition
	if raw.Type != "https://in-toto.io/Statement/v1" || raw.PredicateType != "https://slsa.dev/provenance/v1" ||
		len(raw.Subject) != 1 || raw.Subject[0].Digest["sha256"] != b.Digest().Encoded() ||
		bd.BuildType != provenance.BuildType || raw.Predicate.RunDetails.Builder.ID != provenance.BuilderID ||
		raw.Predicate.RunDetails.Builder.Version["galley"] != "v0.9.0" {
		t.Errorf("statement: %s", st)
	}
	wantExt := map[string]string{"stack": "shop", "version": "1.4.0", "environment": "prod", "source": "https://git.example/shop", "revision": "main@sha1:0123456789abcdef0123456789abcdef01234567"}
	for k, v := range wantExt {
		if bd.ExternalParameters[k] != v {
			t.Errorf("externalParameters.%s = %q, want %q", k, bd.ExternalParameters[k], v)
		}
	}
	// One chart (two apps share it), two images, one module.
	if len(bd.Resolved) != 4 {
		t.Fatalf("resolvedDependencies: %+v", bd.Resolved)
	}
	if bd.Resolved[0].Name != "nginx" || bd.Resolved[0].Digest["sha256"] != strings.Repeat("a", 64) {
		t.Errorf("chart: %+v", bd.Resolved[0])
	}
	if bd.Resolved[1].Name != "docker.io/library/nginx:1.27" || bd.Resolved[1].Digest["sha256"] != strings.Repeat("b", 64) || bd.Resolved[2].Digest != nil {
		t.Errorf("images: %+v", bd.Resolved[1:3])
	}
	// Only terraform/bucket's files, not terraform/bucketeer's.
	if h := bd.Resolved[3].Digest["dirHash"]; len(h) != 64 {
		t.Errorf("module digest: %+v", bd.Resolved[3])
	}

	got, err := provenance.Parse(st, b.Digest())
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(p)
	g, _ := json.Marshal(got)
	if string(a) != string(g) {
		t.Errorf("parsed\n got %s\nwant %s", g, a)
	}

	// The same bundle gives the same statement.
	p2, err := provenance.Build(testBundle(t), provenance.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st2, _ := p2.Statement()
	if string(st2) != string(st) {
		t.Errorf("not deterministic:\n%s\n%s", st, st2)
	}
}

func TestParseRefuses(t *testing.T) {
	b := testBundle(t)
	p, err := provenance.Build(b, provenance.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := p.Statement()
	if err != nil {
		t.Fatal(err)
	}
	other := digest.FromString("another bundle")
	sigSt, err := sign.SignatureStatement(b.Digest())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		st   []byte
		d    digest.Digest
		want error
		msg  string
	}{
		{"another subject", st, other, provenance.ErrSubject, "subject sha256:" + b.Digest().Encoded() + ", want " + other.String()},
		{"truncated", st[:len(st)/2], b.Digest(), provenance.ErrInvalid, "not a SLSA v1 provenance statement"},
		{"a signature statement", sigSt, b.Digest(), provenance.ErrInvalid, `predicateType "https://sigstore.dev/cosign/sign/v1"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := provenance.Parse(tc.st, tc.d)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) || strings.Contains(err.Error(), "\n") {
				t.Errorf("got %v, want %v containing %q on one line", err, tc.want, tc.msg)
			}
		})
	}
}

// Signed like the bundle, the provenance verifies as an attestation of type
// SLSA provenance v1 for the bundle digest, and for no other.
func TestSignedProvenance(t *testing.T) {
	ctx := t.Context()
	b := testBundle(t)
	p, err := provenance.Build(b, provenance.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := p.Statement()
	if err != nil {
		t.Fatal(err)
	}
	sv, _, err := signature.NewDefaultECDSASignerVerifier()
	if err != nil {
		t.Fatal(err)
	}
	bundle, err := sign.SignStatement(ctx, sv, st)
	if err != nil {
		t.Fatal(err)
	}
	vb, err := sign.VerifyBundle(ctx, sv, bundle, b.Digest(), provenance.PredicateType)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := provenance.Parse(vb.Statement, b.Digest()); err != nil {
		t.Fatal(err)
	}
	if _, err := sign.VerifyBundle(ctx, sv, bundle, digest.FromString("x"), provenance.PredicateType); !errors.Is(err, sign.ErrDigestMismatch) {
		t.Errorf("provenance for another digest: %v", err)
	}
}
