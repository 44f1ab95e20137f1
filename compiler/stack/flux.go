package stack

import (
	"fmt"
	"regexp"
	"strings"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/token"
	"github.com/Masterminds/semver/v3"
)

// Flux configures the generated Flux objects (delivery.flux).
type Flux struct {
	Repository string      `json:"repository"`
	Namespace  string      `json:"namespace"`
	Interval   string      `json:"interval"`
	Timeout    string      `json:"timeout,omitempty"`
	Ref        FluxRef     `json:"ref"`
	Verify     *FluxVerify `json:"verify,omitempty"`
	PullSecret string      `json:"pullSecret,omitempty"`
	Prune      bool        `json:"prune"`
	Wait       bool        `json:"wait"`
}

// FluxRef selects the bundle version Flux deploys: at most one field is
// set; neither means the tag of the stack version.
type FluxRef struct {
	Tag    string `json:"tag,omitempty"`
	Semver string `json:"semver,omitempty"`
}

// FluxVerify says what Flux checks the bundle's signature with: the Secret
// with the cosign public key, or the keyless identities (and a private
// Sigstore's trusted root).
type FluxVerify struct {
	Provider             string             `json:"provider"`
	SecretRef            string             `json:"secretRef,omitempty"`
	MatchOIDCIdentity    []FluxOIDCIdentity `json:"matchOIDCIdentity,omitempty"`
	TrustedRootSecretRef string             `json:"trustedRootSecretRef,omitempty"`
}

// FluxOIDCIdentity is one keyless signer: issuer and subject regexps.
type FluxOIDCIdentity struct {
	Issuer  string `json:"issuer"`
	Subject string `json:"subject"`
}

// CheckFlux finds what the schema cannot check in delivery.flux: a semver
// range Flux could not parse. Flux parses ref.semver with the same
// library, so a range accepted here is one Flux accepts.
//
// It also checks verify: a key or keyless identities, not both (Flux would
// use the key and ignore the identities) and not neither (Flux would accept
// a keyless signature from anyone), with regular expressions Go (and so
// Flux) compiles.
func (s *Stack) CheckFlux() Errors {
	f := s.Delivery.Flux
	if f == nil {
		return nil
	}
	var errs Errors
	if f.Ref.Semver != "" {
		if _, err := semver.NewConstraint(f.Ref.Semver); err != nil {
			errs = append(errs, s.fluxErrAt("ref.semver", "semver range %q: %v (e.g. \"~1.4.0\" or \">=1.4.0 <2.0.0\")", f.Ref.Semver, err))
		}
	}
	if v := f.Verify; v != nil {
		switch {
		case v.SecretRef != "" && len(v.MatchOIDCIdentity) > 0:
			errs = append(errs, s.fluxErrAt("verify", "secretRef and matchOIDCIdentity exclude each other: Flux checks the key and ignores the identities; keep secretRef for push --key, matchOIDCIdentity for push --keyless"))
		case v.SecretRef == "" && len(v.MatchOIDCIdentity) == 0:
			errs = append(errs, s.fluxErrAt("verify", "verify needs secretRef (a Secret with the cosign public key) or matchOIDCIdentity (the keyless signers): without either Flux accepts a keyless signature from anyone"))
		}
		for i, id := range v.MatchOIDCIdentity {
			for _, re := range []struct{ field, value string }{{"issuer", id.Issuer}, {"subject", id.Subject}} {
				if _, err := regexp.Compile(re.value); err != nil {
					errs = append(errs, s.fluxErrAt(fmt.Sprintf("verify.matchOIDCIdentity[%d].%s", i, re.field), "%s %q is not a Go regular expression (Flux compiles it with Go): %v", re.field, re.value, err))
				}
			}
		}
	}
	return errs
}

// fluxErrAt builds an Error at a field below delivery.flux.
func (s *Stack) fluxErrAt(field, format string, args ...any) *Error {
	return &Error{
		Pos:  s.fluxPos(field),
		Path: "stack.delivery.flux." + field,
		Msg:  fmt.Sprintf(format, args...),
	}
}

// fluxPos is the user's position of a field below delivery.flux, or of the
// closest enclosing field that has one.
func (s *Stack) fluxPos(field string) token.Pos {
	path := "delivery.flux." + field
	for {
		if p := userPos(s.value.LookupPath(cue.ParsePath(path))); p.IsValid() {
			return p
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return token.NoPos
		}
		path = path[:i]
	}
}
