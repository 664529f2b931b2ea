//go:build ignore

// Go baselines for benchmarks/bench_sync.py; run by it when `go` is on PATH.
//
//	go run sync.go -procs 2 -m 1000000 -zc-n 2000 -cancel-k 200
//
// Prints one JSON line: {"rows": [{"name", "metric", "value", "unit"}, ...]}
// with the same benchmark and metric names as the Python side.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

type row struct {
	Name   string  `json:"name"`
	Metric string  `json:"metric"`
	Value  float64 `json:"value"`
	Unit   string  `json:"unit"`
	Note   string  `json:"note,omitempty"`
}

type paddedCounter struct {
	v int64
	_ [56]byte // one cache line per shard
}

// two goroutines each add 1 m times; ns per increment over both
func counter(name string, m int, add func(g int)) row {
	var wg sync.WaitGroup
	start := make(chan struct{})
	wg.Add(2)
	for g := 0; g < 2; g++ {
		go func(g int) {
			<-start
			for i := 0; i < m; i++ {
				add(g)
			}
			wg.Done()
		}(g)
	}
	time.Sleep(10 * time.Millisecond)
	t0 := time.Now()
	close(start)
	wg.Wait()
	dt := time.Since(t0).Seconds()
	return row{name, "increment", dt / float64(2*m) * 1e9, "ns/op", ""}
}

func counters(m int) []row {
	var mu sync.Mutex
	var plain int64
	r1 := counter("mutex_counter", m, func(int) {
		mu.Lock()
		plain++
		mu.Unlock()
	})
	var a int64
	r2 := counter("atomic_counter", m, func(int) { atomic.AddInt64(&a, 1) })
	shards := make([]paddedCounter, 64)
	r3 := counter("sharded_counter", m, func(g int) { atomic.AddInt64(&shards[g].v, 1) })
	var total int64
	for i := range shards {
		total += shards[i].v
	}
	if plain != int64(2*m) || a != int64(2*m) || total != int64(2*m) {
		fmt.Fprintf(os.Stderr, "counters: %d %d %d != %d\n", plain, a, total, 2*m)
		os.Exit(1)
	}
	return []row{r1, r2, r3}
}

func uncontended(m int) row {
	var mu sync.Mutex
	t0 := time.Now()
	for i := 0; i < m; i++ {
		mu.Lock()
		mu.Unlock()
	}
	dt := time.Since(t0).Seconds()
	return row{"mutex_uncontended", "lock+unlock", dt / float64(m) * 1e6, "µs", ""}
}

// a fresh 1 MiB slice per message; the receiver touches one byte
func zeroCopy(n int) row {
	ch := make(chan []byte, 8)
	done := make(chan int)
	go func() {
		s := 0
		for i := 0; i < n; i++ {
			s += int((<-ch)[0])
		}
		done <- s
	}()
	t0 := time.Now()
	for i := 0; i < n; i++ {
		b := make([]byte, 1<<20)
		b[0] = 1
		ch <- b
	}
	s := <-done
	dt := time.Since(t0).Seconds()
	if s != n {
		fmt.Fprintf(os.Stderr, "zero_copy: %d of %d\n", s, n)
		os.Exit(1)
	}
	return row{"zero_copy", "1 MiB msgs", float64(n) / dt, "msgs/s", "a new slice per message, handle sent"}
}

// a goroutine parked in select on ctx.Done(); latency from cancel() to it running
func contextCancel(k int) []row {
	ctxs := make(chan context.Context, 1)
	ready := make(chan struct{}, 1)
	times := make(chan time.Time, 1)
	never := make(chan int)
	go func() {
		for i := 0; i < k; i++ {
			ctx := <-ctxs
			ready <- struct{}{}
			select {
			case <-ctx.Done():
			case <-never:
			}
			times <- time.Now()
		}
	}()
	lat := make([]float64, 0, k)
	for i := 0; i < k; i++ {
		ctx, cancel := context.WithCancel(context.Background())
		ctxs <- ctx
		<-ready
		time.Sleep(5 * time.Millisecond)
		t0 := time.Now()
		cancel()
		t1 := <-times
		lat = append(lat, t1.Sub(t0).Seconds()*1e6)
	}
	sort.Float64s(lat)
	med := lat[len(lat)/2]
	if len(lat)%2 == 0 {
		med = (lat[len(lat)/2-1] + lat[len(lat)/2]) / 2
	}
	p90 := lat[(len(lat)*9)/10]
	return []row{
		{"context_cancel", "median", med, "µs", ""},
		{"context_cancel", "p90", p90, "µs", ""},
	}
}

func main() {
	procs := flag.Int("procs", 2, "GOMAXPROCS")
	m := flag.Int("m", 1000000, "increments per goroutine / lock+unlock pairs")
	zcN := flag.Int("zc-n", 2000, "zero_copy messages")
	cancelK := flag.Int("cancel-k", 200, "context_cancel samples")
	flag.Parse()

	runtime.GOMAXPROCS(*procs)
	rows := counters(*m)
	rows = append(rows, uncontended(*m), zeroCopy(*zcN))
	rows = append(rows, contextCancel(*cancelK)...)
	out, _ := json.Marshal(map[string][]row{"rows": rows})
	fmt.Println(string(out))
}
