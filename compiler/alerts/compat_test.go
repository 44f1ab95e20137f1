package alerts

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/galley-dev/galley/bundles"
	"github.com/galley-dev/galley/internal/crdvalidate"
	"github.com/galley-dev/galley/internal/testtools"
)

// ruleFiles writes the spec of every PrometheusRule among files to dir as
// a Prometheus rules file (what the operator hands Prometheus), and
// returns the paths and the number of rules in each.
func ruleFiles(t *testing.T, dir, prefix string, files []bundles.File) (paths []string, counts []int) {
	t.Helper()
	for _, f := range files {
		var obj struct {
			Kind string
			Spec struct {
				Groups []map[string]any `yaml:"groups"`
			}
		}
		mustYAML(t, f.Data, &obj)
		if obj.Kind != "PrometheusRule" {
			continue
		}
		b, err := yaml.Marshal(map[string]any{"groups": obj.Spec.Groups})
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, prefix+"-"+filepath.Base(f.Path))
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, g := range obj.Spec.Groups {
			rules, _ := g["rules"].([]any)
			n += len(rules)
		}
		paths, counts = append(paths, p), append(counts, n)
	}
	return paths, counts
}

// promtoolCheck runs `promtool check rules` with every lint fatal.
func promtoolCheck(t *testing.T, paths ...string) (string, error) {
	t.Helper()
	stdout, stderr, err := testtools.Run(t, "promtool", append([]string{"check", "rules", "--lint=all", "--lint-fatal"}, paths...)...)
	return stdout + stderr, err
}

// TestPromtool: the real promtool accepts every rules file galley writes,
// and finds every rule in it.
func TestPromtool(t *testing.T) {
	dir := t.TempDir()
	var paths []string
	var counts []int
	for _, tc := range goldenCases {
		files, err := Generate(tc.opts())
		if err != nil {
			t.Fatal(err)
		}
		p, c := ruleFiles(t, dir, tc.name, files)
		paths, counts = append(paths, p...), append(counts, c...)
	}
	// RulesFile is the same format, for callers outside a cluster.
	o := fullOptions()
	groups, err := o.infrastructureGroups()
	if err != nil {
		t.Fatal(err)
	}
	b, err := RulesFile(o.finish(PackInfrastructure, groups))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "rulesfile.yaml")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	paths, counts = append(paths, p), append(counts, len(groups[0].Rules))
	if len(paths) != 6 {
		t.Fatalf("checking %d files, want 6 (5 PrometheusRules and a RulesFile)", len(paths))
	}

	out, err := promtoolCheck(t, paths...)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for i, p := range paths {
		want := fmt.Sprintf("Checking %s\n  SUCCESS: %d rules found", p, counts[i])
		if !strings.Contains(out, want) {
			t.Errorf("promtool output lacks %q:\n%s", want, out)
		}
	}
}

// TestPromtoolRejects makes sure promtool really checks what TestPromtool
// hands it: a broken expression or template fails.
func TestPromtoolRejects(t *testing.T) {
	dir := t.TempDir()
	for name, rule := range map[string]string{
		"expr":     "{alert: A, expr: 'sum(rate(x[5m])'}",
		"template": "{alert: A, expr: up == 0, annotations: {summary: '{{ $labels.pod }'}}",
	} {
		p := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(p, []byte("groups: [{name: g, rules: ["+rule+"]}]\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := promtoolCheck(t, p); err == nil {
			t.Errorf("%s: promtool accepted a broken rule:\n%s", name, out)
		}
	}
}

// TestCRDs validates the PrometheusRules and the AlertmanagerConfig
// against prometheus-operator's own CRDs, from the kube-prometheus-stack
// chart in the shared chart corpus.
func TestCRDs(t *testing.T) {
	validators := map[string]*crdvalidate.Validator{}
	for kind, file := range map[string]string{
		"PrometheusRule":     "crd-prometheusrules.yaml",
		"AlertmanagerConfig": "crd-alertmanagerconfigs.yaml",
	} {
		b, err := os.ReadFile(filepath.Join(sharedCharts(t), "kube-prometheus-stack", "charts", "crds", "crds", file))
		if err != nil {
			t.Fatal(err)
		}
		v, err := crdvalidate.New(b)
		if err != nil {
			t.Fatal(err)
		}
		validators[kind] = v
	}
	checked := 0
	for _, tc := range goldenCases {
		files, err := Generate(tc.opts())
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			var head struct{ Kind string }
			mustYAML(t, f.Data, &head)
			v := validators[head.Kind]
			if v == nil {
				continue // ConfigMaps
			}
			if err := v.Validate(f.Data); err != nil {
				t.Errorf("%s: %s: %v", tc.name, f.Path, err)
			}
			checked++
		}
	}
	if checked != 6 {
		t.Errorf("validated %d objects, want 6", checked)
	}
}

// TestDocumented keeps docs/monitoring.md in step with the packs: a
// heading for every alert, and every PromQL block exactly as Generate
// writes it for fullOptions.
func TestDocumented(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(repoRoot(t), "docs", "monitoring.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{
		AlertPodCrashLooping, AlertPodNotReady, AlertHTTPErrorRateHigh, AlertContainerCPUNearLimit,
		AlertContainerMemoryNearLimit, AlertPersistentVolumeFillingUp, AlertAirflowDAGRunFailed,
		AlertJobFailed, AlertPipelineOverSLA, AlertDataNotFresh, AlertDataQualityThresholdBreached,
		AlertHTTPLatencyHigh, AlertAirbyteSyncFailed, AlertKafkaConsumerLagHigh, AlertKafkaConsumerStalled,
		AlertAPIServerUnauthorized, AlertAPIServerForbidden, AlertIngressDeniedRequests,
	} {
		if !regexp.MustCompile(`(?m)^#+ ` + regexp.QuoteMeta(name) + `$`).Match(doc) {
			t.Errorf("docs/monitoring.md has no heading for alert %s", name)
		}
	}

	files, err := Generate(fullOptions())
	if err != nil {
		t.Fatal(err)
	}
	generated := map[string]bool{}
	for _, rules := range rulesOf(t, files) {
		for _, r := range rules {
			generated[r["expr"].(string)] = true
		}
	}
	blocks := regexp.MustCompile("(?ms)^( *)```promql\n(.*?)\n *```$").FindAllStringSubmatch(string(doc), -1)
	if len(blocks) < 11 {
		t.Fatalf("found %d promql blocks in docs/monitoring.md, want one per alert and source at least", len(blocks))
	}
	for _, b := range blocks {
		indent, body := b[1], b[2]
		var lines []string
		for _, l := range strings.Split(body, "\n") {
			lines = append(lines, strings.TrimPrefix(l, indent))
		}
		expr := strings.Join(lines, "\n")
		if !generated[expr] {
			t.Errorf("docs/monitoring.md shows an expression galley does not write:\n%s", expr)
		}
	}
}

func repoRoot(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("no go.mod above the test directory")
		}
		dir = parent
	}
}

func sharedCharts(tb testing.TB) string {
	return filepath.Join(repoRoot(tb), "..", "shared", "charts")
}
