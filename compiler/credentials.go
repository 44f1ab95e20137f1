package compiler

import (
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"

	"github.com/galley-dev/galley/compiler/manifest"
	"github.com/galley-dev/galley/compiler/stack"
)

// credentialPatterns recognise a credential by its shape, wherever it is
// written: a bundle is readable by anyone who can pull it, so one in a
// ConfigMap or an env value is as exposed as in a plaintext Secret.
//
// needs lists literals one of which every match contains: most strings hold
// none, and strings.Contains rejects them far faster than the regexps
// (the check was 5% of a cold build's CPU). It only skips patterns that
// cannot match, so what is found does not change
// (TestCredentialPrefilterExact).
var credentialPatterns = []struct {
	what  string
	needs []string
	re    *regexp.Regexp
}{
	{"a Slack webhook URL", []string{"https://hooks.slack.com/"}, regexp.MustCompile(`https://hooks\.slack\.com/(services|workflows|triggers)/[A-Za-z0-9/_-]{10,}`)},
	{"a private key", []string{"PRIVATE KEY-----"}, regexp.MustCompile(`-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----`)},
	{"a GitHub token", []string{"ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"}, regexp.MustCompile(`\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})\b`)},
	{"a GitLab token", []string{"glpat-"}, regexp.MustCompile(`\bglpat-[A-Za-z0-9_-]{20,}\b`)},
	{"a Slack token", []string{"xox"}, regexp.MustCompile(`\bxox[abposr]-[A-Za-z0-9-]{10,}\b`)},
	{"an AWS access key", []string{"AKIA", "ASIA"}, regexp.MustCompile(`\b(?:AKIA|ASIA)[0-9A-Z]{16}\b`)},
	{"a Google API key", []string{"AIza"}, regexp.MustCompile(`\bAIza[0-9A-Za-z_-]{35}\b`)},
	{"an API secret key", []string{"sk_live_", "sk_test_", "sk-"}, regexp.MustCompile(`\bsk_(?:live|test)_[0-9A-Za-z]{20,}\b|\bsk-[A-Za-z0-9_-]{32,}\b`)},
	{"a JSON web token", []string{"eyJ"}, regexp.MustCompile(`\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}`)},
}

// containsAny says whether s contains one of subs.
func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// urlWithUserinfo finds URLs that carry user:password@ (a password that is
// a placeholder such as $(DB_PASSWORD), ${...} or {{...}} is no secret).
var urlWithUserinfo = regexp.MustCompile(`[a-zA-Z][a-zA-Z0-9+.-]*://[^\s/@'"]+:[^\s/@'"]+@[^\s'"]+`)

// credentialIn says what credential s holds, or "".
func credentialIn(s string) string {
	for _, p := range credentialPatterns {
		if containsAny(s, p.needs) && p.re.MatchString(s) {
			return p.what
		}
	}
	if !strings.Contains(s, "://") {
		return ""
	}
	for _, m := range urlWithUserinfo.FindAllString(s, -1) {
		u, err := url.Parse(m)
		if err != nil || u.User == nil {
			continue
		}
		if pw, ok := u.User.Password(); ok && pw != "" && !placeholder(pw) {
			return "a URL with a password"
		}
	}
	return ""
}

func placeholder(s string) bool {
	return strings.HasPrefix(s, "$(") || strings.HasPrefix(s, "${") || strings.HasPrefix(s, "{{") || strings.HasPrefix(s, "$")
}

// checkCredentials refuses credentials written outside Secrets: in a
// ConfigMap's data, or in a container's env value. It names the app,
// object and field of each, and the fix.
func checkCredentials(a *stack.App, objs []*Object) *stack.Error {
	if a.Secrets.AllowCredentials {
		return nil
	}
	var found []string
	for _, o := range objs {
		for _, f := range credentialFields(o) {
			found = append(found, fmt.Sprintf("%s %s holds %s (from %s)", o.ID(), f.field, f.what, o.Source))
		}
	}
	if len(found) == 0 {
		return nil
	}
	sort.Strings(found)
	return appError(a, "secrets",
		"app %s writes credentials outside Secrets into the bundle, which anyone who can pull it can read:\n        %s\n    keep each in an existing Secret the chart reads (env valueFrom.secretKeyRef, or the chart's existingSecret values), or allow it for this app with `secrets: allowCredentials: true`",
		a.Name, strings.Join(found, "\n        "))
}

type credentialField struct{ field, what string }

func credentialFields(o *Object) []credentialField {
	var out []credentialField
	if o.Kind == "ConfigMap" && o.Group() == "" {
		m, _ := o.Body["data"].(map[string]any)
		for k, v := range m {
			if s, ok := v.(string); ok {
				if what := credentialIn(s); what != "" {
					out = append(out, credentialField{"data." + k, what})
				}
			}
		}
	}
	if path, ok := manifest.PodSpecs[o.Kind]; ok {
		spec, _ := manifest.Lookup(o.Body, path...).(map[string]any)
		for _, kind := range []string{"initContainers", "containers"} {
			list, _ := spec[kind].([]any)
			for _, c := range list {
				cm, _ := c.(map[string]any)
				name, _ := cm["name"].(string)
				env, _ := cm["env"].([]any)
				for _, e := range env {
					em, _ := e.(map[string]any)
					v, _ := em["value"].(string)
					if what := credentialIn(v); what != "" {
						n, _ := em["name"].(string)
						out = append(out, credentialField{fmt.Sprintf("%s[%s].env[%s].value", kind, name, n), what})
					}
				}
			}
		}
	}
	return out
}
