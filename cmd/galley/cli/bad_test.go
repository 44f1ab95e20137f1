package cli_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"testing"
	"text/template"
	"time"

	"golang.org/x/tools/txtar"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content/oci"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/galley-dev/galley/cmd/galley/cli"
	"github.com/galley-dev/galley/internal/golden"
	"github.com/galley-dev/galley/internal/testregistry"
)

// TestBad runs the hostile and broken input corpus in testdata/bad/<category>/.
// Each case is a txtar archive:
//
//   - plain sections are files of the case directory (a stack, a chart, an
//     OCI layout), written as they are;
//   - a NAME.spec section describes a file that cannot be written as text:
//     a tar or gzip-compressed tar when NAME ends in .tar, .tgz or .tar.gz,
//     else a directory (see buildSpec for the grammar);
//   - a NAME.tmpl section is a text/template rendered into NAME, with
//     digest, size and repeat (see renderTemplate); its final newline is
//     dropped, so a JSON blob hashes as written; a rendered NAME.spec is
//     built as a spec;
//   - a "registry" section pushes layouts to a real registry shared by the
//     cases ("push <layout> <repo>:<tag>") and may then replace a blob in
//     its storage ("corrupt <file> <content-file>"); $REGISTRY in a command
//     is its host;
//   - "cmd" holds galley command lines, one per line, run in order in the
//     case directory;
//   - "want" is, for each command, "exit N", its exact stderr and, when not
//     empty, "[stdout]" and its stdout; with several commands each block
//     starts with "$ galley <args>". The case directory shows as $DIR, the
//     registry as $REGISTRY, and positions in galley's schema as :L:C (they
//     move whenever the schema is edited).
//
// Sections are processed in order, so a template can hash a file an earlier
// spec built. A command that fails must leave the case directory exactly
// as it found it: no partial output, no temporary files. Run with -update
// to rewrite the want sections.
func TestBad(t *testing.T) {
	root := repoRoot(t)
	cases, err := filepath.Glob(filepath.Join(root, "testdata", "bad", "*", "*.txtar"))
	if err != nil || len(cases) == 0 {
		t.Fatalf("no cases in testdata/bad: %v", err)
	}
	reg := &sharedRegistry{t: t}
	for _, file := range cases {
		name := filepath.Base(filepath.Dir(file)) + "/" + strings.TrimSuffix(filepath.Base(file), ".txtar")
		t.Run(name, func(t *testing.T) { runBadCase(t, file, reg) })
	}
}

// sharedRegistry starts one registry, the first time a case needs it, for
// all the cases.
type sharedRegistry struct {
	t   *testing.T // the parent test, so the registry outlives each case
	reg *testregistry.Registry
}

func (s *sharedRegistry) get() *testregistry.Registry {
	if s.reg == nil {
		s.reg = testregistry.Start(s.t)
	}
	return s.reg
}

func runBadCase(t *testing.T, file string, reg *sharedRegistry) {
	ar, err := txtar.ParseFile(file)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	home, cache := t.TempDir(), t.TempDir()
	var (
		cmds     []string
		want     []byte
		hasWant  bool
		registry string // host, once a registry section has run
	)
	for _, f := range ar.Files {
		switch {
		case f.Name == "cmd":
			for _, l := range strings.Split(string(f.Data), "\n") {
				if l = strings.TrimSpace(l); l != "" {
					cmds = append(cmds, l)
				}
			}
		case f.Name == "want":
			want, hasWant = f.Data, true
		case f.Name == "registry":
			r := reg.get()
			registry = r.Host()
			if err := runRegistrySection(dir, r, string(f.Data)); err != nil {
				t.Fatalf("registry section: %v", err)
			}
		case strings.HasSuffix(f.Name, ".spec"):
			if err := buildSpec(dir, strings.TrimSuffix(f.Name, ".spec"), f.Data); err != nil {
				t.Fatalf("%s: %v", f.Name, err)
			}
		case strings.HasSuffix(f.Name, ".tmpl"):
			if err := renderTemplate(dir, strings.TrimSuffix(f.Name, ".tmpl"), f.Data); err != nil {
				t.Fatalf("%s: %v", f.Name, err)
			}
		default:
			if err := writeCaseFile(dir, f.Name, f.Data); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(cmds) == 0 {
		t.Fatal("no cmd section")
	}
	if registry == "" && slices.ContainsFunc(cmds, func(c string) bool { return strings.Contains(c, "$REGISTRY") }) {
		registry = reg.get().Host()
	}

	// stack.Load and the default output paths resolve relative paths
	// against the process's directory, as in a real run.
	t.Chdir(dir)
	env := map[string]string{"HOME": home, "GALLEY_CACHE_DIR": cache}
	var got strings.Builder
	for _, line := range cmds {
		if registry != "" {
			line = strings.ReplaceAll(line, "$REGISTRY", registry)
		}
		before, err := snapshot(dir)
		if err != nil {
			t.Fatal(err)
		}
		code, stdout, stderr := runGalley(t, dir, strings.Fields(line), env)
		if code != cli.ExitOK {
			after, err := snapshot(dir)
			if err != nil {
				t.Fatal(err)
			}
			if diff := diffSnapshots(before, after); diff != "" {
				t.Errorf("galley %s failed but changed the case directory:\n%s", line, diff)
			}
		}
		if len(cmds) > 1 {
			fmt.Fprintf(&got, "$ galley %s\n", line)
		}
		fmt.Fprintf(&got, "exit %d\n", code)
		got.WriteString(withNewline(stderr))
		if stdout != "" {
			got.WriteString("[stdout]\n" + withNewline(stdout))
		}
	}
	out := normalizeOutput(got.String(), dir, registry)

	if golden.Update() {
		if hasWant {
			for i := range ar.Files {
				if ar.Files[i].Name == "want" {
					ar.Files[i].Data = []byte(out)
				}
			}
		} else {
			ar.Files = append(ar.Files, txtar.File{Name: "want", Data: []byte(out)})
		}
		if err := os.WriteFile(file, txtar.Format(ar), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if !hasWant {
		t.Fatal("no want section (run with -update to write it)")
	}
	if out != string(want) {
		t.Errorf("output mismatch (run with -update to accept)\n--- got\n%s--- want\n%s", out, want)
	}
}

// runGalley runs the CLI in-process. A panic is a bug in galley, reported
// as the case's failure rather than ending the whole test binary.
func runGalley(t *testing.T, dir string, args []string, env map[string]string) (code int, stdout, stderr string) {
	t.Helper()
	// A safety net, not an assertion: a case that hangs fails with
	// "interrupted" instead of stalling the suite.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var outBuf, errBuf bytes.Buffer
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("galley %s panicked: %v\n%s", strings.Join(args, " "), r, debug.Stack())
		}
	}()
	code = cli.Run(ctx, args, cli.Env{
		Stdin:  strings.NewReader(""),
		Stdout: &outBuf,
		Stderr: &errBuf,
		Getenv: func(k string) string { return env[k] },
		Cwd:    dir,
	})
	return code, outBuf.String(), errBuf.String()
}

func withNewline(s string) string {
	if s != "" && !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	return s
}

// schemaPosition matches positions in galley's embedded schema.
var schemaPosition = regexp.MustCompile(`(galley\.dev/stack/v1alpha1/[a-z_]+\.cue):\d+:\d+`)

func normalizeOutput(s, dir, registry string) string {
	if real, err := filepath.EvalSymlinks(dir); err == nil && real != dir {
		s = strings.ReplaceAll(s, real, "$DIR")
	}
	s = strings.ReplaceAll(s, dir, "$DIR")
	if registry != "" {
		s = strings.ReplaceAll(s, registry, "$REGISTRY")
	}
	return schemaPosition.ReplaceAllString(s, "$1:L:C")
}

// writeCaseFile writes a file of the case below dir; the corpus may name
// hostile paths only inside specs, never as sections.
func writeCaseFile(dir, name string, data []byte) error {
	if !filepath.IsLocal(filepath.FromSlash(name)) {
		return fmt.Errorf("section %q: not a local path", name)
	}
	p := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, data, 0o644)
}

// snapshot lists every path below dir with its type and size.
func snapshot(dir string) (map[string]string, error) {
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			out[rel] = "dir"
		case d.Type()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			out[rel] = "symlink to " + target
		default:
			out[rel] = fmt.Sprintf("%v %d bytes", fi.Mode().Type(), fi.Size())
		}
		return nil
	})
	return out, err
}

func diffSnapshots(before, after map[string]string) string {
	var lines []string
	for p, a := range after {
		switch b, ok := before[p]; {
		case !ok:
			lines = append(lines, "  added "+p+" ("+a+")")
		case a != b:
			lines = append(lines, "  changed "+p+" ("+b+" -> "+a+")")
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			lines = append(lines, "  removed "+p)
		}
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// specEntry is one line of a spec.
type specEntry struct {
	kind   string
	name   string
	target string // symlink, hardlink; the content file of blob
	data   []byte
	size   int64 // zeros
	major  int64 // devices
	minor  int64
	line   int
}

// parseSpec reads a spec, one entry per line ('#' starts a comment line):
//
//	file NAME [CONTENT]      CONTENT is a Go-quoted string, or <<END and
//	                         the lines up to one that is END
//	dir NAME
//	symlink NAME -> TARGET
//	hardlink NAME -> TARGET  (archives only)
//	chardev NAME MAJOR MINOR (archives only), blockdev likewise
//	fifo NAME                (archives only)
//	zeros NAME SIZE          SIZE is bytes, or with KiB, MiB or GiB
//	include NAME FILE        (archives only) the bytes of a case file,
//	                         such as an archive an earlier spec built
//	blob FILE [CONTENT-FILE] (directories only) blobs/sha256/<hex> named by
//	                         FILE's digest, holding CONTENT-FILE's bytes
//	                         (FILE's by default); both relative to the case
//
// NAME may be Go-quoted; it is used as it is, so an archive can hold
// "../x" or "/etc/x".
func parseSpec(data []byte) ([]specEntry, error) {
	lines := strings.Split(string(data), "\n")
	var out []specEntry
	for i := 0; i < len(lines); i++ {
		line := strings.TrimSpace(lines[i])
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		errf := func(format string, args ...any) error {
			return fmt.Errorf("line %d: %s", i+1, fmt.Sprintf(format, args...))
		}
		toks, err := specTokens(line)
		if err != nil {
			return nil, errf("%v", err)
		}
		if len(toks) < 2 {
			return nil, errf("want KIND NAME ...")
		}
		e := specEntry{kind: toks[0], name: toks[1], line: i + 1}
		args := toks[2:]
		switch e.kind {
		case "file":
			switch {
			case len(args) == 0:
			case len(args) == 1 && strings.HasPrefix(args[0], "<<"):
				end := strings.TrimPrefix(args[0], "<<")
				var body []string
				for i++; i < len(lines) && lines[i] != end; i++ {
					body = append(body, lines[i]+"\n")
				}
				if i == len(lines) {
					return nil, errf("no line %q ends the content", end)
				}
				e.data = []byte(strings.Join(body, ""))
			case len(args) == 1:
				e.data = []byte(args[0])
			default:
				return nil, errf("want file NAME [CONTENT]")
			}
		case "dir", "fifo":
			if len(args) != 0 {
				return nil, errf("want %s NAME", e.kind)
			}
		case "symlink", "hardlink":
			if len(args) != 2 || args[0] != "->" {
				return nil, errf("want %s NAME -> TARGET", e.kind)
			}
			e.target = args[1]
		case "chardev", "blockdev":
			if len(args) != 2 {
				return nil, errf("want %s NAME MAJOR MINOR", e.kind)
			}
			if e.major, err = strconv.ParseInt(args[0], 10, 32); err == nil {
				e.minor, err = strconv.ParseInt(args[1], 10, 32)
			}
			if err != nil {
				return nil, errf("%v", err)
			}
		case "zeros":
			if len(args) != 1 {
				return nil, errf("want zeros NAME SIZE")
			}
			if e.size, err = parseSize(args[0]); err != nil {
				return nil, errf("%v", err)
			}
		case "include":
			if len(args) != 1 {
				return nil, errf("want include NAME FILE")
			}
			e.target = args[0]
		case "blob":
			switch len(args) {
			case 0:
				e.target = e.name
			case 1:
				e.target = args[0]
			default:
				return nil, errf("want blob FILE [CONTENT-FILE]")
			}
		default:
			return nil, errf("unknown kind %q", e.kind)
		}
		out = append(out, e)
	}
	return out, nil
}

// specTokens splits a line into words; a word starting with '"' is a
// Go-quoted string.
func specTokens(line string) ([]string, error) {
	var toks []string
	for line = strings.TrimLeft(line, " \t"); line != ""; line = strings.TrimLeft(line, " \t") {
		if line[0] == '"' {
			q, err := strconv.QuotedPrefix(line)
			if err != nil {
				return nil, fmt.Errorf("bad quoted string: %v", err)
			}
			s, _ := strconv.Unquote(q)
			toks = append(toks, s)
			line = line[len(q):]
			continue
		}
		n := strings.IndexAny(line, " \t")
		if n < 0 {
			n = len(line)
		}
		toks = append(toks, line[:n])
		line = line[n:]
	}
	return toks, nil
}

func parseSize(s string) (int64, error) {
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mult, nil
}

// buildSpec makes target (relative to dir) from a spec: an archive or a
// directory, depending on target's name.
func buildSpec(dir, target string, spec []byte) error {
	entries, err := parseSpec(spec)
	if err != nil {
		return err
	}
	if !filepath.IsLocal(filepath.FromSlash(target)) {
		return fmt.Errorf("target %q: not a local path", target)
	}
	p := filepath.Join(dir, filepath.FromSlash(target))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	switch {
	case strings.HasSuffix(target, ".tgz"), strings.HasSuffix(target, ".tar.gz"):
		return writeArchive(dir, p, entries, true)
	case strings.HasSuffix(target, ".tar"):
		return writeArchive(dir, p, entries, false)
	default:
		return writeDirSpec(dir, p, entries)
	}
}

// writeArchive writes the entries as a tar, gzip-compressed if compress, with
// fixed modes and times so that its digest is stable.
func writeArchive(caseDir, name string, entries []specEntry, compress bool) error {
	var buf bytes.Buffer
	var w io.Writer = &buf
	var gz *gzip.Writer
	if compress {
		// BestSpeed: bombs of zeros are built in a blink, and the bytes
		// are as deterministic as with any level.
		gz, _ = gzip.NewWriterLevel(&buf, gzip.BestSpeed)
		w = gz
	}
	tw := tar.NewWriter(w)
	epoch := time.Unix(0, 0)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Mode: 0o644, ModTime: epoch, Format: tar.FormatPAX}
		if e.kind == "include" {
			data, err := caseFile(caseDir, e.target)
			if err != nil {
				return fmt.Errorf("line %d: %w", e.line, err)
			}
			e.kind, e.data = "file", data
		}
		switch e.kind {
		case "file":
			hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(e.data))
		case "zeros":
			hdr.Typeflag, hdr.Size = tar.TypeReg, e.size
		case "dir":
			hdr.Typeflag, hdr.Mode = tar.TypeDir, 0o755
		case "symlink":
			hdr.Typeflag, hdr.Linkname, hdr.Mode = tar.TypeSymlink, e.target, 0o777
		case "hardlink":
			hdr.Typeflag, hdr.Linkname = tar.TypeLink, e.target
		case "chardev":
			hdr.Typeflag, hdr.Devmajor, hdr.Devminor = tar.TypeChar, e.major, e.minor
		case "blockdev":
			hdr.Typeflag, hdr.Devmajor, hdr.Devminor = tar.TypeBlock, e.major, e.minor
		case "fifo":
			hdr.Typeflag = tar.TypeFifo
		default:
			return fmt.Errorf("line %d: %s is not allowed in an archive", e.line, e.kind)
		}
		// PAX only when needed, so plain names give a plain USTAR header.
		if len(hdr.Name) < 100 && len(hdr.Linkname) < 100 && hdr.Size < 1<<33 {
			hdr.Format = tar.FormatUSTAR
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("line %d: %w", e.line, err)
		}
		switch e.kind {
		case "file":
			if _, err := tw.Write(e.data); err != nil {
				return err
			}
		case "zeros":
			if _, err := io.CopyN(tw, zeroReader{}, e.size); err != nil {
				return err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if gz != nil {
		if err := gz.Close(); err != nil {
			return err
		}
	}
	return os.WriteFile(name, buf.Bytes(), 0o644)
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// writeDirSpec makes the entries on disk below root.
func writeDirSpec(caseDir, root string, entries []specEntry) error {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	for _, e := range entries {
		if e.kind == "blob" {
			name, err := caseFile(caseDir, e.name)
			if err != nil {
				return err
			}
			data, err := caseFile(caseDir, e.target)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(name)
			if err := writeCaseFile(root, "blobs/sha256/"+hex.EncodeToString(sum[:]), data); err != nil {
				return err
			}
			continue
		}
		if !filepath.IsLocal(filepath.FromSlash(e.name)) {
			return fmt.Errorf("line %d: %q is not a local path (hostile names belong in archives)", e.line, e.name)
		}
		p := filepath.Join(root, filepath.FromSlash(e.name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		var err error
		switch e.kind {
		case "file":
			err = os.WriteFile(p, e.data, 0o644)
		case "zeros":
			err = writeZeros(p, e.size)
		case "dir":
			err = os.MkdirAll(p, 0o755)
		case "symlink":
			err = os.Symlink(e.target, p)
		default:
			err = fmt.Errorf("line %d: %s is not allowed in a directory", e.line, e.kind)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func writeZeros(name string, n int64) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	// A sparse file: the size is what matters, not the blocks.
	if err := f.Truncate(n); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func caseFile(dir, name string) ([]byte, error) {
	if !filepath.IsLocal(filepath.FromSlash(name)) {
		return nil, fmt.Errorf("%q: not a local path", name)
	}
	return os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
}

// renderTemplate renders a .tmpl section into target, or, when target is
// a NAME.spec, builds NAME from the rendered spec (an archive of 10,001
// files is a range of ten lines). Functions:
//
//	digest FILE   "sha256:<hex>" of a case file
//	size FILE     its size in bytes
//	repeat S N    S repeated N times, for huge or deeply nested input
func renderTemplate(dir, target string, text []byte) error {
	funcs := template.FuncMap{
		"digest": func(name string) (string, error) {
			data, err := caseFile(dir, name)
			if err != nil {
				return "", err
			}
			sum := sha256.Sum256(data)
			return "sha256:" + hex.EncodeToString(sum[:]), nil
		},
		"size": func(name string) (int, error) {
			data, err := caseFile(dir, name)
			return len(data), err
		},
		"repeat": strings.Repeat,
	}
	tmpl, err := template.New(target).Funcs(funcs).Option("missingkey=error").Parse(strings.TrimSuffix(string(text), "\n"))
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, nil); err != nil {
		return err
	}
	if spec, ok := strings.CutSuffix(target, ".spec"); ok {
		return buildSpec(dir, spec, buf.Bytes())
	}
	return writeCaseFile(dir, target, buf.Bytes())
}

// runRegistrySection pushes layouts to the registry exactly as they are
// (oras copies blobs and manifests without judging them) and tampers with
// its storage:
//
//	push LAYOUT REPO:TAG        the manifest tagged TAG in LAYOUT's index
//	corrupt FILE CONTENT-FILE   the stored blob named by FILE's digest now
//	                            holds CONTENT-FILE's bytes
//
// The registry is shared: each case pushes to repositories of its own.
func runRegistrySection(dir string, reg *testregistry.Registry, section string) error {
	ctx := context.Background()
	for n, line := range strings.Split(section, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		var err error
		switch {
		case len(f) == 3 && f[0] == "push":
			err = pushRaw(ctx, filepath.Join(dir, filepath.FromSlash(f[1])), reg.Ref(f[2]))
		case len(f) == 3 && f[0] == "corrupt":
			var name, data []byte
			if name, err = caseFile(dir, f[1]); err == nil {
				if data, err = caseFile(dir, f[2]); err == nil {
					sum := sha256.Sum256(name)
					err = os.WriteFile(reg.BlobPath("sha256:"+hex.EncodeToString(sum[:])), data, 0o644)
				}
			}
		default:
			err = fmt.Errorf("want push LAYOUT REPO:TAG or corrupt FILE CONTENT-FILE")
		}
		if err != nil {
			return fmt.Errorf("line %d: %w", n+1, err)
		}
	}
	return nil
}

func pushRaw(ctx context.Context, layout, ref string) error {
	src, err := oci.NewFromFS(ctx, os.DirFS(layout))
	if err != nil {
		return err
	}
	dst, err := remote.NewRepository(ref)
	if err != nil {
		return err
	}
	dst.PlainHTTP = true
	tag := dst.Reference.Reference
	_, err = oras.Copy(ctx, src, tag, dst, tag, oras.DefaultCopyOptions)
	return err
}

// TestBadSnapshot checks the check TestBad relies on for "no partial
// output": a file or directory left behind, or one removed, shows.
func TestBadSnapshot(t *testing.T) {
	dir := t.TempDir()
	if err := writeCaseFile(dir, "stack/stack.cue", []byte("package p\n")); err != nil {
		t.Fatal(err)
	}
	before, err := snapshot(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, ".out-tmp-123"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "stack", "stack.cue")); err != nil {
		t.Fatal(err)
	}
	after, err := snapshot(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := "  added .out-tmp-123 (dir)\n  removed stack/stack.cue"
	if got := diffSnapshots(before, after); got != want {
		t.Errorf("diff:\n%s\nwant:\n%s", got, want)
	}
}
