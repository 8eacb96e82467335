//go:build linux

package dnslb

import (
	"errors"
	"net"
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// udpBatch is the size of one recvmmsg/sendmmsg batch. Under load one
// system call then moves many queries, as Knot and NSD do; when queries
// trickle in a batch holds one and costs what recvfrom would.
const udpBatch = 32

// udpRecvBuf bounds a query read over UDP. A larger datagram is cut by
// the kernel (MSG_TRUNC) and dropped: no real query comes near it.
const udpRecvBuf = 4096

// batchState holds the kernel's view of a batch: message headers whose
// pointers lead into the arrays beside them. It is one heap object per
// socket reader, so the pointers stay valid for its life.
type batchState struct {
	in    [udpBatch]unix.Mmsghdr
	inIov [udpBatch]unix.Iovec
	names [udpBatch]unix.RawSockaddrInet6
	bufs  [udpBatch][udpRecvBuf]byte

	out    [udpBatch]unix.Mmsghdr
	outIov [udpBatch]unix.Iovec
	resp   [udpBatch][]byte

	nread int
	rerr  error
	nout  int
	sent  int
}

func newBatchState() *batchState {
	b := &batchState{}
	for i := range b.in {
		b.inIov[i].Base = &b.bufs[i][0]
		b.inIov[i].SetLen(udpRecvBuf)
		b.in[i].Hdr.Iov = &b.inIov[i]
		b.in[i].Hdr.SetIovlen(1)
		b.in[i].Hdr.Name = (*byte)(unsafe.Pointer(&b.names[i]))
		b.out[i].Hdr.Iov = &b.outIov[i]
		b.out[i].Hdr.SetIovlen(1)
	}
	return b
}

// recv is the RawConn.Read callback: one recvmmsg without blocking;
// false asks the poller to wait for the socket to be readable.
func (b *batchState) recv(fd uintptr) bool {
	for i := range b.in {
		b.in[i].Hdr.Namelen = unix.SizeofSockaddrInet6
		b.in[i].Hdr.Flags = 0
		b.in[i].Len = 0
	}
	n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.in[0])), udpBatch, unix.MSG_DONTWAIT, 0, 0)
	if e == unix.EAGAIN || e == unix.EWOULDBLOCK {
		return false
	}
	b.nread, b.rerr = int(n), nil
	if e != 0 {
		b.nread, b.rerr = 0, e
	}
	return true
}

// send is the RawConn.Write callback: sendmmsg until the batch is out.
// A message the kernel refuses is skipped, as a lost datagram would be.
func (b *batchState) send(fd uintptr) bool {
	for b.sent < b.nout {
		n, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&b.out[b.sent])), uintptr(b.nout-b.sent), unix.MSG_DONTWAIT, 0, 0)
		switch {
		case e == unix.EAGAIN || e == unix.EWOULDBLOCK:
			return false
		case e == unix.EINTR:
		case e != 0:
			b.sent++
		default:
			b.sent += int(n)
		}
	}
	return true
}

// addrPort reads the sender of message i.
func (b *batchState) addrPort(i int) netip.AddrPort {
	sa := &b.names[i]
	switch sa.Family {
	case unix.AF_INET:
		s4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		p := (*[2]byte)(unsafe.Pointer(&s4.Port))
		return netip.AddrPortFrom(netip.AddrFrom4(s4.Addr), uint16(p[0])<<8|uint16(p[1]))
	case unix.AF_INET6:
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), uint16(p[0])<<8|uint16(p[1]))
	}
	return netip.AddrPort{}
}

// serveUDP reads queries in batches and answers each batch with one
// sendmmsg, replying to each sender at the address it came from.
func (l *listener) serveUDP(u *net.UDPConn, _ int) {
	defer l.wg.Done()
	rc, err := u.SyscallConn()
	if err != nil {
		l.serveUDPSimple(u)
		return
	}
	w := l.newWorker()
	b := newBatchState()
	recv, send := b.recv, b.send // method values made once, not per batch
	for {
		if err := rc.Read(recv); err != nil {
			if l.closed.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if b.rerr != nil {
			continue
		}
		b.nout, b.sent = 0, 0
		for i := 0; i < b.nread; i++ {
			if b.in[i].Hdr.Flags&unix.MSG_TRUNC != 0 {
				continue
			}
			resp := l.s.handle(w, b.bufs[i][:b.in[i].Len], b.addrPort(i), true)
			if resp == nil {
				continue
			}
			k := b.nout
			b.resp[k] = append(b.resp[k][:0], resp...)
			b.outIov[k].Base = &b.resp[k][0]
			b.outIov[k].SetLen(len(b.resp[k]))
			b.out[k].Hdr.Name = b.in[i].Hdr.Name
			b.out[k].Hdr.Namelen = b.in[i].Hdr.Namelen
			b.nout++
		}
		if b.nout > 0 {
			if err := rc.Write(send); err != nil && (l.closed.Load() || errors.Is(err, net.ErrClosed)) {
				return
			}
		}
	}
}
