package cli

import "io"

// lineTracker remembers whether the last thing written ended a line.
// Interactive progress redraws one line with "\r" while a transfer runs,
// so an error printed then must first end that line.
type lineTracker struct {
	w    io.Writer
	open bool // the last byte written was not a newline
}

func (l *lineTracker) Write(p []byte) (int, error) {
	n, err := l.w.Write(p)
	if n > 0 {
		l.open = p[n-1] != '\n'
	}
	return n, err
}

// endLine ends the current line if one is open.
func (l *lineTracker) endLine() {
	if l.open {
		_, _ = l.Write([]byte("\n"))
	}
}
