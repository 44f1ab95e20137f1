package registry

import (
	"errors"
	"strings"
	"testing"
)

func TestParseReference(t *testing.T) {
	const dg = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
	for _, tc := range []struct {
		in   string
		want Reference
		err  string
	}{
		{in: "oci://ghcr.io/acme/platform:1.4.0", want: Reference{Registry: "ghcr.io", Repository: "acme/platform", Tag: "1.4.0"}},
		{in: "oci://127.0.0.1:5000/shop", want: Reference{Registry: "127.0.0.1:5000", Repository: "shop"}},
		{in: "oci://localhost:5000/a/b@" + dg, want: Reference{Registry: "localhost:5000", Repository: "a/b", Digest: dg}},
		{in: "oci://r.example/a:1.0.0@" + dg, want: Reference{Registry: "r.example", Repository: "a", Tag: "1.0.0", Digest: dg}},
		{in: "oci://r.example/a:latest", want: Reference{Registry: "r.example", Repository: "a", Tag: "latest"}},
		{in: "ghcr.io/acme/platform:1.4.0", err: "must start with oci://"},
		{in: "https://user:pw@ghcr.io/acme", err: `"https://***@ghcr.io/acme": must start with oci://`},
		{in: "oci://user:pw@ghcr.io/acme:1.0.0", err: `"oci://***@ghcr.io/acme:1.0.0": credentials do not belong`},
		{in: "oci://ghcr.io", err: "no repository"},
		{in: "oci://ghcr.io/Acme", err: "must be lowercase"},
		{in: "oci://ghcr.io/a:1.4.0+build.1", err: "build metadata"},
		{in: "oci://ghcr.io/a:", err: "empty tag"},
		{in: "oci://ghcr.io/a@sha256:abc", err: "digest"},
		{in: "oci://ghc r.io/a", err: "not a valid host"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseReference(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, ErrInvalidReference) {
					t.Fatalf("err = %v, want ErrInvalidReference containing %q", err, tc.err)
				}
				if strings.Contains(err.Error(), "pw") {
					t.Errorf("err = %q shows the password", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			if got.String() != tc.in {
				t.Errorf("String() = %q, want %q", got.String(), tc.in)
			}
		})
	}
}

func TestValidateTag(t *testing.T) {
	for tag, want := range map[string]string{
		"1.4.0":                  "",
		"v1.4.0":                 "",
		"1.5.0-rc.1":             "",
		"latest":                 "",
		"stable":                 "",
		"main-2024.05":           "",
		"1.4.0+build":            "build metadata",
		"1.4.0_build":            "no underscores",
		"1.4":                    "plain semantic version",
		"v1":                     "plain semantic version",
		"01.4.0":                 "plain semantic version",
		"sha256-abc.sig":         "signatures",
		"-x":                     "up to 128",
		"":                       "up to 128",
		strings.Repeat("a", 129): "up to 128",
	} {
		err := ValidateTag(tag)
		switch {
		case want == "" && err != nil:
			t.Errorf("ValidateTag(%q) = %v", tag, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want) || !errors.Is(err, ErrInvalidTag)):
			t.Errorf("ValidateTag(%q) = %v, want ErrInvalidTag with %q", tag, err, want)
		}
	}
}

// FuzzParseReference: any input parses or fails cleanly; what parses
// prints back to itself and never carries credentials.
func FuzzParseReference(f *testing.F) {
	for _, s := range []string{
		"oci://ghcr.io/acme/platform:1.4.0",
		"oci://127.0.0.1:5000/a/b@sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
		"oci://u:p@h/r", "oci://h/r:t@sha256:0", "oci://h/r:", "oci:///r", "oci://h/R",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ref, err := ParseReference(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidReference) {
				t.Fatalf("ParseReference(%q) = %v, not ErrInvalidReference", s, err)
			}
			return
		}
		if strings.Contains(ref.Registry, "@") {
			t.Fatalf("ParseReference(%q) kept userinfo in %q", s, ref.Registry)
		}
		again, err := ParseReference(ref.String())
		if err != nil || again != ref {
			t.Fatalf("ParseReference(%q) = %+v, which prints as %q and parses back as %+v, %v", s, ref, ref.String(), again, err)
		}
	})
}
