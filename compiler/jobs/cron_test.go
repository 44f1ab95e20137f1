package jobs

import (
	"errors"
	"strings"
	"testing"
)

func TestParseSchedule(t *testing.T) {
	for _, tc := range []struct {
		schedule string
		// want is "" for a valid schedule, else a part of the error.
		want string
	}{
		{"* * * * *", ""},
		{"30 2 * * *", ""},
		{"*/15 0-6,22-23 * * 1-5", ""},
		{"0 0 1 jan,JUL *", ""},
		{"0 6 * * MON-fri", ""},
		{"5/10 * ? * *", ""},
		{"0 0 L * *", `day of month field: "L" is not a number`},
		{"0 12 1-31/2 * sun", ""},
		{"@daily", ""},
		{"@every 90m", ""},
		{"@every forever", "@every takes a positive duration"},
		{"@fortnightly", "unknown descriptor"},
		{"0 2 * *", "4 fields, want 5"},
		{"0 0 2 * * *", "6 fields, want 5"},
		{"60 * * * *", `minute field: 60 is out of range 0-59`},
		{"0 24 * * *", `hour field: 24 is out of range 0-23`},
		{"0 0 0 * *", `day of month field: 0 is out of range 1-31`},
		{"0 0 * 13 *", `month field: 13 is out of range 1-12`},
		{"0 0 * * 7", `day of week field: 7 is out of range 0-6`},
		{"0 0 * * thursday", `"thursday" is neither a number nor a day of week name`},
		{"0 0 * foo *", `"foo" is neither a number nor a month name`},
		{"*/0 * * * *", "step must be at least 1"},
		{"*/x * * * *", `step "x" is not a number`},
		{"10-5 * * * *", "range 10-5 starts after it ends"},
		{"1,,2 * * * *", `minute field: "1,,2" has an empty list element`},
		{"-1 * * * *", `minute field: "" is not a number`},
		{"99999999999999999999 * * * *", `minute field: "99999999999999999999" is not a number`},
		{"CRON_TZ=UTC 0 * * * *", "set timeZone instead"},
		{"TZ=Europe/Paris 0 * * * *", "set timeZone instead"},
	} {
		t.Run(tc.schedule, func(t *testing.T) {
			err := ParseSchedule(tc.schedule)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("ParseSchedule(%q) = %v, want nil", tc.schedule, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("ParseSchedule(%q) = nil, want an error with %q", tc.schedule, tc.want)
			}
			var se *ScheduleError
			if !errors.As(err, &se) || se.Schedule != tc.schedule {
				t.Errorf("error is %T %v, want a *ScheduleError for %q", err, err, tc.schedule)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseSchedule(%q) = %q, want it to contain %q", tc.schedule, err, tc.want)
			}
		})
	}
}

func TestCheckTimeZone(t *testing.T) {
	for _, tc := range []struct {
		tz, want string
	}{
		{"Europe/Paris", ""},
		{"Etc/UTC", ""},
		{"UTC", ""},
		{"America/Argentina/Buenos_Aires", ""},
		{"Local", `"Local" depends on the controller's machine`},
		{"Mars/Olympus_Mons", `unknown time zone "Mars/Olympus_Mons"`},
	} {
		err := CheckTimeZone(tc.tz)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("CheckTimeZone(%q) = %v, want nil", tc.tz, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("CheckTimeZone(%q) = %v, want an error with %q", tc.tz, err, tc.want)
		}
	}
}

func FuzzParseSchedule(f *testing.F) {
	for _, s := range []string{"* * * * *", "0 0 1 jan sun", "*/5 1-3,7 ? * mon-fri", "@every 1h", "1-2-3/4 * * * *"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := ParseSchedule(s)
		var se *ScheduleError
		if err != nil && !errors.As(err, &se) {
			t.Fatalf("error %v is not a *ScheduleError", err)
		}
	})
}
