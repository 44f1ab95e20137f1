package bundles

import (
	"errors"
	"testing"
)

func TestCheckRepositoryURL(t *testing.T) {
	for _, tc := range []struct {
		url     string
		ok      bool
		wantErr error
	}{
		{url: "oci://registry.example.com/platform/data", ok: true},
		{url: "oci://127.0.0.1:5000/platform/data", ok: true},
		{url: "oci://registry.example.com/platform/data:1.0.0", wantErr: ErrRepositoryTag},
		{url: "oci://registry.example.com/platform/data@sha256:abc", wantErr: ErrRepositoryDigest},
		{url: "https://registry.example.com/platform/data"},
		{url: "oci://registry.example.com"},
		{url: "oci:///data"},
		{url: "oci://registry.example.com/Platform/Data"},
	} {
		err := CheckRepositoryURL(tc.url)
		if tc.ok != (err == nil) {
			t.Errorf("%s: got %v, want ok=%v", tc.url, err, tc.ok)
		}
		if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
			t.Errorf("%s: got %v, want %v", tc.url, err, tc.wantErr)
		}
	}
}
