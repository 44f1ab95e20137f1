// Command genstack writes a synthetic galley stack of N apps, each with its
// own small local chart, for scaling measurements:
//
//	go run ./bench/genstack -apps 50 -o /tmp/stack-50
//	galley bundle build /tmp/stack-50
//
// The output depends only on the flags. See bench/stackgen.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/galley-dev/galley/bench/stackgen"
)

func main() {
	var o stackgen.Options
	out := flag.String("o", "", "output directory (must not exist)")
	flag.IntVar(&o.Apps, "apps", 10, "number of apps")
	flag.StringVar(&o.Name, "name", "", "stack name (default synthetic)")
	flag.StringVar(&o.Version, "version", "", "stack version (default 0.1.0)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: genstack -apps N -o DIR\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *out == "" || flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := stackgen.Write(*out, o); err != nil {
		fmt.Fprintln(os.Stderr, "genstack:", err)
		os.Exit(1)
	}
}
