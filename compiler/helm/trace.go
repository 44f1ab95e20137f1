package helm

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/Masterminds/sprig/v3"
	"helm.sh/helm/v4/pkg/chart/common"
)

// How galley finds output that is not a function of the input, in one
// render.
//
// Every function whose result is not a function of its arguments (random
// strings, keys and certificates, UUIDs, the clock) is replaced by one that
// returns a sentinel: a string no chart writes by itself ("galleyrnd0007q")
// that names the call, a certificate made of two of them, a number with a
// recognisable decimal form. Every other template function is wrapped so
// that when it is given a traced value and returns something that no
// longer contains it (b64enc, sha256sum, upper...), what it returned is
// traced in turn. A value that reaches the output is then found in the
// output, with the call it came from. A value that is thrown away (
// `.Values.x | default (randAlphaNum 16)` with x set) never is: no false
// alarm. What cannot be followed into the output (a number, a boolean, a
// string too short to look for, the clock when it is not pinned) is
// refused: it may decide what the chart renders.
//
// The functions helm defines itself (toYaml, toJson, fromYaml, include,
// tpl...) are not wrapped: helm gives no access to them. They keep a traced
// string whole (YAML and JSON do not escape [a-z0-9]), and what include
// and tpl render goes through the wrapped functions. The comparison and
// indexing built into text/template (eq, lt, len, index) cannot be
// replaced without changing their semantics: a call whose value the
// template gives to one of them, directly, down a pipeline or through a
// variable, is found when the templates are parsed (sites.go) and refused.

// ndKind says what a non-deterministic function returns.
type ndKind int

const (
	ndString ndKind = iota // a string: randAlphaNum, uuidv4, genPrivateKey...
	ndInt                  // randInt
	ndCert                 // genCA...: a struct with Cert and Key
	ndClock                // now, and the date functions given no time
)

// nondeterministic lists the functions traced, with what they return.
var nondeterministic = map[string]ndKind{
	"randAlphaNum": ndString, "randAlpha": ndString, "randNumeric": ndString, "randAscii": ndString,
	"randBytes": ndString, "uuidv4": ndString, "shuffle": ndString,
	"genPrivateKey": ndString, "bcrypt": ndString, "htpasswd": ndString, "encryptAES": ndString,
	"randInt": ndInt,
	"genCA":   ndCert, "genCAWithKey": ndCert, "genSelfSignedCert": ndCert, "genSelfSignedCertWithKey": ndCert,
	"genSignedCert": ndCert, "genSignedCertWithKey": ndCert,
	"now": ndClock, "date": ndClock, "dateInZone": ndClock, "date_in_zone": ndClock,
	"htmlDate": ndClock, "htmlDateInZone": ndClock, "ago": ndClock,
}

// helmOwn are the functions helm's engine defines over sprig's: the tracer
// must not put sprig's versions back.
var helmOwn = map[string]bool{
	"env": true, "expandenv": true, "fail": true, "getHostByName": true,
	"toToml": true, "mustToToml": true, "fromToml": true, "toYaml": true, "mustToYaml": true,
	"toYamlPretty": true, "fromYaml": true, "fromYamlArray": true, "toJson": true, "mustToJson": true,
	"fromJson": true, "fromJsonArray": true, "include": true, "tpl": true, "required": true, "lookup": true,
}

// selecting functions return one of their arguments: when a traced
// argument is not the one returned, nothing traced comes out.
// shapeOnly functions look at the shape of their arguments (keys, kinds,
// emptiness), which a sentinel shares with the value it stands for.
var (
	selecting = map[string]bool{
		"default": true, "coalesce": true, "ternary": true, "first": true, "mustFirst": true,
		"last": true, "mustLast": true, "dig": true, "get": true, "pluck": true, "pick": true, "omit": true,
		"set": true, "unset": true, "merge": true, "mergeOverwrite": true, "mustMerge": true, "mustMergeOverwrite": true,
	}
	shapeOnly = map[string]bool{
		"hasKey": true, "keys": true, "kindIs": true, "kindOf": true, "typeOf": true, "typeIs": true,
		"typeIsLike": true, "empty": true,
	}
)

const (
	tokenPrefix = "galleyrnd"
	// minTraceable is the shortest derived string looked for in the
	// output; anything shorter could match by chance.
	minTraceable = 8
	// intBase makes randInt's sentinels 10-digit numbers.
	intBase = 9_170_000_000
)

// A taint is a traced value as it can be found in the output.
type taint struct {
	text  string
	calls []int    // indexes into tracer.calls
	via   []string // the functions it went through after the call
}

// A call is one call of a non-deterministic function during the render.
type call struct {
	fn   string
	site *site // nil: called under its plain name (from tpl)
}

// A problem is a traced value the tracer cannot follow.
type problem struct {
	calls  []int
	via    []string
	reason string
}

type tracer struct {
	sites    []*site
	now      *time.Time // pinned clock, or nil
	calls    []call
	taints   []taint
	tokens   []int // indexes of taints that are sentinel strings
	derived  []int // indexes of the other taints
	problems []problem
}

// funcs returns the template functions of one render.
func (tr *tracer) funcs() template.FuncMap {
	sp := sprig.TxtFuncMap()
	fm := template.FuncMap{}
	for name, fn := range sp {
		if helmOwn[name] {
			continue
		}
		if _, nd := nondeterministic[name]; nd {
			fm[name] = tr.traced(name, sp[name], nil)
			continue
		}
		fm[name] = tr.wrap(name, fn)
	}
	for i, s := range tr.sites {
		fm[siteFuncName(s.Func, i)] = tr.traced(s.Func, sp[s.Func], s)
	}
	// The printing builtins of text/template are fmt's; wrapping them
	// keeps `printf "%.4s"` and `printf "%x"` traced.
	fm["printf"] = tr.wrap("printf", fmt.Sprintf)
	fm["print"] = tr.wrap("print", fmt.Sprint)
	fm["println"] = tr.wrap("println", fmt.Sprintln)
	// sprig's keys and values follow Go's map order, random on each call:
	// these give keys sorted, and values in the order of their sorted keys,
	// so the two still line up. Helm can print this order too.
	fm["keys"] = tr.wrap("keys", sortedKeys)
	fm["values"] = tr.wrap("values", sortedValues)
	// As helm without --enable-dns: no lookups, the same answer each time.
	fm["getHostByName"] = func(string) string { return "" }
	return fm
}

func (tr *tracer) newCall(fn string, s *site) int {
	tr.calls = append(tr.calls, call{fn, s})
	c := len(tr.calls) - 1
	if s != nil && s.Compared != "" && nondeterministic[fn] != ndClock {
		tr.problems = append(tr.problems, problem{calls: []int{c},
			reason: "is given to the template's built-in " + s.Compared + ", which galley cannot trace"})
	}
	return c
}

// token returns a new sentinel for call c, n characters long when n is
// more than the sentinel's own length (a chart may cut it to n).
func (tr *tracer) token(c int, n int) string {
	t := fmt.Sprintf("%s%06dq", tokenPrefix, len(tr.taints))
	tr.taints = append(tr.taints, taint{text: t, calls: []int{c}})
	tr.tokens = append(tr.tokens, len(tr.taints)-1)
	if n > len(t) {
		t += strings.Repeat("q", n-len(t))
	}
	return t
}

type sentinelCert struct {
	Cert string
	Key  string
}

// traced returns the replacement for the non-deterministic function fn
// (orig is sprig's) at site s.
func (tr *tracer) traced(fn string, orig any, s *site) any {
	switch nondeterministic[fn] {
	case ndInt:
		return func(min, max int) int {
			c := tr.newCall(fn, s)
			v := intBase + c
			tr.taints = append(tr.taints, taint{text: strconv.Itoa(v), calls: []int{c}})
			tr.derived = append(tr.derived, len(tr.taints)-1)
			return v
		}
	case ndCert:
		return func(args ...any) (sentinelCert, error) {
			c := tr.newCall(fn, s)
			return sentinelCert{Cert: tr.token(c, 0), Key: tr.token(c, 0)}, nil
		}
	case ndClock:
		return tr.clock(fn, orig, s)
	}
	return func(args ...any) string {
		c := tr.newCall(fn, s)
		n := 0
		if len(args) > 0 {
			if i, ok := args[0].(int); ok {
				n = i
			}
		}
		return tr.token(c, n)
	}
}

// clock replaces now and the date functions, which read the clock when
// given no time: with a pinned clock they use it; without, the call is
// refused and the render goes on with time zero, so that every other
// problem is found in the same render.
func (tr *tracer) clock(fn string, orig any, s *site) any {
	pinned := func() time.Time {
		if tr.now != nil {
			return *tr.now
		}
		c := tr.newCall(fn, s)
		tr.problems = append(tr.problems, problem{calls: []int{c}, reason: "reads the clock"})
		return time.Unix(0, 0).UTC()
	}
	// As sprig's dateInZone: these are the times it takes; anything else
	// (nil, a string) makes it read the clock.
	explicit := func(d any) bool {
		switch t := d.(type) {
		case time.Time, int64, int, int32:
			return true
		case *time.Time:
			return t != nil
		}
		return false
	}
	pick := func(d any) any {
		if explicit(d) {
			return d
		}
		return pinned()
	}
	switch fn {
	case "now":
		return func() time.Time { return pinned() }
	case "ago":
		return func(d any) string {
			var t time.Time
			switch x := d.(type) {
			case time.Time:
				t = x
			case int64:
				t = time.Unix(x, 0)
			case int:
				t = time.Unix(int64(x), 0)
			}
			return pinned().Sub(t).Round(time.Second).String()
		}
	case "htmlDate":
		f := orig.(func(any) string)
		return func(d any) string { return f(pick(d)) }
	case "htmlDateInZone":
		f := orig.(func(any, string) string)
		return func(d any, zone string) string { return f(pick(d), zone) }
	case "date":
		f := orig.(func(string, any) string)
		return func(layout string, d any) string { return f(layout, pick(d)) }
	default: // dateInZone, date_in_zone
		f := orig.(func(string, any, string) string)
		return func(layout string, d any, zone string) string { return f(layout, pick(d), zone) }
	}
}

// wrap returns fn, following traced values through it.
func (tr *tracer) wrap(name string, fn any) any {
	v := reflect.ValueOf(fn)
	t := v.Type()
	if t.Kind() != reflect.Func {
		return fn
	}
	return reflect.MakeFunc(t, func(args []reflect.Value) []reflect.Value {
		var out []reflect.Value
		if t.IsVariadic() {
			out = v.CallSlice(args)
		} else {
			out = v.Call(args)
		}
		if len(tr.taints) == 0 || len(out) == 0 {
			return out
		}
		if len(out) == 2 && !out[1].IsNil() {
			return out // an error stops the render anyway
		}
		var in []int
		for _, a := range args {
			in = tr.find(a, 0, in)
		}
		if len(in) == 0 {
			return out
		}
		if tr.find(out[0], 0, nil) != nil || selecting[name] || shapeOnly[name] {
			// Still carries the traced value whole, or returned an
			// untraced argument, or looked only at the shape.
			return out
		}
		calls, via := tr.origin(in)
		via = append(via, name)
		if s, ok := asString(out[0]); ok && len(s) >= minTraceable {
			tr.taints = append(tr.taints, taint{text: s, calls: calls, via: via})
			tr.derived = append(tr.derived, len(tr.taints)-1)
			return out
		}
		tr.problems = append(tr.problems, problem{calls: calls, via: via,
			reason: fmt.Sprintf("becomes %s, which cannot be traced into the output", describe(out[0]))})
		return out
	}).Interface()
}

func asString(v reflect.Value) (string, bool) {
	for v.Kind() == reflect.Interface && !v.IsNil() {
		v = v.Elem()
	}
	switch {
	case v.Kind() == reflect.String:
		return v.String(), true
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Uint8:
		return string(v.Bytes()), true
	}
	return "", false
}

func describe(v reflect.Value) string {
	for v.Kind() == reflect.Interface && !v.IsNil() {
		v = v.Elem()
	}
	if s, ok := asString(v); ok {
		return fmt.Sprintf("the %d-character string %q", len(s), s)
	}
	if !v.IsValid() {
		return "nothing"
	}
	return fmt.Sprintf("the %s %v", v.Type(), v)
}

var valuesType = reflect.TypeOf(common.Values{})

// find appends to acc the taints v holds: in a string, or (a few levels
// down) in a map, slice or certificate. Helm's .Values tree is not
// searched: what a template stores there is found when read back.
func (tr *tracer) find(v reflect.Value, depth int, acc []int) []int {
	for v.Kind() == reflect.Interface || v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return acc
		}
		v = v.Elem()
	}
	if s, ok := asString(v); ok {
		return tr.findIn(s, acc)
	}
	if depth > 4 || v.Type() == valuesType {
		return acc
	}
	switch v.Kind() {
	case reflect.Map:
		it := v.MapRange()
		for it.Next() {
			acc = tr.find(it.Key(), depth+1, acc)
			acc = tr.find(it.Value(), depth+1, acc)
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			acc = tr.find(v.Index(i), depth+1, acc)
		}
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(sentinelCert{}) {
			acc = tr.findIn(v.Field(0).String(), acc)
			acc = tr.findIn(v.Field(1).String(), acc)
		}
	case reflect.Int, reflect.Int64, reflect.Int32:
		acc = tr.findIn(strconv.FormatInt(v.Int(), 10), acc)
	}
	return acc
}

// findIn appends the taints s contains.
func (tr *tracer) findIn(s string, acc []int) []int {
	if strings.Contains(s, tokenPrefix) {
		for _, i := range tr.tokens {
			if strings.Contains(s, tr.taints[i].text) && !slices.Contains(acc, i) {
				acc = append(acc, i)
			}
		}
	}
	for _, i := range tr.derived {
		if strings.Contains(s, tr.taints[i].text) && !slices.Contains(acc, i) {
			acc = append(acc, i)
		}
	}
	return acc
}

// origin merges the calls and paths of several taints.
func (tr *tracer) origin(ts []int) (calls []int, via []string) {
	for _, i := range ts {
		for _, c := range tr.taints[i].calls {
			if !slices.Contains(calls, c) {
				calls = append(calls, c)
			}
		}
		if len(tr.taints[i].via) > len(via) {
			via = slices.Clone(tr.taints[i].via)
		}
	}
	return calls, via
}

func sortedKeys(dicts ...map[string]any) []string {
	var out []string
	for _, d := range dicts {
		ks := make([]string, 0, len(d))
		for k := range d {
			ks = append(ks, k)
		}
		slices.Sort(ks)
		out = append(out, ks...)
	}
	return out
}

func sortedValues(dict map[string]any) []any {
	ks := sortedKeys(dict)
	out := make([]any, len(ks))
	for i, k := range ks {
		out[i] = dict[k]
	}
	return out
}
