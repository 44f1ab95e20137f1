// Command etcd is the upstream etcd server, built from the pinned
// go.etcd.io/etcd/server/v3 module: its own cmd package is a separate module
// (go.etcd.io/etcd/v3) that replaces its siblings with relative paths, so it
// cannot be built from the module proxy.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
