package stack

import (
	"path/filepath"
	"strconv"
	"strings"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/build"
	"cuelang.org/go/cue/load"
	"cuelang.org/go/cue/token"
)

// checkCUEFiles applies the root to what CUE itself reads: the package's
// files and those of the packages it imports (any of which may be a link),
// and the files @embed attributes bring in, which CUE keeps inside the
// module but reads through links. It runs before the instance is built,
// so nothing outside the root is read, nor quoted in an error.
func checkCUEFiles(inst *build.Instance, dir string, root resolvedRoot, overlay map[string]load.Source) Errors {
	if root.AllowOutside {
		return nil
	}
	var errs Errors
	seen := map[*build.Instance]bool{}
	var visit func(*build.Instance)
	visit = func(inst *build.Instance) {
		if seen[inst] {
			return
		}
		seen[inst] = true
		// Files that did not parse count too: a parse error quotes them.
		var names []string
		for _, fs := range [][]*build.File{inst.BuildFiles, inst.InvalidFiles, inst.IgnoredFiles} {
			for _, f := range fs {
				names = append(names, f.Filename)
			}
		}
		bad := map[string]bool{}
		for _, name := range names {
			if _, ok := overlay[name]; ok || bad[name] || !filepath.IsAbs(name) {
				continue // galley's own schema, or not a file
			}
			shown := name
			if rel, err := filepath.Rel(dir, name); err == nil {
				shown = filepath.ToSlash(rel)
			}
			if err := root.check("CUE file", shown, name); err != nil {
				bad[name] = true
				errs = append(errs, &Error{Pos: token.NewFile(name, -1, 0).Pos(0, token.NoRelPos), Msg: err.Error()})
			}
		}
		for _, f := range inst.Files {
			if _, ok := overlay[f.Filename]; !ok && !bad[f.Filename] {
				errs = append(errs, checkEmbeds(f, root)...)
			}
		}
		for _, imp := range inst.Imports {
			visit(imp)
		}
	}
	visit(inst)
	return errs
}

// checkEmbeds checks the files of each @embed(file=...) and
// @embed(glob=...) attribute in f.
func checkEmbeds(f *ast.File, root resolvedRoot) Errors {
	var errs Errors
	dir := filepath.Dir(f.Filename)
	ast.Walk(f, func(n ast.Node) bool {
		a, ok := n.(*ast.Attribute)
		if !ok {
			return true
		}
		name, body := a.Split()
		if name != "embed" {
			return true
		}
		args := attrArgs(body)
		var paths []string
		if file := args["file"]; file != "" {
			paths = append(paths, file)
		}
		if glob := args["glob"]; glob != "" {
			matches, err := filepath.Glob(filepath.Join(dir, filepath.FromSlash(glob)))
			if err != nil {
				return true // CUE reports the bad pattern
			}
			for _, m := range matches {
				rel, err := filepath.Rel(dir, m)
				if err != nil {
					rel = m
				}
				paths = append(paths, filepath.ToSlash(rel))
			}
		}
		for _, p := range paths {
			if err := root.check("embedded file", p, filepath.Join(dir, filepath.FromSlash(p))); err != nil {
				errs = append(errs, &Error{Pos: a.Pos(), Msg: err.Error()})
			}
		}
		return true
	}, nil)
	return errs
}

// attrArgs reads the key=value arguments of an attribute body, values
// quoted or not: file="a.json", type=json.
func attrArgs(body string) map[string]string {
	out := map[string]string{}
	for len(body) > 0 {
		var arg string
		// A comma inside a quoted value does not end the argument.
		inQuote := false
		i := 0
		for ; i < len(body); i++ {
			c := body[i]
			if c == '\\' && inQuote {
				i++
				continue
			}
			if c == '"' {
				inQuote = !inQuote
			}
			if c == ',' && !inQuote {
				break
			}
		}
		arg, body = body[:min(i, len(body))], body[min(i+1, len(body)):]
		k, v, ok := strings.Cut(strings.TrimSpace(arg), "=")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		if u, err := strconv.Unquote(v); err == nil {
			v = u
		}
		out[strings.TrimSpace(k)] = v
	}
	return out
}
