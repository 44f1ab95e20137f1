package bundles_test

import (
	"fmt"
	"os"

	"github.com/galley-dev/galley/bundles"
)

// ExamplePack pins the digest of a tiny bundle: any change to the tar, gzip
// or manifest format changes this output, and must be deliberate.
func ExamplePack() {
	tree := bundles.NewTree()
	for name, data := range map[string]string{
		bundles.IndexPath:          `{"apps":["web"]}`,
		"apps/web/deployment.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n",
	} {
		if err := tree.Add(name, []byte(data)); err != nil {
			fmt.Println(err)
			return
		}
	}
	created, err := bundles.CreatedTime(func(string) string { return "1714564800" })
	if err != nil {
		fmt.Println(err)
		return
	}
	b, err := bundles.Pack(tree, bundles.Metadata{Version: "1.0.0", Created: created})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("layer:   ", b.LayerDescriptor.Digest, b.LayerDescriptor.Size)
	fmt.Println("manifest:", b.Digest(), b.Descriptor.Size)
	// Output:
	// layer:    sha256:ed09376382621fa592591e5f61149a318f4bef40f02ad266826eda1a5dd1ef96 240
	// manifest: sha256:db911985967dd699e323eabbda1a89e0c45f2123403eacb7ac19110c1d998d91 559
}

// ExampleWriteLayout writes a bundle as an OCI image layout and reads it
// back by tag.
func ExampleWriteLayout() {
	tree := bundles.NewTree()
	if err := tree.Add("apps/web/service.yaml", []byte("kind: Service\n")); err != nil {
		fmt.Println(err)
		return
	}
	created, err := bundles.CreatedTime(os.Getenv)
	if err != nil {
		fmt.Println(err)
		return
	}
	b, err := bundles.Pack(tree, bundles.Metadata{Created: created})
	if err != nil {
		fmt.Println(err)
		return
	}
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	layout := dir + "/layout"
	if err := bundles.WriteLayout(layout, b, "1.0.0"); err != nil {
		fmt.Println(err)
		return
	}
	got, err := bundles.ReadLayout(layout, "1.0.0")
	if err != nil {
		fmt.Println(err)
		return
	}
	back, err := got.Tree(bundles.DefaultLimits)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, f := range back.Files() {
		fmt.Printf("%s: %q\n", f.Path, f.Data)
	}
	fmt.Println(got.Digest() == b.Digest())
	// Output:
	// apps/web/service.yaml: "kind: Service\n"
	// true
}
