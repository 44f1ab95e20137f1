package jobs

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	// The controller checks time zones against Go's database too; embedded,
	// the check does not depend on the machine galley runs on.
	_ "time/tzdata"
)

// ScheduleError is a cron expression Kubernetes would refuse.
type ScheduleError struct {
	Schedule string
	// Field names the part at fault ("hour", "day of week"...), "" for the
	// expression as a whole.
	Field string
	Msg   string
}

func (e *ScheduleError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("schedule %q: %s", e.Schedule, e.Msg)
	}
	return fmt.Sprintf("schedule %q: %s field: %s", e.Schedule, e.Field, e.Msg)
}

type cronField struct {
	name     string
	min, max int
	names    map[string]int
}

// cronFields are the five fields of a standard cron expression with the
// bounds of github.com/robfig/cron/v3, which the CronJob controller and API
// validation use: day of week is 0-6 there, so 7 is refused.
var cronFields = [5]cronField{
	{name: "minute", min: 0, max: 59},
	{name: "hour", min: 0, max: 23},
	{name: "day of month", min: 1, max: 31},
	{name: "month", min: 1, max: 12, names: map[string]int{
		"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
		"jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12,
	}},
	{name: "day of week", min: 0, max: 6, names: map[string]int{
		"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6,
	}},
}

var descriptors = map[string]bool{
	"@yearly": true, "@annually": true, "@monthly": true, "@weekly": true,
	"@daily": true, "@midnight": true, "@hourly": true,
}

// ParseSchedule checks a CronJob schedule the way the Kubernetes API does
// (robfig/cron's standard parser): five fields, each a list of values,
// ranges and steps within its bounds, with month and weekday names; or a
// descriptor such as "@daily" or "@every 2h". Errors are *ScheduleError.
func ParseSchedule(s string) error {
	bad := func(field, format string, args ...any) error {
		return &ScheduleError{Schedule: s, Field: field, Msg: fmt.Sprintf(format, args...)}
	}
	if strings.Contains(s, "TZ") {
		return bad("", "a time zone in the schedule (TZ= or CRON_TZ=) is refused by Kubernetes: set timeZone instead")
	}
	if strings.HasPrefix(s, "@") {
		if descriptors[s] {
			return nil
		}
		if d, ok := strings.CutPrefix(s, "@every "); ok {
			dur, err := time.ParseDuration(d)
			if err != nil || dur <= 0 {
				return bad("", "@every takes a positive duration such as 90m or 2h")
			}
			return nil
		}
		return bad("", "unknown descriptor: want @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly or @every <duration>")
	}
	fields := strings.Fields(s)
	if len(fields) != len(cronFields) {
		return bad("", "%d fields, want 5: minute hour day-of-month month day-of-week", len(fields))
	}
	for i, f := range fields {
		if err := checkCronField(f, cronFields[i]); err != nil {
			return bad(cronFields[i].name, "%v", err)
		}
	}
	return nil
}

// checkCronField checks a comma-separated list of ranges:
// "*" | "?" | value ["-" value] ["/" step].
func checkCronField(field string, cf cronField) error {
	for _, expr := range strings.Split(field, ",") {
		if expr == "" {
			return fmt.Errorf("%q has an empty list element", field)
		}
		rng, stepText, hasStep := strings.Cut(expr, "/")
		if hasStep {
			step, err := cronNumber(stepText)
			if err != nil {
				return fmt.Errorf("step %q is not a number", stepText)
			}
			if step == 0 {
				return fmt.Errorf("step must be at least 1")
			}
		}
		if rng == "*" || rng == "?" {
			continue
		}
		lowText, highText, isRange := strings.Cut(rng, "-")
		low, err := cronValue(lowText, cf)
		if err != nil {
			return err
		}
		if !isRange {
			continue
		}
		high, err := cronValue(highText, cf)
		if err != nil {
			return err
		}
		if low > high {
			return fmt.Errorf("range %s starts after it ends", rng)
		}
	}
	return nil
}

func cronValue(text string, cf cronField) (int, error) {
	if n, ok := cf.names[strings.ToLower(text)]; ok {
		return n, nil
	}
	n, err := cronNumber(text)
	if err != nil {
		if cf.names != nil {
			return 0, fmt.Errorf("%q is neither a number nor a %s name", text, cf.name)
		}
		return 0, fmt.Errorf("%q is not a number", text)
	}
	if n < cf.min || n > cf.max {
		return 0, fmt.Errorf("%d is out of range %d-%d", n, cf.min, cf.max)
	}
	return n, nil
}

// cronNumber reads an unsigned decimal number, as robfig/cron does.
func cronNumber(text string) (int, error) {
	if text == "" || strings.TrimLeft(text, "0123456789") != "" {
		return 0, errors.New("not a number")
	}
	return strconv.Atoi(text)
}

// CheckTimeZone checks a CronJob time zone as the Kubernetes API does: an
// IANA name from Go's time zone database, and not "Local", which would
// depend on the controller's machine.
func CheckTimeZone(tz string) error {
	if strings.EqualFold(tz, "local") {
		return errors.New(`timeZone "Local" depends on the controller's machine: name a zone such as "Europe/Paris" or "Etc/UTC"`)
	}
	if _, err := time.LoadLocation(tz); err != nil {
		return fmt.Errorf("unknown time zone %q: want an IANA name such as \"Europe/Paris\" or \"Etc/UTC\"", tz)
	}
	return nil
}
