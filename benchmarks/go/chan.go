//go:build ignore

// Go baselines for benchmarks/bench_chan.py; run by it when `go` is on PATH.
//
//	go run chan.go -procs 2 -cap 1024 -n 1000000 ...
//
// Prints one JSON line: {"rows": [{"name", "metric", "value", "unit"}, ...]}
// with the same benchmark and metric names as the Python side.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"
)

type row struct {
	Name   string  `json:"name"`
	Metric string  `json:"metric"`
	Value  float64 `json:"value"`
	Unit   string  `json:"unit"`
	Note   string  `json:"note,omitempty"`
}

func fail(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, format+"\n", a...)
	os.Exit(1)
}

// the seed's BenchmarkUnbufferedChan, on one P
func chanSync(n int) row {
	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)
	ch := make(chan int)
	go func() {
		for i := 0; i < n; i++ {
			ch <- i
		}
	}()
	t0 := time.Now()
	s := 0
	for i := 0; i < n; i++ {
		s += <-ch
	}
	dt := time.Since(t0).Seconds()
	if s != n*(n-1)/2 {
		fail("chan_sync: checksum %d", s)
	}
	return row{"chan_sync", "op", dt / float64(n) * 1e6, "µs/op", ""}
}

func bufferedInts(name string, n, capacity int, note string) row {
	ch := make(chan int, capacity)
	done := make(chan int)
	go func() {
		s := 0
		for i := 0; i < n; i++ {
			s += <-ch
		}
		done <- s
	}()
	t0 := time.Now()
	for i := 0; i < n; i++ {
		ch <- i
	}
	s := <-done
	dt := time.Since(t0).Seconds()
	if s != n*(n-1)/2 {
		fail("%s: checksum %d", name, s)
	}
	return row{name, "ints", float64(n) / dt, "msgs/s", note}
}

// 1 KiB payloads; each send carries a fresh copy (as a Python bytes value is copied between processes)
func bufferedKiB(n, capacity int) row {
	payload := make([]byte, 1024)
	ch := make(chan []byte, capacity)
	done := make(chan int)
	go func() {
		s := 0
		for i := 0; i < n; i++ {
			s += len(<-ch)
		}
		done <- s
	}()
	t0 := time.Now()
	for i := 0; i < n; i++ {
		b := make([]byte, len(payload))
		copy(b, payload)
		ch <- b
	}
	s := <-done
	dt := time.Since(t0).Seconds()
	if s != n*1024 {
		fail("chan_buffered 1 KiB: %d bytes", s)
	}
	return row{"chan_buffered", "1 KiB bytes", float64(n) / dt, "msgs/s", "a fresh copy per send"}
}

func pingPong(n int) row {
	a, b := make(chan int), make(chan int)
	go func() {
		for i := 0; i < n; i++ {
			b <- <-a
		}
	}()
	t0 := time.Now()
	for i := 0; i < n; i++ {
		a <- i
		<-b
	}
	dt := time.Since(t0).Seconds()
	return row{"ping_pong", "round trip", dt / float64(n) * 1e6, "µs", ""}
}

func select2(n, capacity int) row {
	a, b := make(chan int, capacity), make(chan int, capacity)
	go func() {
		for i := 0; i < n; i++ {
			if (i/100)%2 == 0 {
				a <- i
			} else {
				b <- i
			}
		}
	}()
	t0 := time.Now()
	s := 0
	for i := 0; i < n; i++ {
		select {
		case v := <-a:
			s += v
		case v := <-b:
			s += v
		}
	}
	dt := time.Since(t0).Seconds()
	if s != n*(n-1)/2 {
		fail("select_2: checksum %d", s)
	}
	return row{"select_2", "select", dt / float64(n) * 1e6, "µs/op", ""}
}

func pipeline(n, capacity int) row {
	src, dst := make(chan int, capacity), make(chan int, capacity)
	var wg sync.WaitGroup
	t0 := time.Now()
	go func() {
		for i := 0; i < n; i++ {
			src <- i
		}
		close(src)
	}()
	wg.Add(4)
	for w := 0; w < 4; w++ {
		go func() {
			for v := range src {
				dst <- v * 2
			}
			wg.Done()
		}()
	}
	go func() {
		wg.Wait()
		close(dst)
	}()
	s := 0
	for v := range dst {
		s += v
	}
	dt := time.Since(t0).Seconds()
	if s != n*(n-1) {
		fail("pipeline: checksum %d", s)
	}
	return row{"pipeline", "1->4->1", float64(n) / dt, "items/s", ""}
}

func main() {
	procs := flag.Int("procs", 2, "GOMAXPROCS (every benchmark but chan_sync)")
	capacity := flag.Int("cap", 1024, "buffered channel capacity")
	syncN := flag.Int("sync-n", 1000000, "chan_sync ops")
	n := flag.Int("n", 1000000, "chan_buffered / chan_batch ints")
	kibN := flag.Int("kib-n", 100000, "chan_buffered 1 KiB messages")
	ppN := flag.Int("pingpong-n", 1000000, "ping_pong round trips")
	selN := flag.Int("select-n", 1000000, "select_2 selects")
	plN := flag.Int("pipeline-n", 1000000, "pipeline items")
	flag.Parse()

	runtime.GOMAXPROCS(*procs)
	rows := []row{
		chanSync(*syncN),
		bufferedInts("chan_buffered", *n, *capacity, ""),
		bufferedKiB(*kibN, *capacity),
		bufferedInts("chan_batch", *n, *capacity, "Go has no batch API: plain buffered channel"),
		pingPong(*ppN),
		select2(*selN, *capacity),
		pipeline(*plN, *capacity),
	}
	out, _ := json.Marshal(map[string][]row{"rows": rows})
	fmt.Println(string(out))
}
