//go:build ignore

// The load generator of benchmarks/bench_net.py's `echo` when `go` is on
// PATH (the same for every server): C connections, each sending a 64-byte
// request and reading its 64-byte answer in a loop for D seconds.
//
//	go run echo_client.go -port 8080 -conns 1000 -seconds 5 -procs 1
//
// Prints one JSON line: {"n": round trips, "bad": answers that differed, "elapsed": seconds}.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"time"
)

func main() {
	port := flag.Int("port", 0, "server port on 127.0.0.1")
	conns := flag.Int("conns", 100, "concurrent connections")
	seconds := flag.Float64("seconds", 1.5, "seconds")
	procs := flag.Int("procs", 1, "GOMAXPROCS of the client")
	flag.Parse()
	runtime.GOMAXPROCS(*procs)
	addr := fmt.Sprintf("127.0.0.1:%d", *port)
	cs := make([]net.Conn, *conns)
	for i := range cs {
		var err error
		for attempt := 0; attempt < 50; attempt++ {
			cs[i], err = net.Dial("tcp", addr)
			if err == nil {
				break
			}
			time.Sleep(time.Duration(20*(attempt+1)) * time.Millisecond)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "could not connect:", err)
			os.Exit(1)
		}
	}
	var mu sync.Mutex
	var total, bad int64
	var wg sync.WaitGroup
	t0 := time.Now()
	stopAt := t0.Add(time.Duration(*seconds * float64(time.Second)))
	for i, c := range cs {
		wg.Add(1)
		go func(i int, c net.Conn) {
			defer wg.Done()
			defer c.Close()
			msg := []byte(fmt.Sprintf("%063d\n", i))
			got := make([]byte, len(msg))
			var n, b int64
			for time.Now().Before(stopAt) {
				if _, err := c.Write(msg); err != nil {
					break
				}
				if _, err := io.ReadFull(c, got); err != nil {
					break
				}
				n++
				if !bytes.Equal(got, msg) {
					b++
				}
			}
			mu.Lock()
			total += n
			bad += b
			mu.Unlock()
		}(i, c)
	}
	wg.Wait()
	out, _ := json.Marshal(map[string]interface{}{"n": total, "bad": bad, "elapsed": time.Since(t0).Seconds()})
	fmt.Println(string(out))
}
