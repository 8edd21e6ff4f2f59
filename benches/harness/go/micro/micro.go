// Go's side of benches/micro.sh: switch (two goroutines each runtime.Gosched() N times,
// GOMAXPROCS=1; ns per yield) and spawn (N goroutines started and waited for with a
// WaitGroup; ns per task). Prints BENCH<TAB>IMPL<TAB>NS lines, medians of REPEAT runs after a warm-up run.
package main

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"time"
)

func arg(i int, def int) int {
	if len(os.Args) > i {
		if v, err := strconv.Atoi(os.Args[i]); err == nil {
			return v
		}
	}
	return def
}

func perOp(ops int, f func()) float64 {
	t := time.Now()
	f()
	return float64(time.Since(t).Nanoseconds()) / float64(ops)
}

func median(v []float64) float64 {
	sort.Float64s(v)
	return v[len(v)/2]
}

func main() {
	runtime.GOMAXPROCS(1)
	repeat, yields, spawns := arg(1, 3), arg(2, 1000000), arg(3, 100000)
	var sw, sp []float64
	for r := 0; r <= repeat; r++ { // run 0 is a warm-up, dropped below
		sw = append(sw, perOp(2*yields, func() {
			var wg sync.WaitGroup
			for g := 0; g < 2; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < yields; i++ {
						runtime.Gosched()
					}
				}()
			}
			wg.Wait()
		}))
		sp = append(sp, perOp(spawns, func() {
			var wg sync.WaitGroup
			wg.Add(spawns)
			for i := 0; i < spawns; i++ {
				go func() { wg.Done() }()
			}
			wg.Wait()
		}))
	}
	fmt.Printf("switch\tgo\t%.1f\n", median(sw[1:]))
	fmt.Printf("spawn\tgo\t%.1f\n", median(sp[1:]))
}
