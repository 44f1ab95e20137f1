package helm

import (
	"bytes"
	"log"
	"reflect"
	"strings"
	"sync"
	"testing"
)

func TestCaptureLog(t *testing.T) {
	prev, flags := log.Writer(), log.Flags()
	t.Cleanup(func() {
		log.SetOutput(prev)
		log.SetFlags(flags)
	})
	var out syncBuffer
	log.SetOutput(&out) // as a program setting log's output after a render
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)

	var wg sync.WaitGroup
	got := captureLog(func() {
		log.Printf("warning: first")
		wg.Add(1)
		go func() { // another goroutine logging meanwhile keeps its line
			defer wg.Done()
			log.Printf("elsewhere")
		}()
		wg.Wait()
		log.Printf("warning: second\n")
	})
	log.Printf("after")

	if want := []string{"warning: first", "warning: second"}; !reflect.DeepEqual(got, want) {
		t.Errorf("captured %q, want %q", got, want)
	}
	s := out.String()
	if strings.Contains(s, "warning:") || !strings.Contains(s, "elsewhere") || !strings.Contains(s, "after") {
		t.Errorf("log output got %q: want the other goroutine's line and the line after, none of the captured ones", s)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
