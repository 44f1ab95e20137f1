package cli_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/galley-dev/galley/internal/testregistry"
)

// TestReadmeQuickStart types the README's quick start into a shell, in an
// empty directory, against a real registry, and checks that each command
// prints what the README shows: the same lines in the same order, with
// only digests, durations, sizes and the registry's address free to
// differ. A README that drifts from the CLI fails here.
func TestReadmeQuickStart(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	steps, err := quickStart(string(b))
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) == 0 || len(steps) > 5 {
		t.Fatalf("the quick start has %d commands; the README promises at most five", len(steps))
	}
	var script strings.Builder
	script.WriteString("registry start REG\n")
	for _, s := range steps {
		if !strings.HasPrefix(s.command, "galley ") || strings.ContainsAny(s.command, `'"$\`+"`") {
			t.Fatalf("quick start command %q: want a plain galley command", s.command)
		}
		cmd := strings.ReplaceAll(s.command, "localhost:5000", "$REG")
		fmt.Fprintf(&script, "\n# $ %s\nexec sh -c '%s 2>&1'\n", s.command, cmd)
		fmt.Fprintf(&script, "stdout '%s'\n", strings.ReplaceAll(outputPattern(s.output), "'", "''"))
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "quickstart.txtar"), []byte(script.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir:                 dir,
		RequireExplicitExec: true,
		Cmds:                map[string]func(*testscript.TestScript, bool, []string){"registry": testregistry.TestscriptCmd},
		Setup: func(env *testscript.Env) error {
			env.Setenv("HOME", env.WorkDir)
			return nil
		},
	})
}

type quickStartStep struct {
	command string
	output  []string
}

// quickStart reads the first console block after the "## Quick start"
// heading: "$ " lines are commands, the lines up to the next one their
// output.
func quickStart(readme string) ([]quickStartStep, error) {
	_, rest, ok := strings.Cut(readme, "\n## Quick start")
	if !ok {
		return nil, fmt.Errorf("README.md has no \"## Quick start\" section")
	}
	_, rest, ok = strings.Cut(rest, "```console\n")
	if !ok {
		return nil, fmt.Errorf("the quick start has no ```console block")
	}
	block, _, ok := strings.Cut(rest, "```")
	if !ok {
		return nil, fmt.Errorf("the quick start's console block does not end")
	}
	var steps []quickStartStep
	for _, line := range strings.Split(strings.TrimRight(block, "\n"), "\n") {
		switch {
		case strings.HasPrefix(line, "$ "):
			steps = append(steps, quickStartStep{command: strings.TrimPrefix(line, "$ ")})
		case len(steps) == 0:
			return nil, fmt.Errorf("the quick start's console block starts with %q, not a command", line)
		default:
			steps[len(steps)-1].output = append(steps[len(steps)-1].output, line)
		}
	}
	for i := range steps {
		for len(steps[i].output) > 0 && steps[i].output[len(steps[i].output)-1] == "" {
			steps[i].output = steps[i].output[:len(steps[i].output)-1]
		}
	}
	return steps, nil
}

// variable matches what may differ from one run to the next.
var variable = regexp.MustCompile(`sha256:[0-9a-f]{64}|\b\d+(\.\d+)?(ns|µs|ms|s)\b|\b\d+(\.\d+)? (B|KiB|MiB)\b|localhost:5000`)

// outputPattern is a regular expression for exactly these lines.
func outputPattern(lines []string) string {
	var b strings.Builder
	b.WriteString(`\A`)
	for _, line := range lines {
		last := 0
		for _, m := range variable.FindAllStringIndex(line, -1) {
			b.WriteString(regexp.QuoteMeta(line[last:m[0]]))
			switch tok := line[m[0]:m[1]]; {
			case strings.HasPrefix(tok, "sha256:"):
				b.WriteString(`sha256:[0-9a-f]{64}`)
			case tok == "localhost:5000":
				b.WriteString(`127\.0\.0\.1:\d+`)
			case strings.HasSuffix(tok, "B"):
				b.WriteString(`[0-9.]+ (B|KiB|MiB)`)
			default:
				b.WriteString(`[0-9.]+(ns|µs|ms|s)`)
			}
			last = m[1]
		}
		b.WriteString(regexp.QuoteMeta(line[last:]))
		b.WriteString(`\n`)
	}
	b.WriteString(`\z`)
	return b.String()
}
