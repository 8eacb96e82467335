package l7

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
)

// Path normalisation, before routing: a route that denies /admin/ must see
// /./admin/x, //admin/x, /p/../admin/x and /%61dmin/x as the /admin/x they
// are to every backend, or they slip past it to the catch-all. As nginx
// does (its merge_slashes on, and the decoding its URI parser does):
//
//  1. percent-encoded unreserved characters (RFC 3986 §2.3: ALPHA, DIGIT,
//     "-", ".", "_", "~") are decoded, and the hex digits of every other
//     escape made upper case (RFC 3986 §6.2.2.1);
//  2. runs of slashes are merged into one;
//  3. dot segments are removed (RFC 3986 §5.2.4).
//
// A path that cannot be normalised without guessing is refused: an
// escaped "/" (%2F would be a segment separator to some backends and part
// of a segment to others), an escaped NUL, an escape that is not "%" and
// two hex digits, a "#" (no request target has a fragment, and a backend
// that cut the path there would serve a path strata did not route), and a
// ".." that climbs above the root.
//
// The normalised path is what is routed and what is forwarded; the query
// goes on untouched. Most paths are normal already: isNormalPath says so
// without allocating, and nothing is rewritten for them.

// Reasons a path is refused; the client gets 400.
var (
	errPathEscape       = errors.New("invalid percent-encoding in path")
	errPathEncodedSlash = errors.New("encoded slash in path")
	errPathEncodedNUL   = errors.New("encoded NUL in path")
	errPathFragment     = errors.New("fragment in request target")
	errPathAboveRoot    = errors.New("path climbs above the root")
)

// isNormalPath reports whether p, which begins with "/", is its own
// normal form: no empty or dot segment but a last empty one, and every
// escape a valid upper-case one of a byte that stays escaped.
func isNormalPath(p string) bool {
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '/':
			rest := p[i+1:]
			if rest != "" && rest[0] == '/' || dotSegment(rest) {
				return false
			}
		case '%':
			if i+2 >= len(p) || !isUpperHex(p[i+1]) || !isUpperHex(p[i+2]) {
				return false
			}
			if b := unhex(p[i+1])<<4 | unhex(p[i+2]); b == 0 || b == '/' || unreserved[b] {
				return false
			}
			i += 2
		case '#':
			return false
		}
	}
	return true
}

// dotSegment reports whether rest, what follows a "/", begins with a "."
// or ".." segment.
func dotSegment(rest string) bool {
	if rest == "" || rest[0] != '.' {
		return false
	}
	rest = rest[1:]
	if rest != "" && rest[0] == '.' {
		rest = rest[1:]
	}
	return rest == "" || rest[0] == '/'
}

// normalizePath returns the normal form of p, which begins with "/", or
// the reason it is refused.
func normalizePath(p string) (string, error) {
	// Step 1: escapes, into a buffer that steps 2 and 3 then rewrite in
	// place (they only ever shorten what is left to read).
	b := make([]byte, 0, len(p))
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch c {
		case '%':
			if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
				return "", errPathEscape
			}
			v := unhex(p[i+1])<<4 | unhex(p[i+2])
			i += 2
			switch {
			case v == '/':
				return "", errPathEncodedSlash
			case v == 0:
				return "", errPathEncodedNUL
			case unreserved[v]:
				b = append(b, v)
			default:
				b = append(b, '%', upperHex[v>>4], upperHex[v&15])
			}
		case '#':
			return "", errPathFragment
		default:
			b = append(b, c)
		}
	}
	// Steps 2 and 3, one segment at a time: an empty segment that is not
	// the last is a doubled slash and dropped, "." is dropped, ".." drops
	// the segment before it, and a path that ends in a dot segment keeps
	// its final slash ("/a/b/.." is "/a/").
	out := b[:0]
	for i := 0; i < len(b); {
		j := i + 1
		for j < len(b) && b[j] != '/' {
			j++
		}
		seg, last := b[i+1:j], j == len(b)
		switch {
		case len(seg) == 0 && !last:
		case string(seg) == ".":
			if last {
				out = append(out, '/')
			}
		case string(seg) == "..":
			if len(out) == 0 {
				return "", errPathAboveRoot
			}
			out = out[:lastSlash(out)]
			if last {
				out = append(out, '/')
			}
		default:
			// out ends before i, so this copy never overwrites bytes
			// not yet read.
			out = append(out, '/')
			out = append(out, seg...)
		}
		i = j
	}
	if len(out) == 0 {
		out = append(out, '/')
	}
	return string(out), nil
}

func lastSlash(b []byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == '/' {
			return i
		}
	}
	return 0
}

// normalizeRequest puts r's path in its normal form: URL.Path and
// URL.RawPath, which routing and HTTP/2 backends read, and RequestURI,
// which HTTP/1.1 backends are sent (in origin form, with the query as the
// client sent it). A request already normal is left as it is, without
// allocating. The error is the reason a path is refused.
func normalizeRequest(r *http.Request) error {
	path, rest, ok := requestPath(r.RequestURI)
	if !ok || isNormalPath(path) {
		return nil
	}
	np, err := normalizePath(path)
	if err != nil {
		return err
	}
	decoded, err := url.PathUnescape(np)
	if err != nil {
		return errPathEscape // unreachable: np's escapes were checked
	}
	r.URL.Path, r.URL.RawPath = decoded, np
	r.RequestURI = np + rest
	return nil
}

// requestPath splits a request target into its path and what follows it
// (the query, with its "?"). It reports false for targets without a path
// to normalise: "*", and an absolute form without one ("http://h?q").
func requestPath(target string) (path, rest string, ok bool) {
	if target == "" {
		return "", "", false
	}
	if target[0] != '/' {
		// Absolute form: the authority, which has no "/", ends at the
		// path. Its path is what an origin-form request would send.
		i := strings.Index(target, "://")
		if i < 0 {
			return "", "", false
		}
		j := strings.IndexByte(target[i+3:], '/')
		if j < 0 {
			return "", "", false
		}
		target = target[i+3+j:]
	}
	if q := strings.IndexByte(target, '?'); q >= 0 {
		return target[:q], target[q:], true
	}
	return target, "", true
}

// unreserved marks the characters RFC 3986 §2.3 calls unreserved, whose
// escapes are equivalent to themselves.
var unreserved = alnumAnd("-._~") // head.go

const upperHex = "0123456789ABCDEF"

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func isUpperHex(c byte) bool { return '0' <= c && c <= '9' || 'A' <= c && c <= 'F' }

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
