package l7

import (
	"strings"
)

// isHopByHop reports whether a canonical request header name is
// connection-specific or is framing this proxy writes itself.
func isHopByHop(k string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
		"Content-Length", "Expect", "X-Forwarded-For":
		return true
	}
	return false
}

// isHopByHopBytes is isHopByHop for response header names.
func isHopByHopBytes(k []byte) bool {
	switch string(k) {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

// headerHasToken reports whether any of the comma-separated values lists
// tok, case-insensitively, without allocating.
func headerHasToken(vals []string, tok string) bool {
	for _, v := range vals {
		for v != "" {
			var t string
			if i := strings.IndexByte(v, ','); i >= 0 {
				t, v = v[:i], v[i+1:]
			} else {
				t, v = v, ""
			}
			if strings.EqualFold(strings.Trim(t, " \t"), tok) {
				return true
			}
		}
	}
	return false
}

func bytesHasToken(v, tok []byte) bool {
	found := false
	forEachToken(v, func(t []byte) {
		if !found && strings.EqualFold(string(t), string(tok)) {
			found = true
		}
	})
	return found
}
