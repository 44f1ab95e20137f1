package stack

import (
	"net/url"
	"os"
	"strings"

	"github.com/Masterminds/semver/v3"
)

// checkChart checks what the schema cannot say about a chart source: that
// exactly one source is given, with the fields it needs and no others, and
// that the files it names exist.
func (s *Stack) checkChart(a *App) Errors {
	c := a.Chart
	var set []string
	for _, f := range []struct{ name, value string }{{"path", c.Path}, {"oci", c.OCI}, {"repository", c.Repository}} {
		if f.value != "" {
			set = append(set, f.name)
		}
	}
	switch len(set) {
	case 0:
		return Errors{a.errAt("chart", "chart needs a source: path (a chart in the stack's files), oci (a chart in an OCI registry) or repository and name (a chart in a Helm repository)")}
	case 1:
	default:
		return Errors{a.errAt("chart."+set[1], "chart sets both %s and %s: give one source", set[0], set[1])}
	}

	var errs Errors
	switch {
	case c.Path != "":
		for _, f := range []struct{ name, value string }{{"name", c.Name}, {"version", c.Version}} {
			if f.value != "" {
				errs = append(errs, a.errAt("chart."+f.name, "%s is for oci and repository charts: a chart at a path is used as it is", f.name))
			}
		}
		if c.Verify != nil {
			errs = append(errs, a.errAt("chart.verify", "verify is for oci and repository charts: a chart at a path is part of the stack's own files"))
		}
		if e := s.checkRoot(a, "chart.path", "chart", c.Path); e != nil {
			errs = append(errs, e)
		} else if _, err := os.Stat(s.Path(c.Path)); err != nil {
			errs = append(errs, a.errAt("chart.path", "chart %s not found (paths are relative to the stack directory %s)", c.Path, s.Dir))
		}
		return errs
	case c.OCI != "":
		if c.Name != "" {
			errs = append(errs, a.errAt("chart.name", "name is for repository charts: an oci chart is named by the last element of its URL (%s)", c.OCI[strings.LastIndex(c.OCI, "/")+1:]))
		}
		if c.Verify != nil && c.Verify.Key == "" && c.Verify.Keyring == "" {
			errs = append(errs, a.errAt("chart.verify", "verify needs key (a cosign public key) or keyring (a GnuPG keyring for Helm provenance)"))
		}
	case c.Repository != "":
		u, err := url.Parse(c.Repository)
		switch {
		case strings.HasPrefix(c.Repository, "oci://"):
			errs = append(errs, a.errAt("chart.repository", "repository is for classic Helm repositories: for a chart in an OCI registry write oci: %q", strings.TrimSuffix(c.Repository, "/")+"/"+orDefault(c.Name, "<chart>")))
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil:
			errs = append(errs, a.errAt("chart.repository", "repository %q must be an http:// or https:// URL without credentials, query or fragment (the directory that holds index.yaml)", c.Repository))
		}
		if c.Name == "" {
			errs = append(errs, a.errAt("chart", "a repository chart needs name: the chart's name in the repository's index.yaml"))
		} else if strings.ContainsAny(c.Name, "/\\ ") {
			errs = append(errs, a.errAt("chart.name", "chart name %q must not contain '/', '\\' or spaces", c.Name))
		}
		if c.Verify != nil {
			switch {
			case c.Verify.Key != "":
				errs = append(errs, a.errAt("chart.verify.key", "cosign signs OCI artifacts: verify a repository chart's provenance file with keyring (a GnuPG public keyring)"))
			case c.Verify.Keyring == "":
				errs = append(errs, a.errAt("chart.verify", "verify needs keyring (a GnuPG public keyring for the chart's provenance file)"))
			}
		}
	}

	if c.Version == "" {
		article := map[string]string{"oci": "an", "repository": "a"}[set[0]]
		errs = append(errs, a.errAt("chart", "%s %s chart needs version: an exact version such as 1.2.3, or a range such as ~1.2.0", article, set[0]))
	} else if _, err := semver.NewConstraint(c.Version); err != nil {
		errs = append(errs, a.errAt("chart.version", "version %q is neither a chart version (1.2.3) nor a range (~1.2.0, >=1.2.0 <2.0.0): %v", c.Version, err))
	}
	if c.Verify != nil {
		for _, f := range []struct{ name, value string }{{"key", c.Verify.Key}, {"keyring", c.Verify.Keyring}} {
			if f.value == "" {
				continue
			}
			if e := s.checkRoot(a, "chart.verify."+f.name, f.name, f.value); e != nil {
				errs = append(errs, e)
			} else if _, err := os.Stat(s.Path(f.value)); err != nil {
				errs = append(errs, a.errAt("chart.verify."+f.name, "%s %s not found (paths are relative to the stack directory %s)", f.name, f.value, s.Dir))
			}
		}
	}
	return errs
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
