module greenhub-bench/go-echo

go 1.19
