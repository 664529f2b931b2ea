//go:build ignore

// Go baselines for benchmarks/bench_map.py (sync.Map); run by it when `go`
// is on PATH.
//
//	go run map.go -procs 2 -n 1000000 -k 256
//
// Prints one JSON line: {"rows": [{"name", "metric", "value", "unit"}, ...]}
// with the same benchmark and metric names as the Python side.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
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

var ops = []string{"load", "store", "load_or_store"}

// the keys of a worker: its own k keys, or the first k for every worker
func keys(worker, k int, shared bool) []int {
	base := worker * k
	if shared {
		base = 0
	}
	ks := make([]int, k)
	for i := range ks {
		ks[i] = base + i
	}
	return ks
}

func work(m *sync.Map, op string, ks []int, n int) {
	nk := len(ks)
	switch op {
	case "load":
		for i := 0; i < n; i++ {
			m.Load(ks[i%nk])
		}
	case "store":
		for i := 0; i < n; i++ {
			m.Store(ks[i%nk], i)
		}
	default:
		for i := 0; i < n; i++ {
			m.LoadOrStore(ks[i%nk], i)
		}
	}
}

func fill(m *sync.Map, ks []int) {
	for _, k := range ks {
		m.Store(k, k)
	}
}

// one goroutine: µs per operation
func uncontended(n, k int) []row {
	var rows []row
	for _, op := range ops {
		m := new(sync.Map)
		ks := keys(0, k, false)
		fill(m, ks)
		t0 := time.Now()
		work(m, op, ks, n)
		dt := time.Since(t0).Seconds()
		rows = append(rows, row{"map_uncontended", op, dt / float64(n) * 1e6, "µs", ""})
	}
	return rows
}

// two goroutines started together: operations per second, both together
func two(name string, n, k int, shared bool) []row {
	var rows []row
	for _, op := range ops {
		m := new(sync.Map)
		k0, k1 := keys(0, k, shared), keys(1, k, shared)
		fill(m, k0)
		fill(m, k1)
		var wg sync.WaitGroup
		start := make(chan struct{})
		wg.Add(2)
		for _, ks := range [][]int{k0, k1} {
			go func(ks []int, op string) {
				defer wg.Done()
				<-start
				work(m, op, ks, n)
			}(ks, op)
		}
		time.Sleep(10 * time.Millisecond)
		t0 := time.Now()
		close(start)
		wg.Wait()
		dt := time.Since(t0).Seconds()
		rows = append(rows, row{name, op, float64(2*n) / dt, "ops/s", "2 goroutines"})
	}
	return rows
}

func main() {
	procs := flag.Int("procs", 2, "GOMAXPROCS")
	n := flag.Int("n", 1000000, "operations per worker")
	k := flag.Int("k", 256, "keys per worker")
	flag.Parse()

	runtime.GOMAXPROCS(*procs)
	rows := uncontended(*n, *k)
	rows = append(rows, two("map_disjoint", *n, *k, false)...)
	rows = append(rows, two("map_shared", *n, *k, true)...)
	out, _ := json.Marshal(map[string][]row{"rows": rows})
	fmt.Println(string(out))
}
