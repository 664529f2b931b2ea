//go:build ignore

// Go baselines for benchmarks/bench_spawn.py; run by it when `go` is on PATH.
//
//	go run spawn.go -bench spawn -n 1000000 -procs 2
//	go run spawn.go -bench park -n 100000 -procs 2
//	go run spawn.go -bench cpu_scaling -fib 27 -k 64 -procs-list 1,2
//
// Prints one JSON line: {"rows": [{"name", "metric", "value", "unit"}, ...]}.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type row struct {
	Name   string  `json:"name"`
	Metric string  `json:"metric"`
	Value  float64 `json:"value"`
	Unit   string  `json:"unit"`
}

// procStatusBytes reads a "kB" field (VmRSS, VmHWM) of /proc/self/status.
func procStatusBytes(field string) float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, field+":") {
			f := strings.Fields(line[len(field)+1:])
			if len(f) > 0 {
				v, _ := strconv.ParseFloat(f[0], 64)
				return v * 1024
			}
		}
	}
	return 0
}

// the seed's BenchmarkScheduler: n goroutines each doing an atomic add, then a WaitGroup wait
func spawn(n int) []row {
	var counter int64
	var wg sync.WaitGroup
	wg.Add(n)
	t0 := time.Now()
	for i := 0; i < n; i++ {
		go func() {
			atomic.AddInt64(&counter, 1)
			wg.Done()
		}()
	}
	wg.Wait()
	dt := time.Since(t0).Seconds()
	if got := atomic.LoadInt64(&counter); got != int64(n) {
		fmt.Fprintf(os.Stderr, "spawn: counter %d after %d goroutines\n", got, n)
		os.Exit(1)
	}
	return []row{
		{"spawn", "wall", dt, "s"},
		{"spawn", "rate", float64(n) / dt, "tasks/s"},
		{"spawn", "peak RSS (all Ps)", procStatusBytes("VmHWM") / (1 << 20), "MiB"},
	}
}

// n goroutines parked on one WaitGroup: RSS delta per goroutine
func park(n int) []row {
	runtime.GC()
	before := procStatusBytes("VmRSS")
	var gate, started, fin sync.WaitGroup
	gate.Add(1)
	started.Add(n)
	fin.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			started.Done()
			gate.Wait()
			fin.Done()
		}()
	}
	started.Wait()
	time.Sleep(50 * time.Millisecond)
	after := procStatusBytes("VmRSS")
	gate.Done()
	fin.Wait()
	return []row{{"park", "bytes/goroutine (RSS)", (after - before) / float64(n), "B"}}
}

func fib(n int) int {
	if n < 2 {
		return n
	}
	return fib(n-1) + fib(n-2)
}

var sink int

// k x fib(n) at each GOMAXPROCS: speedup over Go's own sequential loop
func cpuScaling(n, k int, procsList []int) []row {
	runtime.GOMAXPROCS(1)
	t0 := time.Now()
	s := 0
	for i := 0; i < k; i++ {
		s += fib(n)
	}
	seq := time.Since(t0).Seconds()
	sink = s
	rows := []row{}
	for _, p := range procsList {
		runtime.GOMAXPROCS(p)
		var wg sync.WaitGroup
		var total int64
		wg.Add(k)
		t0 := time.Now()
		for i := 0; i < k; i++ {
			go func() {
				atomic.AddInt64(&total, int64(fib(n)))
				wg.Done()
			}()
		}
		wg.Wait()
		dt := time.Since(t0).Seconds()
		if total != int64(s) {
			fmt.Fprintf(os.Stderr, "cpu_scaling: sum %d != %d\n", total, s)
			os.Exit(1)
		}
		rows = append(rows, row{"cpu_scaling", fmt.Sprintf("speedup procs=%d", p), seq / dt, "x"})
	}
	return rows
}

func main() {
	bench := flag.String("bench", "spawn", "spawn | park | cpu_scaling")
	n := flag.Int("n", 1000000, "goroutines (spawn, park)")
	procs := flag.Int("procs", runtime.NumCPU(), "GOMAXPROCS (spawn, park)")
	fibN := flag.Int("fib", 27, "cpu_scaling: fib(n)")
	k := flag.Int("k", 64, "cpu_scaling: goroutines")
	procsList := flag.String("procs-list", "1,2", "cpu_scaling: GOMAXPROCS values")
	flag.Parse()

	runtime.GOMAXPROCS(*procs)
	var rows []row
	switch *bench {
	case "spawn":
		rows = spawn(*n)
	case "park":
		rows = park(*n)
	case "cpu_scaling":
		var ps []int
		for _, f := range strings.Split(*procsList, ",") {
			p, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || p < 1 {
				fmt.Fprintf(os.Stderr, "bad -procs-list %q\n", *procsList)
				os.Exit(2)
			}
			ps = append(ps, p)
		}
		rows = cpuScaling(*fibN, *k, ps)
	default:
		fmt.Fprintf(os.Stderr, "unknown -bench %q\n", *bench)
		os.Exit(2)
	}
	out, _ := json.Marshal(map[string][]row{"rows": rows})
	fmt.Println(string(out))
}
