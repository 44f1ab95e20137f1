package sign

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Where CI systems hand out OIDC identity tokens for Sigstore: GitLab CI and
// cosign read SIGSTORE_ID_TOKEN (an `id_tokens:` entry with aud: sigstore);
// GitHub Actions serves one per request at ACTIONS_ID_TOKEN_REQUEST_URL,
// authenticated with ACTIONS_ID_TOKEN_REQUEST_TOKEN, when the job has
// `permissions: id-token: write` (cosign pkg/providers/github).
const (
	EnvSigstoreIDToken     = "SIGSTORE_ID_TOKEN" // #nosec G101 -- the name of a variable, not a credential
	EnvGitHubTokenURL      = "ACTIONS_ID_TOKEN_REQUEST_URL"
	EnvGitHubRequestToken  = "ACTIONS_ID_TOKEN_REQUEST_TOKEN"
	SigstoreTokenAudience  = "sigstore"
	maxTokenResponseLength = 1 << 20
)

// ErrNoIDToken: keyless signing found no OIDC identity token.
var ErrNoIDToken = errors.New("keyless signing needs an OIDC identity token: set " + EnvSigstoreIDToken + " (GitLab CI: an id_tokens entry with aud: sigstore), or run in GitHub Actions with `permissions: id-token: write`")

// EnvTokenSource returns the TokenSource of the environment getenv reads:
// SIGSTORE_ID_TOKEN when set, else GitHub Actions' token request (audience
// sigstore) through client, else a source that fails with ErrNoIDToken.
// source names where the token comes from, for messages.
func EnvTokenSource(getenv func(string) string, client *http.Client) (ts TokenSource, source string) {
	if t := strings.TrimSpace(getenv(EnvSigstoreIDToken)); t != "" {
		return func(context.Context) (string, error) { return t, nil }, EnvSigstoreIDToken
	}
	reqURL, reqToken := getenv(EnvGitHubTokenURL), getenv(EnvGitHubRequestToken)
	if reqURL != "" && reqToken != "" {
		return func(ctx context.Context) (string, error) {
			return githubIDToken(ctx, client, reqURL, reqToken)
		}, EnvGitHubTokenURL
	}
	return func(context.Context) (string, error) { return "", ErrNoIDToken }, ""
}

// githubIDToken asks GitHub Actions for an ID token with audience sigstore
// (GitHub's token request API: GET <url>&audience=..., bearer the request
// token, answer {"value": "<jwt>"}).
func githubIDToken(ctx context.Context, client *http.Client, reqURL, reqToken string) (string, error) {
	u, err := url.Parse(reqURL)
	if err != nil {
		return "", fmt.Errorf("%s: %w", EnvGitHubTokenURL, err)
	}
	q := u.Query()
	q.Set("audience", SigstoreTokenAudience)
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", fmt.Errorf("GitHub Actions ID token request: %w", err)
	}
	req.Header.Set("Authorization", "bearer "+reqToken)
	req.Header.Set("Accept", "application/json")
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req) // #nosec G704 -- the URL is GitHub Actions' own token endpoint
	if err != nil {
		return "", fmt.Errorf("GitHub Actions ID token request to %s: %w", u.Host, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenResponseLength))
	if err != nil {
		return "", fmt.Errorf("GitHub Actions ID token response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GitHub Actions ID token request to %s: HTTP %d (does the job have `permissions: id-token: write`?)", u.Host, resp.StatusCode)
	}
	var out struct {
		Value string `json:"value"`
	}
	if err := json.Unmarshal(body, &out); err != nil || out.Value == "" {
		return "", fmt.Errorf("GitHub Actions ID token response from %s: no token in it", u.Host)
	}
	return out.Value, nil
}
