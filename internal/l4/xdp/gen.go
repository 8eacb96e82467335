package xdp

// The BPF objects are compiled from lb.c and decap.c by bpf2go and
// committed, so building strata needs no clang; "make bpf" runs this.
//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror" -target bpfel -type vip_key -type vip_meta -type real -type flow_key -type flow -type counters -type lb_config lb lb.c -- -I/usr/include/x86_64-linux-gnu
//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror" -target bpfel decap decap.c -- -I/usr/include/x86_64-linux-gnu
