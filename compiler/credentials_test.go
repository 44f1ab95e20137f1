package compiler

import (
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
