package main

import (
	"context"
	"encoding/json"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// etcd: how gRPC's etcd resolver, Kratos and go-micro register: a key per
// instance under the service's prefix, bound to a lease the instance keeps
// alive; a prefix read; a prefix watch. Each worker and each subscriber
// has a client (a gRPC connection) of its own.
type etcdSys struct{}

func (etcdSys) prepare([]string) error { return nil }

func (etcdSys) worker(int) (client, error) {
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{*addr}, DialTimeout: 10 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return nil, err
	}
	return &etcdClient{c: c}, nil
}

type etcdClient struct {
	c  *clientv3.Client
	ka pb.Lease_LeaseKeepAliveClient
	id int64
}

// leaseTTL outlives every run, so no instance expires while measured.
const leaseTTL = 600

func etcdKey(svc string, i int) string { return "/services/" + svc + "/" + ip(i) + ":80" }

// register is one instance's start: a lease of its own, then its key
// bound to it (two Raft entries, as every etcd-registered instance pays).
func (c *etcdClient) register(svc string, i int) error {
	ctx := context.Background()
	l, err := c.c.Grant(ctx, leaseTTL)
	if err != nil {
		return err
	}
	v, _ := json.Marshal(map[string]any{"Addr": ip(i) + ":80"})
	_, err = c.c.Put(ctx, etcdKey(svc, i), string(v), clientv3.WithLease(l.ID))
	return err
}

// beatSetup registers the instance and opens the keep-alive stream its
// beats go on; clientv3's KeepAliveOnce would open a stream per beat.
func (c *etcdClient) beatSetup(svc string, i int) error {
	ctx := context.Background()
	l, err := c.c.Grant(ctx, leaseTTL)
	if err != nil {
		return err
	}
	if _, err := c.c.Put(ctx, etcdKey(svc, i), "{}", clientv3.WithLease(l.ID)); err != nil {
		return err
	}
	c.id = int64(l.ID)
	c.ka, err = pb.NewLeaseClient(c.c.ActiveConnection()).LeaseKeepAlive(ctx)
	return err
}

func (c *etcdClient) beat() error {
	if err := c.ka.Send(&pb.LeaseKeepAliveRequest{ID: c.id}); err != nil {
		return err
	}
	_, err := c.ka.Recv()
	return err
}

// query reads the prefix from the member's own state (serializable), as
// strata answers from its node's store; etcd's default linearizable read
// would add a round of Raft's ReadIndex.
func (c *etcdClient) query(svc string) (int, error) {
	r, err := c.c.Get(context.Background(), "/services/"+svc+"/", clientv3.WithPrefix(), clientv3.WithSerializable())
	if err != nil {
		return 0, err
	}
	return len(r.Kvs), nil
}

func (c *etcdClient) subscribe(svc string, fn, armed func()) error {
	ctx := context.Background()
	r, err := c.c.Get(ctx, "/services/"+svc+"/", clientv3.WithPrefix())
	if err != nil {
		return err
	}
	wc := c.c.Watch(clientv3.WithRequireLeader(ctx), "/services/"+svc+"/", clientv3.WithPrefix(), clientv3.WithRev(r.Header.Revision+1), clientv3.WithCreatedNotify())
	if w := <-wc; w.Err() != nil {
		return w.Err()
	}
	armed()
	go func() {
		for w := range wc {
			if len(w.Events) > 0 {
				fn()
				armed() // a watch stays in place
			}
		}
	}()
	return nil
}

func (c *etcdClient) close() { c.c.Close() }
