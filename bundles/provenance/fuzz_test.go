package provenance_test

import (
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/galley-dev/galley/bundles/provenance"
)

// FuzzParse feeds arbitrary statements to Parse: no panic, and a statement
// accepted for one digest is refused for another.
func FuzzParse(f *testing.F) {
	b := testBundle(f)
	p, err := provenance.Build(b, provenance.Options{})
	if err != nil {
		f.Fatal(err)
	}
	st, err := p.Statement()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(st)
	f.Add(st[:len(st)/2])
	f.Add([]byte(`{"_type":"https://in-toto.io/Statement/v1","predicateType":"https://slsa.dev/provenance/v1","subject":[{"digest":{"sha256":"00"}}],"predicate":{}}`))
	other := digest.FromString("other")
	f.Fuzz(func(t *testing.T, st []byte) {
		if _, err := provenance.Parse(st, b.Digest()); err == nil {
			if _, err := provenance.Parse(st, other); err == nil {
				t.Fatalf("accepted for two digests: %s", st)
			}
		}
	})
}
