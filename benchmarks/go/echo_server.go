//go:build ignore

// Go's net echo server for benchmarks/bench_net.py (the `echo` peer when
// `go` is on PATH): a goroutine per connection, as Go programs write it.
//
//	go run echo_server.go -procs 2 -port 0
//
// Prints the port it listens on (one line), then serves until killed.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"runtime"
)

func handle(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func main() {
	procs := flag.Int("procs", runtime.NumCPU(), "GOMAXPROCS")
	port := flag.Int("port", 0, "port on 127.0.0.1 (0: any free one)")
	flag.Parse()
	runtime.GOMAXPROCS(*procs)
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr().(*net.TCPAddr).Port)
	for {
		c, err := ln.Accept()
		if err != nil {
			continue // EMFILE and the like: Go's net/http backs off; here the next one
		}
		go handle(c)
	}
}
