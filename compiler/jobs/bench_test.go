package jobs

import (
	"encoding/json"
	"testing"
)

func BenchmarkRender(b *testing.B) {
	s := dbtSpec("dbt-nightly")
	s.Schedule = "30 2 * * *"
	s.DBT.Select = []string{"tag:nightly"}
	s.DBT.Vars = json.RawMessage(`{"lookback_days": 3}`)
	s.DBT.Git = &Git{Repository: "https://github.com/example/analytics.git", Revision: "main", Deps: true}
	s.Env = map[string]EnvValue{"DBT_PASSWORD": {SecretKeyRef: &KeyRef{Name: "warehouse", Key: "password"}}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Render(s, Options{StackName: "platform"}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseSchedule(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if err := ParseSchedule("*/15 0-6,22-23 1-31/2 jan-dec mon-fri"); err != nil {
			b.Fatal(err)
		}
	}
}
