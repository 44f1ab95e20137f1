package helm

import (
	"bytes"
	"io"
	"log"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
)

// Helm's chartutil, loader, ignore and releaseutil packages report warnings
// (values that cannot be merged, unknown hook types, symlinks followed, ...)
// through the standard library's global logger, which writes to stderr.
// Swapping log's output around each call would mix up the warnings of
// concurrent renders, so the output is replaced once by a writer that routes
// each line by the goroutine writing it: a goroutine inside captureLog gets
// its own buffer, every other write goes on to wherever log wrote before.
// Helm does all of its loading and rendering in the calling goroutine, which
// is what makes the routing exact.
var (
	routerMu sync.Mutex
	sinks    sync.Map // goroutine id (uint64) -> *bytes.Buffer
)

type logRouter struct {
	next io.Writer
}

func (r *logRouter) Write(p []byte) (int, error) {
	if b, ok := sinks.Load(goroutineID()); ok {
		// Only the owning goroutine writes to its buffer.
		return b.(*bytes.Buffer).Write(p)
	}
	return r.next.Write(p)
}

// captureLog runs fn and returns the lines helm logged from this goroutine
// while it ran, without log's date and time prefix.
func captureLog(fn func()) []string {
	// Installed on first use, and again if a program has since given log
	// another output, which then receives the lines of other goroutines.
	routerMu.Lock()
	if _, ok := log.Writer().(*logRouter); !ok {
		log.SetOutput(&logRouter{next: log.Writer()})
	}
	routerMu.Unlock()
	id := goroutineID()
	if id == 0 {
		// Unreadable id: leave helm's lines where log sends them rather
		// than risk handing them to another render.
		fn()
		return nil
	}
	var buf bytes.Buffer
	sinks.Store(id, &buf)
	defer sinks.Delete(id)
	fn()
	return logLines(buf.String())
}

// logPrefix matches what log.LstdFlags and friends put before a message.
var logPrefix = regexp.MustCompile(`^(\d{4}/\d{2}/\d{2} )?(\d{2}:\d{2}:\d{2}(\.\d+)? )?`)

func logLines(s string) []string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimPrefix(l, log.Prefix())
		l = strings.TrimSpace(logPrefix.ReplaceAllString(l, ""))
		if l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

// goroutineID reads the current goroutine's id from the first line of its
// stack trace ("goroutine 42 [running]:"); the runtime offers no other way.
func goroutineID() uint64 {
	var b [64]byte
	s := b[:runtime.Stack(b[:], false)]
	s = bytes.TrimPrefix(s, []byte("goroutine "))
	if i := bytes.IndexByte(s, ' '); i > 0 {
		s = s[:i]
	}
	id, err := strconv.ParseUint(string(s), 10, 64)
	if err != nil {
		return 0
	}
	return id
}
