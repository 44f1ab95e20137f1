package compiler

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCredentialIn(t *testing.T) {
	for s, want := range map[string]string{
		"https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXXXXXXXXXX":   "a Slack webhook URL",
		"slack_api_url: https://hooks.slack.com/services/T0/B0/abcdefghijklmn":  "a Slack webhook URL",
		"postgresql://airflow:s3cret@db:5432/airflow":                           "a URL with a password",
		"-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn...":                        "a private key",
		"-----BEGIN RSA PRIVATE KEY-----":                                       "a private key",
		"token: ghp_" + strings.Repeat("a", 36):                                 "a GitHub token",
		"xoxb-123456789012-abcdefghij":                                          "a Slack token",
		"AKIAIOSFODNN7EXAMPLE":                                                  "an AWS access key",
		"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w": "a JSON web token",
		// Not credentials.
		"postgresql://airflow:$(DB_PASSWORD)@db:5432/airflow": "",
		"postgresql://airflow@db:5432/airflow":                "",
		"https://hooks.slack.com/":                            "",
		"-----BEGIN CERTIFICATE-----":                         "",
		"-----BEGIN PUBLIC KEY-----":                          "",
		"http://user:${PASSWORD}@proxy:3128":                  "",
		"info":                                                "",
		"https://example.com/a:b@c":                           "",
	} {
		if got := credentialIn(s); got != want {
			t.Errorf("credentialIn(%q) = %q, want %q", s, got, want)
		}
	}
}

// credentialInUnfiltered is credentialIn without the literal prefilter.
func credentialInUnfiltered(s string) string {
	for _, p := range credentialPatterns {
		if p.re.MatchString(s) {
			return p.what
		}
	}
	for _, m := range urlWithUserinfo.FindAllString(s, -1) {
		if u, err := url.Parse(m); err == nil && u.User != nil {
			if pw, ok := u.User.Password(); ok && pw != "" && !placeholder(pw) {
				return "a URL with a password"
			}
		}
	}
	return ""
}

// The prefilter only skips patterns that cannot match: every match of
// every pattern holds one of its literals, on each credential shape and
// on every line of the real charts' reference renders.
func TestCredentialPrefilterExact(t *testing.T) {
	inputs := []string{
		"https://hooks.slack.com/workflows/ABCDEFGHIJKL", "-----BEGIN PRIVATE KEY-----", "-----BEGIN EC PRIVATE KEY-----",
		"gho_" + strings.Repeat("b", 36), "ghu_" + strings.Repeat("c", 40), "ghs_" + strings.Repeat("d", 36), "ghr_" + strings.Repeat("e", 36),
		"github_pat_" + strings.Repeat("f", 30), "glpat-" + strings.Repeat("g", 20), "xoxp-1234567890", "xoxa-abcdefghijk",
		"ASIAIOSFODNN7EXAMPLE", "AIza" + strings.Repeat("h", 35), "sk_live_" + strings.Repeat("i", 24), "sk_test_" + strings.Repeat("j", 20),
		"sk-" + strings.Repeat("k", 32), "redis://default:pw@redis:6379/0", "amqp://u:p@rabbit/",
	}
	for _, p := range credentialPatterns {
		inputs = append(inputs, p.re.String())
	}
	root, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	golden, err := filepath.Glob(filepath.Join(filepath.Dir(filepath.Dir(root)), "shared", "charts", "_golden", "*.yaml"))
	if err != nil || len(golden) == 0 {
		t.Fatalf("the real chart corpus is missing (%v): it lives in ../shared/charts beside the checkout", err)
	}
	for _, g := range golden {
		data, err := os.ReadFile(g)
		if err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, strings.Split(string(data), "\n")...)
	}
	found, seen := 0, map[string]bool{}
	for _, s := range inputs {
		if seen[s] {
			continue
		}
		seen[s] = true
		for _, p := range credentialPatterns {
			for _, m := range p.re.FindAllString(s, -1) {
				if !containsAny(m, p.needs) {
					t.Errorf("%s matches %q, which holds none of %q", p.what, m, p.needs)
				}
			}
		}
		got, want := credentialIn(s), credentialInUnfiltered(s)
		if got != want {
			t.Errorf("credentialIn(%.80q) = %q, without the prefilter %q", s, got, want)
		}
		if want != "" {
			found++
		}
	}
	if found < 18 {
		t.Errorf("only %d inputs hold a credential, want at least the 18 shapes above", found)
	}
}
