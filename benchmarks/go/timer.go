//go:build ignore

// Go baselines for benchmarks/bench_timer.py; run by it when `go` is on PATH.
//
//	go run timer.go -n 2000000
//
// Prints one JSON line: {"rows": [{"name", "metric", "value", "unit"}, ...]}
// with the same benchmark and metric names as the Python side.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"
)

type row struct {
	Name   string  `json:"name"`
	Metric string  `json:"metric"`
	Value  float64 `json:"value"`
	Unit   string  `json:"unit"`
	Note   string  `json:"note,omitempty"`
}

func nsPer(t0 time.Time, n int) float64 {
	return float64(time.Since(t0).Nanoseconds()) / float64(n)
}

func main() {
	n := flag.Int("n", 2000000, "operations per loop")
	flag.Parse()
	var rows []row

	t0 := time.Now()
	for i := 0; i < *n; i++ {
		t := time.NewTimer(time.Hour)
		t.Stop()
	}
	rows = append(rows, row{"timer_create_stop", "op", nsPer(t0, *n), "ns/op", fmt.Sprintf("%d ops", *n)})

	t := time.NewTimer(time.Hour)
	t0 = time.Now()
	for i := 0; i < *n; i++ {
		t.Reset(time.Hour)
	}
	rows = append(rows, row{"timer_reset", "op", nsPer(t0, *n), "ns/op", fmt.Sprintf("%d ops", *n)})
	t.Stop()

	c := make(chan int, 1)
	t0 = time.Now()
	for i := 0; i < *n; i++ {
		c <- i
		<-c
	}
	rows = append(rows, row{"chan_op", "op", nsPer(t0, 2**n), "ns/op", "a send-receive pair, halved"})

	var sink chan int
	t0 = time.Now()
	for i := 0; i < *n; i++ {
		sink = make(chan int, 1)
	}
	rows = append(rows, row{"chan_new", "op", nsPer(t0, *n), "ns/op", "make(chan int, 1), kept in a global"})
	_ = sink

	if err := json.NewEncoder(os.Stdout).Encode(map[string][]row{"rows": rows}); err != nil {
		os.Exit(1)
	}
}
