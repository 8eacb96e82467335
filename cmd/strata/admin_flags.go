package main

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
)

// adminFlags are the admin listener's flags of the l7, l4 and dns
// one-liners: its address, and a file holding its token, which an address
// that is not loopback requires. The token is taken only from a file, so
// that it is seen neither in the process list nor in the shell's history.
type adminFlags struct {
	listen    *string
	tokenFile *string
}

func addAdminFlags(fs *flag.FlagSet, defaultListen, listenHelp string) adminFlags {
	return adminFlags{
		listen:    fs.String("admin", defaultListen, listenHelp),
		tokenFile: fs.String("token-file", "", "`file` holding the admin token (not world-readable); required when --admin is not loopback"),
	}
}

// section is the config's admin section.
func (a adminFlags) section() string {
	var b strings.Builder
	fmt.Fprintf(&b, "admin:\n  listen: %s\n", strconv.Quote(*a.listen))
	if *a.tokenFile != "" {
		fmt.Fprintf(&b, "  token_file: %s\n", strconv.Quote(*a.tokenFile))
	}
	return b.String()
}
