// Command nacos2bench measures strata's registry through the official
// Nacos Go SDK v2 (gRPC), as Nacos 2 clients use it:
//
//   - registrations/s: CLIENTS SDK clients, each on its own gRPC
//     connection, register REGS ephemeral instances in all, each in a
//     service of its own (a Nacos 2 client publishes one instance per
//     service, so a new service is a new registration);
//   - a change pushed to SUBS subscribers: SUBS SDK clients subscribe to
//     one service; a publisher registers CHANGES new instances one after
//     another, and for each the time from the registration's
//     acknowledgement to the last subscriber's callback that sees it is
//     taken; p50 and p99 over the changes, and over every
//     (change, subscriber) pair.
//
// It starts nothing: bench/registry/nacos2.sh runs strata and this.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nacos-group/nacos-sdk-go/v2/clients"
	"github.com/nacos-group/nacos-sdk-go/v2/clients/naming_client"
	"github.com/nacos-group/nacos-sdk-go/v2/common/constant"
	"github.com/nacos-group/nacos-sdk-go/v2/model"
	"github.com/nacos-group/nacos-sdk-go/v2/vo"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8848", "the registry's HTTP address (its gRPC port is -grpc)")
	grpcPort := flag.Uint64("grpc", 0, "the Nacos gRPC port (default: the HTTP port + 1000)")
	nClients := flag.Int("clients", 32, "SDK clients registering at once")
	regs := flag.Int("regs", 5000, "registrations in all")
	subs := flag.Int("subs", 1000, "subscribers (SDK clients)")
	changes := flag.Int("changes", 50, "changes pushed to the subscribers")
	flag.Parse()
	host, hp, err := net.SplitHostPort(*addr)
	if err != nil {
		fail(err)
	}
	httpPort, _ := strconv.ParseUint(hp, 10, 64)
	if *grpcPort == 0 {
		*grpcPort = httpPort + 1000
	}
	dir, err := os.MkdirTemp("", "nacos2bench-")
	if err != nil {
		fail(err)
	}
	defer os.RemoveAll(dir)
	newClient := func(i int) naming_client.INamingClient {
		d := filepath.Join(dir, strconv.Itoa(i))
		c, err := clients.NewNamingClient(vo.NacosClientParam{
			ClientConfig: &constant.ClientConfig{
				TimeoutMs: 10000, NotLoadCacheAtStart: true, CacheDir: d + "/cache", LogDir: d + "/log", LogLevel: "error",
			},
			ServerConfigs: []constant.ServerConfig{{IpAddr: host, Port: httpPort, GrpcPort: *grpcPort}},
		})
		if err != nil {
			fail(fmt.Errorf("client %d: %w", i, err))
		}
		return c
	}

	// Registrations.
	cs := make([]naming_client.INamingClient, *nClients)
	for i := range cs {
		cs[i] = newClient(i)
	}
	var next atomic.Int64
	var errs atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(*regs) {
					return
				}
				ok, err := c.RegisterInstance(vo.RegisterInstanceParam{
					Ip: "10.1.0.1", Port: 8080, ServiceName: "bench-" + strconv.FormatInt(i, 10),
					Weight: 1, Enable: true, Healthy: true, Ephemeral: true,
				})
				if err != nil || !ok {
					errs.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	fmt.Printf("grpc-register clients=%d regs=%d errors=%d seconds=%.2f per_sec=%.0f\n",
		*nClients, *regs, errs.Load(), el.Seconds(), float64(*regs)/el.Seconds())
	for _, c := range cs {
		c.CloseClient()
	}

	// Pushes.
	type seen struct {
		mu sync.Mutex
		at map[string]time.Time // instance ip → when this subscriber first saw it
	}
	subscribers := make([]*seen, *subs)
	subClients := make([]naming_client.INamingClient, *subs)
	var subWG sync.WaitGroup
	t0 := time.Now()
	for i := range subscribers {
		s := &seen{at: map[string]time.Time{}}
		subscribers[i] = s
		subWG.Add(1)
		go func(i int) {
			defer subWG.Done()
			c := newClient(10000 + i)
			subClients[i] = c
			err := c.Subscribe(&vo.SubscribeParam{ServiceName: "pushed", SubscribeCallback: func(hosts []model.Instance, err error) {
				now := time.Now()
				s.mu.Lock()
				for _, h := range hosts {
					if _, ok := s.at[h.Ip]; !ok {
						s.at[h.Ip] = now
					}
				}
				s.mu.Unlock()
			}})
			if err != nil {
				fail(fmt.Errorf("subscriber %d: %w", i, err))
			}
		}(i)
	}
	subWG.Wait()
	fmt.Printf("subscribers=%d connected in %.1fs\n", *subs, time.Since(t0).Seconds())
	pub := newClient(99999)
	// Each change is timed from the write's call (what a subscriber
	// waits for after the change is made) and from its acknowledgement
	// (which the push often beats: it is sent when the leader applies the
	// change, before the answer reaches the writer; those count as 0).
	var lasts, lastsAck, all, acks []time.Duration
	missed := 0
	for k := 0; k < *changes; k++ {
		ip := fmt.Sprintf("10.2.%d.%d", k/250, k%250+1)
		// A new instance each change: register it, then (after the
		// measurement) deregister it, so every change is seen as new.
		called := time.Now()
		ok, err := pub.RegisterInstance(vo.RegisterInstanceParam{Ip: ip, Port: 80, ServiceName: "pushed", Weight: 1, Enable: true, Healthy: true, Ephemeral: true})
		acked := time.Now()
		acks = append(acks, acked.Sub(called))
		if err != nil || !ok {
			fail(fmt.Errorf("change %d: %v", k, err))
		}
		deadline := acked.Add(10 * time.Second)
		var last time.Duration
		for _, s := range subscribers {
			for {
				s.mu.Lock()
				at, ok := s.at[ip]
				s.mu.Unlock()
				if ok {
					d := at.Sub(called)
					all = append(all, d)
					last = max(last, d)
					break
				}
				if time.Now().After(deadline) {
					missed++
					break
				}
				time.Sleep(time.Millisecond)
			}
		}
		lasts = append(lasts, last)
		lastsAck = append(lastsAck, max(last-acks[len(acks)-1], 0))
	}
	fmt.Printf("grpc-push subscribers=%d changes=%d missed=%d write_ack_p50_ms=%.1f last_p50_ms=%.1f last_p99_ms=%.1f each_p50_ms=%.1f each_p99_ms=%.1f after_ack_last_p50_ms=%.1f after_ack_last_p99_ms=%.1f\n",
		*subs, *changes, missed, ms(pct(acks, 50)), ms(pct(lasts, 50)), ms(pct(lasts, 99)), ms(pct(all, 50)), ms(pct(all, 99)),
		ms(pct(lastsAck, 50)), ms(pct(lastsAck, 99)))
	pub.CloseClient()
	for _, c := range subClients {
		c.CloseClient()
	}
}

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, (len(s)*p+99)/100-1)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func fail(err error) {
	fmt.Fprintln(os.Stderr, "nacos2bench:", err)
	os.Exit(1)
}
