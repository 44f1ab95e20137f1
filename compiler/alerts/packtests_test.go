package alerts

import (
	"errors"
	"strings"
	"testing"
)

// TestPackTests: the tests galley makes for the built-in alerts cover
// every alert of fullOptions with a firing, a healthy and a fresh-install
// test, and pass.
func TestPackTests(t *testing.T) {
	o := fullOptions()
	for pack, groups := range builtinGroups(t) {
		tests, fields := o.packTests(groups)
		for _, g := range groups {
			for _, r := range g.Rules {
				key := testKey(r)
				if len(tests[key]) != 3 || fields[key] == "" {
					t.Errorf("%s: %s: %d tests, field %q; want 3 and a field", pack, key, len(tests[key]), fields[key])
				}
			}
		}
		if err := o.runPackTests(groups); err != nil {
			t.Errorf("%s: %v", pack, err)
		}
	}
}

// TestPackTestsTuned: the same tests, made for other thresholds, durations,
// windows and ingresses, pass too.
func TestPackTestsTuned(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Options)
	}{
		{"traefik", func(o *Options) { o.Ingress, o.Provided = "traefik", nil }},
		{"envoy gateway", func(o *Options) { o.Ingress, o.Provided = "envoy-gateway", nil }},
		{"tighter and slower", func(o *Options) {
			p := o.Infrastructure
			p.CPU.Ratio, p.CPU.For = 0.5, "30m"
			p.Memory.Ratio, p.Volume.Ratio, p.ErrorRate.Ratio, p.Latency.Ratio = 0.7, 0.95, 0.2, 0.25
			p.CrashLooping.For, p.NotReady.For = "0m", "1h"
			d := o.DataJourney
			d.Airflow.Window, d.Airflow.DAGRunFailed.For = "1h", "10m"
			d.Airbyte.Window = "30m"
			d.Streaming.Window, d.Streaming.Lag.Ratio, d.Streaming.Stalled.For = "30m", 50, "5m"
			d.Jobs.Failed.For = "5m"
			o.Security.APIUnauthorized.Ratio, o.Security.IngressDenied.Ratio = 0.1, 20
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := fullOptions()
			tc.change(&o)
			if _, err := o.Groups(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestPackTestsCatch: parameters with which a built-in alert cannot do its
// job fail the build at the setting, with the test that failed.
func TestPackTestsCatch(t *testing.T) {
	for _, tc := range []struct {
		name        string
		change      func(*Options)
		field, want string
	}{
		{"an error ratio of 1 never fires", func(o *Options) { o.Infrastructure.ErrorRate.Ratio = 1 },
			"packs.infrastructure.errorRate", `built-in test "fires on failing series" of alert HTTPErrorRateHigh failed: at 16m: expected alert`},
		{"a failure leaves the window before the alert fires", func(o *Options) { o.DataJourney.Airflow.DAGRunFailed.For = "30m" },
			"packs.dataJourney.airflow", `"fires on failing series" of alert AirflowDAGRunFailed`},
		{"a one-minute window sees no commits", func(o *Options) { o.DataJourney.Streaming.Window = "1m" },
			"packs.dataJourney.streaming.stalled", `"silent on healthy series" of alert KafkaConsumerStalled`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := fullOptions()
			tc.change(&o)
			_, err := o.Groups()
			var f *BuiltinTestFailure
			if !errors.As(err, &f) {
				t.Fatalf("got %v, want a BuiltinTestFailure", err)
			}
			if f.Field != tc.field || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got field %s, error\n%v\nwant field %s, %q", f.Field, err, tc.field, tc.want)
			}
		})
	}
}

// passedTests is an in-memory PassedTests that counts what it was asked.
type passedTests struct {
	passed       map[string]bool
	asked, found int
}

func (p *passedTests) Passed(key string) bool {
	p.asked++
	if p.passed[key] {
		p.found++
	}
	return p.passed[key]
}

func (p *passedTests) RecordPass(key string) { p.passed[key] = true }

// TestPackTestsRemembered: a run that passed is recorded and not run again
// with the same rules and tests; a failing run is never recorded.
func TestPackTestsRemembered(t *testing.T) {
	store := &passedTests{passed: map[string]bool{}}
	o := fullOptions()
	o.PassedTests = store
	if _, err := o.Groups(); err != nil {
		t.Fatal(err)
	}
	recorded := len(store.passed)
	if recorded == 0 || store.found != 0 {
		t.Fatalf("first build: %d runs recorded, %d found; want some recorded, none found", recorded, store.found)
	}
	if _, err := o.Groups(); err != nil {
		t.Fatal(err)
	}
	if store.found != recorded || len(store.passed) != recorded {
		t.Errorf("second build: %d of %d runs found, %d recorded; want every run found, none new", store.found, recorded, len(store.passed))
	}

	o.Infrastructure.ErrorRate.Ratio = 1 // fails HTTPErrorRateHigh's firing test
	if _, err := o.Groups(); err == nil {
		t.Fatal("a failing pack test passed")
	}
	if len(store.passed) != recorded {
		t.Errorf("a failing run was recorded: %d entries, want %d", len(store.passed), recorded)
	}
}
