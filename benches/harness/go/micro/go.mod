module greenhub-bench/go-micro

go 1.19
