package charts

import (
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/registry"
)

// Galley keeps its own copies of Helm's OCI media types so the compiler
// does not link Helm's registry client; they must stay Helm's.
func TestMediaTypesAreHelms(t *testing.T) {
	for got, want := range map[string]string{
		ConfigMediaType:       registry.ConfigMediaType,
		ChartLayerMediaType:   registry.ChartLayerMediaType,
		ProvLayerMediaType:    registry.ProvLayerMediaType,
		legacyChartLayerMedia: registry.LegacyChartLayerMediaType,
	} {
		if got != want {
			t.Errorf("media type %q, helm has %q", got, want)
		}
	}
}

func TestConstraintBest(t *testing.T) {
	versions := []string{"1.14.0", "1.15.0", "1.15.2", "1.15.10", "1.16.0-rc.1", "1.16.0", "2.0.0", "latest", "v1.15.11"}
	for _, tc := range []struct {
		constraint, want string
	}{
		{"1.15.2", "1.15.2"},
		{"~1.15.0", "v1.15.11"},
		{"^1.15.0", "1.16.0"},
		{">=1.14.0 <1.15.0", "1.14.0"},
		{"1.16.0-rc.1", "1.16.0-rc.1"},
		{">=1.16.0-0", "2.0.0"},
		{"*", "2.0.0"},
		{"3.x", ""},
		{"1.15.1", ""},
	} {
		c, err := parseConstraint(tc.constraint)
		if err != nil {
			t.Fatalf("%s: %v", tc.constraint, err)
		}
		got := ""
		if i := c.best(versions); i >= 0 {
			got = versions[i]
		}
		if got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.constraint, got, tc.want)
		}
	}
	if _, err := parseConstraint("~~1"); err == nil {
		t.Error(`"~~1" parsed`)
	}
}

func TestResolveURL(t *testing.T) {
	for _, tc := range []struct {
		repo, ref, want, err string
	}{
		{"https://charts.example.com", "airflow-1.15.0.tgz", "https://charts.example.com/airflow-1.15.0.tgz", ""},
		{"https://example.com/helm/stable", "airflow-1.15.0.tgz", "https://example.com/helm/stable/airflow-1.15.0.tgz", ""},
		{"https://example.com/helm/stable", "../charts/a.tgz", "https://example.com/helm/charts/a.tgz", ""},
		{"https://example.com/helm", "/abs/a.tgz", "https://example.com/abs/a.tgz", ""},
		{"https://example.com/helm", "https://github.com/o/r/releases/download/a-1.0.0/a-1.0.0.tgz", "https://github.com/o/r/releases/download/a-1.0.0/a-1.0.0.tgz", ""},
		{"https://example.com/helm", "oci://r.example/a", "", "is not http(s)"},
		{"https://example.com/helm", "file:///etc/passwd", "", "is not http(s)"},
	} {
		got, err := resolveURL(tc.repo, tc.ref)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s + %s: got %q, %v; want error %q", tc.repo, tc.ref, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s + %s: got %q, %v; want %q", tc.repo, tc.ref, got, err, tc.want)
		}
	}
}

func TestNormalizeDigest(t *testing.T) {
	hex := strings.Repeat("ab", 32)
	for in, want := range map[string]string{
		"":                               "",
		hex:                              "sha256:" + hex,
		"sha256:" + hex:                  "sha256:" + hex,
		" " + strings.ToUpper(hex) + " ": "sha256:" + hex,
	} {
		if got, err := normalizeDigest(in); err != nil || got != want {
			t.Errorf("%q: got %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"md5:abc", "abc", "sha512:" + hex + hex} {
		if _, err := normalizeDigest(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestOCITag(t *testing.T) {
	if got := ociTag("1.2.3+build.4"); got != "1.2.3_build.4" {
		t.Errorf("ociTag: %s", got)
	}
}

func TestProvURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://charts.example.com/a-1.0.0.tgz":               "https://charts.example.com/a-1.0.0.tgz.prov",
		"https://cdn.example.com/a-1.0.0.tgz?token=x&expiry=1": "https://cdn.example.com/a-1.0.0.tgz.prov?token=x&expiry=1",
	} {
		if got := provURL(in); got != want {
			t.Errorf("provURL(%s) = %s, want %s", in, got, want)
		}
	}
}
