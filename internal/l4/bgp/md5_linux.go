package bgp

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// probeMD5 checks that the kernel signs TCP segments (RFC 2385) before a
// session is given a password. GoBGP sets the option on each connection
// and, where the kernel lacks it, only logs every failed attempt while
// the session never comes up; refusing the config says why at once.
func probeMD5() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("probing TCP MD5: %w", err)
	}
	defer unix.Close(fd)
	sig := unix.TCPMD5Sig{Keylen: 5}
	sig.Addr.Family = unix.AF_INET
	copy(sig.Key[:], "probe")
	err = unix.SetsockoptTCPMD5Sig(fd, unix.IPPROTO_TCP, unix.TCP_MD5SIG, &sig)
	if errors.Is(err, unix.ENOPROTOOPT) || errors.Is(err, unix.EOPNOTSUPP) {
		return errors.New("this kernel has no TCP MD5 signatures (CONFIG_TCP_MD5SIG), which a session password needs")
	}
	if err != nil {
		return fmt.Errorf("probing TCP MD5: %w", err)
	}
	return nil
}
