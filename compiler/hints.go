package compiler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/galley-dev/galley/compiler/helm"
)

// A hint is only given once it is proved: a values key is suggested only if
// rendering the chart again with that key set makes the problem go away.
// Guessing from names alone advised `postgresql.existingSecret` for
// Airbyte's unconditional Secret, which changes nothing.

// maxHintRenders bounds the extra renders spent proving hints for one app;
// they only happen when the build already fails.
const maxHintRenders = 24

type prover struct {
	ctx      context.Context
	chart    *helm.Chart
	req      helm.Request
	defaults map[string]any
	renders  int
	tried    map[string]*trial
}

type trial struct {
	docs []helm.Document
	nd   *helm.NondeterminismError
	ok   bool // rendered (with or without non-determinism)
}

func newProver(ctx context.Context, ch *helm.Chart, req helm.Request) *prover {
	return &prover{ctx: ctx, chart: ch, req: req, defaults: helm.DefaultValues(ch), tried: map[string]*trial{}}
}

// hintValue is what a tried key is set to: a name, for keys naming a
// Secret, or a fixed string standing for a pinned value.
const hintValue = "galley-hint"

// with renders the chart with key set, once per key, within the budget.
func (p *prover) with(key string) (*trial, bool) {
	if t, ok := p.tried[key]; ok {
		return t, true
	}
	if p.renders >= maxHintRenders || p.ctx.Err() != nil {
		return nil, false
	}
	p.renders++
	if debugHints {
		fmt.Println("HINT try", key)
	}
	req := p.req
	req.Warn = nil
	req.Values = setKey(copyMap(p.req.Values), key, hintValue)
	docs, err := helm.Render(p.ctx, p.chart, req)
	t := &trial{docs: docs}
	var nd *helm.NondeterminismError
	switch {
	case errors.As(err, &nd):
		t.nd, t.ok = nd, true
	case err == nil:
		t.ok = true
	}
	p.tried[key] = t
	return t, true
}

// unset says the key has no value yet, from the app or the chart: setting
// one that is already set is not a fix the user has not made.
func (p *prover) unset(key string) bool {
	for _, m := range []map[string]any{p.req.Values, p.defaults} {
		v, ok := lookupKey(m, key)
		if ok && v != nil && v != "" {
			return false
		}
	}
	return true
}

// pinned maps each finding (by its String) to the key that removes it and
// whether it does so by dropping the object.
type pinning struct {
	key   string
	drops bool
}

func (p *prover) pinNondeterminism(nd *helm.NondeterminismError) map[string]pinning {
	out := map[string]pinning{}
	score := map[string]int{}
	for _, f := range nd.Found {
		cands := slices.Clone(f.ValuesKeys)
		if file, _, ok := strings.Cut(f.Where, ":"); ok {
			cands = append(cands, helm.TemplateValuesKeys(p.chart, file)...)
		}
		if f.Source != "" {
			cands = append(cands, helm.TemplateValuesKeys(p.chart, f.Source)...)
		}
		for _, k := range cands {
			s := similarity(k, f.Object+" "+f.Field)
			if slices.Contains(f.ValuesKeys, k) {
				s += 4
			}
			score[k] = max(score[k], s)
		}
	}
	keys := rankedKeys(score)
	for _, k := range keys {
		if len(out) == len(nd.Found) {
			break
		}
		if !p.unset(k) {
			continue
		}
		t, ok := p.with(k)
		if !ok {
			break
		}
		if !t.ok {
			continue
		}
		left := map[string]bool{}
		if t.nd != nil {
			for _, f := range t.nd.Found {
				left[findingID(f)] = true
			}
		}
		for _, f := range nd.Found {
			id := findingID(f)
			if _, done := out[id]; done || left[id] {
				continue
			}
			out[id] = pinning{key: k, drops: f.Object != "" && !hasObject(t.docs, f.Object)}
		}
	}
	return out
}

func findingID(f helm.Nondeterministic) string {
	return f.Object + "\x00" + f.Field + "\x00" + f.Func + "\x00" + f.Where + "\x00" + f.Refused
}

// secretKeys finds, for each Secret with data (Kind/name), the values keys
// that make the chart stop rendering it.
func (p *prover) secretKeys(secrets []*Object) (fixes, tried map[string][]string) {
	score := map[string]int{}
	for _, k := range helm.SecretValuesKeys(p.chart) {
		score[k] = 0
	}
	for _, o := range secrets {
		for _, k := range helm.TemplateValuesKeys(p.chart, o.Source) {
			if isSecretKey(k) {
				score[k] = 0
			}
		}
	}
	// Each Secret tries its own likeliest keys first; every render is
	// checked against all of them.
	out := map[string][]string{}
	tried = map[string][]string{}
	check := func(k string) bool {
		t, ok := p.with(k)
		if !ok {
			return false
		}
		if t.ok {
			for _, o := range secrets {
				id := "Secret/" + o.Name
				if !hasSecretData(t.docs, o.Name) && !slices.Contains(out[id], k) {
					out[id] = append(out[id], k)
				}
			}
		}
		return true
	}
	for _, o := range secrets {
		ranked := map[string]int{}
		for k := range score {
			ranked[k] = similarity(k, o.Name+" "+o.Source)
		}
		tries := 0
		for _, k := range rankedKeys(ranked) {
			if len(out["Secret/"+o.Name]) > 0 || tries == 5 {
				break
			}
			if !p.unset(k) {
				continue
			}
			tries++
			if !check(k) {
				return out, tried
			}
			tried["Secret/"+o.Name] = append(tried["Secret/"+o.Name], k)
		}
	}
	return out, tried
}

func isSecretKey(k string) bool {
	last := k[strings.LastIndex(k, ".")+1:]
	l := strings.ToLower(last)
	return (strings.HasPrefix(l, "existing") && strings.Contains(l, "secret")) ||
		strings.HasSuffix(l, "secretname") || strings.HasPrefix(l, "provisionsecret")
}

// similarity ranks a key by how much its last word looks like the thing
// it is to fix (webserverSecretKey for data.webserver-secret-key).
func similarity(key, about string) int {
	last := norm(key[strings.LastIndex(key, ".")+1:])
	a := norm(about)
	s := 0
	if last != "" && strings.Contains(a, last) {
		s += 3
	}
	for _, part := range strings.Split(key, ".") {
		if n := norm(part); len(n) > 3 && strings.Contains(a, n) {
			s++
		}
	}
	return s
}

func norm(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	n := b.String()
	// existingSecret, secretName say what kind of value it is, not what
	// it is for: only the rest of the name can match.
	n = strings.TrimPrefix(n, "existing")
	for _, suffix := range []string{"secretname", "secret", "name"} {
		n = strings.TrimSuffix(n, suffix)
	}
	if len(n) <= 3 {
		return ""
	}
	return n
}

func rankedKeys(score map[string]int) []string {
	keys := make([]string, 0, len(score))
	for k := range score {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if score[keys[i]] != score[keys[j]] {
			return score[keys[i]] > score[keys[j]]
		}
		return keys[i] < keys[j]
	})
	return keys
}

type docHead struct {
	Kind     string `json:"kind"`
	Metadata struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Data       map[string]any `json:"data"`
	StringData map[string]any `json:"stringData"`
}

func heads(docs []helm.Document) []docHead {
	var out []docHead
	for _, d := range docs {
		var h docHead
		if yaml.Unmarshal(d.YAML, &h) == nil {
			out = append(out, h)
		}
	}
	return out
}

func hasObject(docs []helm.Document, kindName string) bool {
	for _, h := range heads(docs) {
		if h.Kind+"/"+h.Metadata.Name == kindName {
			return true
		}
	}
	return false
}

func hasSecretData(docs []helm.Document, name string) bool {
	for _, h := range heads(docs) {
		if h.Kind == "Secret" && h.Metadata.Name == name && len(h.Data)+len(h.StringData) > 0 {
			return true
		}
	}
	return false
}

// deletePatch is the app patch that drops a Secret from the bundle.
func deletePatch(name string) string {
	return fmt.Sprintf(`patches: [{patch: {apiVersion: "v1", kind: "Secret", metadata: name: %q, "$patch": "delete"}}]`, name)
}

func copyMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if c, ok := v.(map[string]any); ok {
			v = copyMap(c)
		}
		out[k] = v
	}
	return out
}

func setKey(m map[string]any, key string, v any) map[string]any {
	parts := strings.Split(key, ".")
	cur := m
	for _, p := range parts[:len(parts)-1] {
		next, ok := cur[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			cur[p] = next
		}
		cur = next
	}
	cur[parts[len(parts)-1]] = v
	return m
}

func lookupKey(m map[string]any, key string) (any, bool) {
	var cur any = m
	for _, p := range strings.Split(key, ".") {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = mm[p]; !ok {
			return nil, false
		}
	}
	return cur, true
}

var debugHints = false
