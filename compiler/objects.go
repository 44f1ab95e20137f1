package compiler

import (
	"github.com/galley-dev/galley/compiler/manifest"
)

// Object is one rendered object (compiler/manifest) with what the
// compiler learns of it while building.
type Object struct {
	manifest.Object
	crd *crdFacts
	// preHook says the object is a pre-install hook that Flux applies
	// with a Kustomization of its own (hooks.go).
	preHook bool
}

// parseObject reads one YAML document of a render (manifest.Parse); nil
// for an empty document.
func parseObject(doc []byte, source string) (*Object, error) {
	m, err := manifest.Parse(doc, source)
	if m == nil || err != nil {
		return nil, err
	}
	return &Object{Object: *m}, nil
}

// fileNames gives each object its file name in its app directory
// (manifest.FileNames).
func fileNames(objs []*Object) []string {
	ms := make([]*manifest.Object, len(objs))
	for i, o := range objs {
		ms[i] = &o.Object
	}
	return manifest.FileNames(ms)
}
