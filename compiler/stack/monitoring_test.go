package stack

import (
	"strings"
	"testing"
)

// TestCUEString decodes string literals as CUE writes them and maps each
// byte of the value back to its source: that is how a PromQL error lands
// on its column.
func TestCUEString(t *testing.T) {
	tests := []struct {
		name  string
		src   string // the literal, then anything
		value string
		// at maps a byte offset of value to its offset in src.
		at map[int]int
	}{
		{"plain", `"up == 0", x`, "up == 0", map[int]int{0: 1, 6: 7}},
		{"escaped quotes", `"up{job=\"a\"} == 0"`, `up{job="a"} == 0`, map[int]int{7: 8, 8: 10, 9: 11, 11: 14}},
		{"escapes", `"a\tb\u00e9c\\d"`, "a\tb\u00e9c\\d", map[int]int{1: 2, 2: 4, 3: 5, 4: 5, 5: 11, 6: 12, 7: 14}},
		{"raw", `#"up{job="a"} \n"#`, `up{job="a"} \n`, map[int]int{7: 9, 13: 15}},
		{"raw escape", `#"a\#tb"#`, "a\tb", map[int]int{1: 3, 2: 6}},
		{"multiline", "\"\"\"\n\t\tsum(\n\t\t  x)\n\t\t\"\"\"", "sum(\n  x)", map[int]int{0: 6, 4: 10, 5: 13, 7: 15}},
		{"multiline with an empty line", "\"\"\"\n\t\ta\n\n\t\tb\n\t\t\"\"\"", "a\n\nb", map[int]int{0: 6, 3: 11}},
		{"raw multiline", "#\"\"\"\n\tx\"y\n\t\"\"\"#", `x"y`, map[int]int{0: 6, 1: 7}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			value, offsets, ok := cueString([]byte(tt.src))
			if !ok || value != tt.value {
				t.Fatalf("got %q %v, want %q", value, ok, tt.value)
			}
			if len(offsets) != len(value) {
				t.Fatalf("%d offsets for %d bytes", len(offsets), len(value))
			}
			for i, want := range tt.at {
				if offsets[i] != want {
					t.Errorf("byte %d (%q): source offset %d, want %d", i, value[i], offsets[i], want)
				}
			}
		})
	}
	for _, src := range []string{
		`"a\(b)c"`,                 // interpolation
		`"unterminated`,            // no closing quote
		"\"two\nlines\"",           // a newline in a one-line string
		`'bytes'`,                  // a byte string
		"\"\"\"\nx\n  y\n  \"\"\"", // a line without the indentation
		`x`,
	} {
		if value, _, ok := cueString([]byte(src)); ok {
			t.Errorf("%s: decoded to %q, want a refusal", strings.ReplaceAll(src, "\n", `\n`), value)
		}
	}
}

// FuzzCUEString: any input is refused or decoded with one in-bounds,
// non-decreasing source offset per byte of the value.
func FuzzCUEString(f *testing.F) {
	for _, seed := range []string{
		`"up == 0"`, `"a\"b\u00e9"`, `#"a\#tb"#`, "\"\"\"\n\tx\n\n\ty\n\t\"\"\"", "#\"\"\"\n x\"\n \"\"\"#", `"a\(b)"`, `"\`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		value, offsets, ok := cueString(src)
		if !ok {
			return
		}
		if len(offsets) != len(value) {
			t.Fatalf("%d offsets for %d bytes", len(offsets), len(value))
		}
		for i, o := range offsets {
			if o < 0 || o >= len(src) || (i > 0 && o < offsets[i-1]) {
				t.Fatalf("offset %d of byte %d out of order or bounds (len %d)", o, i, len(src))
			}
		}
	})
}
