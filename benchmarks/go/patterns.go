//go:build ignore

// Go baselines for benchmarks/bench_patterns.py; run by it when `go` is on PATH.
//
//	go run patterns.go -bench patterns -jobs 96 -job-ms 5 -workers 4 -procs-list 1,2
//	go run patterns.go -bench hog -hog-ms 1500 -procs-list 1,2
//
// patterns: the same shapes as the Python file, on CPU-bound jobs of job-ms
// each (an LCG loop calibrated here), each reported as its speedup over
// the same jobs run sequentially.  hog: how late main's 50 ms time.Sleep
// returns while one spinning goroutine per P runs (Go's async preemption).
//
// Prints one JSON line: {"rows": [{"name", "metric", "value", "unit"}, ...]}.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"sort"
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

type result struct{ n, v int }

func burn(n, iters int) int {
	x := n
	for i := 0; i < iters; i++ {
		x = (x*1103515245 + 12345) & 0x7FFFFFFF
	}
	return x
}

// calibrate: iterations of burn that take ms milliseconds (best of five probes)
func calibrate(ms float64) int {
	const probe = 2_000_000
	best := time.Duration(1 << 62)
	for i := 0; i < 5; i++ {
		t0 := time.Now()
		sink += burn(i, probe)
		if d := time.Since(t0); d < best {
			best = d
		}
	}
	return int(float64(probe) * ms / 1000 / best.Seconds())
}

var sink int

func worker(jobs <-chan int, results chan<- result, iters int) {
	for n := range jobs {
		results <- result{n, burn(n, iters)}
	}
}

// Go by Example "Worker Pools", with a jobs channel of capacity jobsCap
func pool(njobs, iters, workers, jobsCap int) []result {
	jobs, results := make(chan int, jobsCap), make(chan result, njobs)
	for w := 0; w < workers; w++ {
		go worker(jobs, results, iters)
	}
	for n := 0; n < njobs; n++ {
		jobs <- n
	}
	close(jobs)
	out := make([]result, 0, njobs)
	for i := 0; i < njobs; i++ {
		out = append(out, <-results)
	}
	return out
}

// the seed's §2.3: producer -> workers -> collector
func pipeline(njobs, iters, workers int) []result {
	raw, processed := make(chan int, 100), make(chan result, 50)
	go func() {
		defer close(raw)
		for n := 0; n < njobs; n++ {
			raw <- n
		}
	}()
	var wg sync.WaitGroup
	wg.Add(workers)
	for w := 0; w < workers; w++ {
		go func() {
			defer wg.Done()
			worker(raw, processed, iters)
		}()
	}
	go func() {
		wg.Wait()
		close(processed)
	}()
	out := make([]result, 0, njobs)
	for r := range processed {
		out = append(out, r)
	}
	return out
}

// errgroup with SetLimit(workers): x/sync/errgroup's own shape (a semaphore
// channel and a WaitGroup), written with the standard library so that this
// file builds without a module
func errgroupLimit(njobs, iters, workers int) []result {
	sem := make(chan struct{}, workers)
	results := make(chan result, njobs)
	var wg sync.WaitGroup
	for n := 0; n < njobs; n++ {
		sem <- struct{}{}
		wg.Add(1)
		go func(n int) {
			defer func() { <-sem; wg.Done() }()
			results <- result{n, burn(n, iters)}
		}(n)
	}
	wg.Wait()
	close(results)
	out := make([]result, 0, njobs)
	for r := range results {
		out = append(out, r)
	}
	return out
}

// a future per job: a goroutine and a 1-slot channel, read in order
func futures(njobs, iters, workers int) []result {
	futs := make([]chan result, njobs)
	for n := range futs {
		futs[n] = make(chan result, 1)
		go func(n int) { futs[n] <- result{n, burn(n, iters)} }(n)
	}
	out := make([]result, 0, njobs)
	for _, f := range futs {
		out = append(out, <-f)
	}
	return out
}

func goPerJob(njobs, iters, workers int) []result {
	results := make(chan result, njobs)
	for n := 0; n < njobs; n++ {
		go func(n int) { results <- result{n, burn(n, iters)} }(n)
	}
	out := make([]result, 0, njobs)
	for i := 0; i < njobs; i++ {
		out = append(out, <-results)
	}
	return out
}

type shape struct {
	name string
	fn   func(njobs, iters, workers int) []result
}

var shapes = []shape{
	{"pool_buffered", func(j, i, w int) []result { return pool(j, i, w, j) }},
	{"pool_unbuffered", func(j, i, w int) []result { return pool(j, i, w, 0) }},
	{"pipeline", pipeline},
	{"errgroup", errgroupLimit},
	{"future", futures},
	{"go_per_job", goPerJob},
}

func patterns(njobs int, jobMs float64, workers int, procsList []int) []row {
	runtime.GOMAXPROCS(1)
	iters := calibrate(jobMs)
	expect := make([]int, njobs)
	// the 1x: the median of sequential runs before and after the parallel
	// ones (on a shared machine one run is too noisy)
	var seqs []float64
	sequential := func(times int) {
		for i := 0; i < times; i++ {
			t0 := time.Now()
			for n := range expect {
				expect[n] = burn(n, iters)
			}
			seqs = append(seqs, time.Since(t0).Seconds())
		}
	}
	sequential(3)
	type timed struct {
		name string
		p    int
		wall float64
	}
	var walls []timed
	for _, p := range procsList {
		runtime.GOMAXPROCS(p)
		for _, s := range shapes {
			t0 := time.Now()
			out := s.fn(njobs, iters, workers)
			dt := time.Since(t0).Seconds()
			sort.Slice(out, func(a, b int) bool { return out[a].n < out[b].n })
			ok := len(out) == njobs
			for i := 0; ok && i < njobs; i++ {
				ok = out[i].n == i && out[i].v == expect[i]
			}
			if !ok {
				fmt.Fprintf(os.Stderr, "%s procs=%d: %d results for %d jobs, not each once\n", s.name, p, len(out), njobs)
				os.Exit(1)
			}
			walls = append(walls, timed{s.name, p, dt})
		}
	}
	runtime.GOMAXPROCS(1)
	sequential(2)
	sort.Float64s(seqs)
	seq := seqs[len(seqs)/2]
	rows := []row{}
	for _, w := range walls {
		rows = append(rows, row{w.name, fmt.Sprintf("speedup procs=%d", w.p), seq / w.wall, "x"})
	}
	return rows
}

// one spinning goroutine per P; main sleeps 50 ms again and again meanwhile
func hog(hogMs int, procsList []int) []row {
	const nap = 50 * time.Millisecond
	rows := []row{}
	for _, p := range procsList {
		runtime.GOMAXPROCS(p)
		hogD := time.Duration(hogMs) * time.Millisecond
		var started int64
		var wg sync.WaitGroup
		wg.Add(p)
		for i := 0; i < p; i++ {
			go func() {
				defer wg.Done()
				atomic.AddInt64(&started, 1)
				end := time.Now().Add(hogD)
				for time.Now().Before(end) {
				}
			}()
		}
		tEnd := time.Now().Add(hogD - 100*time.Millisecond)
		late := []float64{}
		for len(late) == 0 || time.Now().Add(nap).Before(tEnd) {
			t0 := time.Now()
			time.Sleep(nap)
			late = append(late, float64(time.Since(t0)-nap)/1e6)
		}
		wg.Wait()
		sort.Float64s(late)
		rows = append(rows,
			row{"hog_timer", fmt.Sprintf("worst delay procs=%d", p), late[len(late)-1], "ms"},
			row{"hog_timer", fmt.Sprintf("median delay procs=%d", p), late[len(late)/2], "ms"},
		)
	}
	return rows
}

func main() {
	bench := flag.String("bench", "patterns", "patterns | hog")
	jobs := flag.Int("jobs", 96, "patterns: jobs per pattern")
	jobMs := flag.Float64("job-ms", 5, "patterns: duration of one job")
	workers := flag.Int("workers", 4, "patterns: pool/pipeline workers, errgroup limit")
	hogMs := flag.Int("hog-ms", 1500, "hog: how long each hog spins")
	procsList := flag.String("procs-list", "1,2", "GOMAXPROCS values")
	flag.Parse()

	var ps []int
	for _, f := range strings.Split(*procsList, ",") {
		p, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || p < 1 {
			fmt.Fprintf(os.Stderr, "bad -procs-list %q\n", *procsList)
			os.Exit(2)
		}
		ps = append(ps, p)
	}
	var rows []row
	switch *bench {
	case "patterns":
		rows = patterns(*jobs, *jobMs, *workers, ps)
	case "hog":
		rows = hog(*hogMs, ps)
	default:
		fmt.Fprintf(os.Stderr, "unknown -bench %q\n", *bench)
		os.Exit(2)
	}
	out, _ := json.Marshal(map[string][]row{"rows": rows})
	fmt.Println(string(out))
}
