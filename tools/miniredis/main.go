// Command miniredis serves github.com/alicebob/miniredis (the in-memory Redis
// Argo CD's own tests use) on one address, as the cache Argo CD's
// application controller and repo server need.
//
//	miniredis -addr 127.0.0.1:6379
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/alicebob/miniredis/v2"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:6379", "address to listen on (host:port)")
	flag.Parse()
	s := miniredis.NewMiniRedis()
	if err := s.StartAddr(*addr); err != nil {
		fmt.Fprintf(os.Stderr, "miniredis: listen on %s: %v\n", *addr, err)
		os.Exit(1)
	}
	fmt.Printf("miniredis listening on %s\n", s.Addr())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	s.Close()
}
