package terraform

import (
	"encoding/json"
	"testing"
)

// BenchmarkBuild measures what Load and Compile each pay per module:
// vendoring, generating, parsing and inspecting a small module.
func BenchmarkBuild(b *testing.B) {
	dir := writeModule(b, network)
	m := Module{
		Name:      "network",
		Source:    dir,
		Variables: map[string]json.RawMessage{"name": raw(`"prod"`), "tags": raw(`{"team": "data"}`)},
		Backend:   &Backend{Type: "gcs", Config: raw(`{"bucket": "state"}`)},
		Providers: map[string]json.RawMessage{"google": raw(`{"project": "p"}`)},
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Build(m); err != nil {
			b.Fatal(err)
		}
	}
}
