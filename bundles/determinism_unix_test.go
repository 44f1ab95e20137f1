//go:build unix

package bundles

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestPackAcrossProcesses builds the same bundle in two fresh processes
// that differ in working directory, umask and time zone, and compares the
// manifest digest and the bytes of index.json.
func TestPackAcrossProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the test binary twice")
	}
	run := func(umask, tz string) string {
		dir := t.TempDir()
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperPackProcess$", "-test.count=1")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(),
			"GALLEY_BUNDLES_HELPER=1",
			"GALLEY_BUNDLES_UMASK="+umask,
			"TZ="+tz,
			"SOURCE_DATE_EPOCH=1714564800",
		)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("helper process: %v\n%s", err, out)
		}
		for line := range strings.Lines(string(out)) {
			if s, ok := strings.CutPrefix(line, "result "); ok {
				return strings.TrimSpace(s)
			}
		}
		t.Fatalf("helper process printed no result:\n%s", out)
		return ""
	}
	a := run("022", "UTC")
	b := run("077", "Pacific/Chatham")
	if a != b {
		t.Errorf("builds differ:\n%s\n%s", a, b)
	}
	if want := samplePack(t).Digest().String(); !strings.HasPrefix(a, want+" ") {
		t.Errorf("child processes built %s, this one %s", a, want)
	}
	t.Logf("both builds: %s", a)
}

// TestHelperPackProcess is the body of TestPackAcrossProcesses' children.
func TestHelperPackProcess(t *testing.T) {
	if os.Getenv("GALLEY_BUNDLES_HELPER") != "1" {
		t.Skip("helper process for TestPackAcrossProcesses")
	}
	umask, err := strconv.ParseInt(os.Getenv("GALLEY_BUNDLES_UMASK"), 8, 32)
	if err != nil {
		t.Fatal(err)
	}
	syscall.Umask(int(umask))
	created, err := CreatedTime(os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	meta := sampleMetadata
	meta.Created = created
	// Build the tree from files on disk, as the compiler's caller might,
	// so that the umask applies to them.
	for name, data := range sampleFiles {
		p := filepath.FromSlash(name)
		if err := os.MkdirAll(filepath.Dir(p), 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o666); err != nil {
			t.Fatal(err)
		}
	}
	tree := NewTree()
	for name := range sampleFiles {
		data, err := os.ReadFile(filepath.FromSlash(name))
		if err != nil {
			t.Fatal(err)
		}
		if err := tree.Add(name, data); err != nil {
			t.Fatal(err)
		}
	}
	b, err := Pack(tree, meta)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteLayout("layout", b, "1.0.0"); err != nil {
		t.Fatal(err)
	}
	index, err := os.ReadFile(filepath.Join("layout", "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := Untar(bytes.NewReader(b.Layer), "out", Limits{}); err != nil {
		t.Fatal(err)
	}
	var extracted bytes.Buffer
	// What Untar wrote, names and contents (modes follow the umask).
	err = filepath.WalkDir("out", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		fmt.Fprintf(&extracted, "%s %x\n", filepath.ToSlash(p), sha256.Sum256(data))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("result %s index=%x tree=%x\n", b.Digest(), sha256.Sum256(index), sha256.Sum256(extracted.Bytes()))
}
