package stack

import (
	"fmt"
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

// FluxVerify names the Secret with the cosign public key Flux checks the
// bundle's signature with.
type FluxVerify struct {
	Provider  string `json:"provider"`
	SecretRef string `json:"secretRef"`
}

// CheckFlux finds what the schema cannot check in delivery.flux: a semver
// range Flux could not parse. Flux parses ref.semver with the same
// library, so a range accepted here is one Flux accepts.
func (s *Stack) CheckFlux() Errors {
	f := s.Delivery.Flux
	if f == nil || f.Ref.Semver == "" {
		return nil
	}
	if _, err := semver.NewConstraint(f.Ref.Semver); err != nil {
		return Errors{s.fluxErrAt("ref.semver", "semver range %q: %v (e.g. \"~1.4.0\" or \">=1.4.0 <2.0.0\")", f.Ref.Semver, err)}
	}
	return nil
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
