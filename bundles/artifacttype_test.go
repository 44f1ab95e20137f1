package bundles

import (
	"strings"
	"testing"
)

func TestValidateArtifactType(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{ArtifactType, true},
		{"application/vnd.oci.image.config.v1+json", true},
		{strings.Repeat("a", 127) + "/" + strings.Repeat("b", 127), true},
		{strings.Repeat("a", 128) + "/b", false},
		{"a/" + strings.Repeat("b", 128), false},
		{"application", false},
		{"application/", false},
		{"/json", false},
		{"application/json; charset=utf-8", false},
		{"application/json/x", false},
		{"-a/b", false},
	} {
		if err := ValidateArtifactType(tc.in); (err == nil) != tc.ok {
			t.Errorf("ValidateArtifactType(%.20q...): %v, want ok %v", tc.in, err, tc.ok)
		}
	}
}
