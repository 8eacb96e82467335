//go:build !linux

package dnslb

import "net"

func (l *listener) serveUDP(u *net.UDPConn, _ int) {
	defer l.wg.Done()
	l.serveUDPSimple(u)
}
