package l7

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/testnet"
	"github.com/strata-lb/strata/internal/upstream"
)

func TestNormalizePath(t *testing.T) {
	tests := []struct {
		desc, in, want string
		err            error
	}{
		{desc: "root", in: "/", want: "/"},
		{desc: "plain", in: "/admin/x", want: "/admin/x"},
		{desc: "trailing slash kept", in: "/admin/", want: "/admin/"},
		{desc: "dot segment", in: "/./admin/x", want: "/admin/x"},
		{desc: "leading double slash", in: "//admin/x", want: "/admin/x"},
		{desc: "run of slashes", in: "/a///b////", want: "/a/b/"},
		{desc: "dot-dot", in: "/p/../admin/x", want: "/admin/x"},
		{desc: "escaped unreserved", in: "/%61dmin/x", want: "/admin/x"},
		{desc: "escaped upper-case letter", in: "/%41dmin", want: "/Admin"},
		{desc: "escaped unreserved punctuation", in: "/%2D%5F%7E%2e", want: "/-_~."},
		{desc: "escaped dots are dots", in: "/p/%2E%2e/admin/x", want: "/admin/x"},
		{desc: "escaped single dot", in: "/%2E/admin", want: "/admin"},
		{desc: "reserved escape kept, hex upper-cased", in: "/a%3fb%3Dc", want: "/a%3Fb%3Dc"},
		{desc: "space stays escaped", in: "/a%20b", want: "/a%20b"},
		{desc: "non-ASCII escape kept", in: "/caf%c3%a9", want: "/caf%C3%A9"},
		{desc: "escaped percent stays escaped", in: "/100%25/x", want: "/100%25/x"},
		{desc: "escaped percent is not decoded twice", in: "/%252F", want: "/%252F"},
		{desc: "trailing dot keeps the slash", in: "/a/b/.", want: "/a/b/"},
		{desc: "trailing dot-dot keeps the slash", in: "/a/b/..", want: "/a/"},
		{desc: "dot-dot to the root", in: "/a/..", want: "/"},
		{desc: "dot then slash", in: "/.", want: "/"},
		{desc: "dot-dot after a doubled slash", in: "/a//../b", want: "/b"},
		{desc: "slashes merged before dot-dot", in: "/a/b//..//c", want: "/a/c"},
		{desc: "dots inside a name are no segment", in: "/a.b/..c/c../.well-known/...", want: "/a.b/..c/c../.well-known/..."},
		{desc: "semicolon parameters untouched", in: "/a;b=c/d", want: "/a;b=c/d"},
		{desc: "dot-dot above the root", in: "/../x", err: errPathAboveRoot},
		{desc: "dot-dot above the root later", in: "/a/../../x", err: errPathAboveRoot},
		{desc: "dot-dot above the root at the end", in: "/a/../..", err: errPathAboveRoot},
		{desc: "escaped dot-dot above the root", in: "/%2e%2E/etc/passwd", err: errPathAboveRoot},
		{desc: "encoded slash", in: "/%2Fadmin", err: errPathEncodedSlash},
		{desc: "encoded slash lower case", in: "/admin%2fx", err: errPathEncodedSlash},
		{desc: "encoded NUL", in: "/a%00b", err: errPathEncodedNUL},
		{desc: "escape not hex", in: "/a%zzb", err: errPathEscape},
		{desc: "escape cut short", in: "/a%4", err: errPathEscape},
		{desc: "lone percent", in: "/a%", err: errPathEscape},
		{desc: "fragment", in: "/admin#x", err: errPathFragment},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			got, err := normalizePath(tc.in)
			if err != tc.err || got != tc.want {
				t.Fatalf("normalizePath(%q) = %q, %v; want %q, %v", tc.in, got, err, tc.want, tc.err)
			}
			if normal := isNormalPath(tc.in); normal != (tc.err == nil && tc.want == tc.in) {
				t.Fatalf("isNormalPath(%q) = %v", tc.in, normal)
			}
			if err == nil && !isNormalPath(got) {
				t.Fatalf("isNormalPath(%q) = false for a normalised path", got)
			}
		})
	}
}

// TestNormalizeRequest checks what a normalised request carries: routing's
// decoded path, the escaped path for HTTP/2 backends, and the target for
// HTTP/1.1 backends with the query as it came.
func TestNormalizeRequest(t *testing.T) {
	tests := []struct {
		desc, target           string
		path, rawPath, sentURI string
	}{
		{desc: "normal path untouched", target: "/a/b?x=%2e", path: "/a/b", sentURI: "/a/b?x=%2e"},
		{desc: "query kept as sent", target: "/a/./b?q=/../%2F&r", path: "/a/b", rawPath: "/a/b", sentURI: "/a/b?q=/../%2F&r"},
		{desc: "empty query kept", target: "//a?", path: "/a", rawPath: "/a", sentURI: "/a?"},
		{desc: "reserved escapes", target: "/a/../%3fb%20c", path: "/?b c", rawPath: "/%3Fb%20c", sentURI: "/%3Fb%20c"},
		{desc: "absolute form", target: "http://h.example/x/../admin?q", path: "/admin", rawPath: "/admin", sentURI: "/admin?q"},
		{desc: "asterisk", target: "*", path: "*", sentURI: "*"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			r, err := http.ReadRequest(bufio.NewReader(strings.NewReader("OPTIONS " + tc.target + " HTTP/1.1\r\nHost: h.example\r\n\r\n")))
			if err != nil {
				t.Fatal(err)
			}
			if err := normalizeRequest(r); err != nil {
				t.Fatal(err)
			}
			if r.URL.Path != tc.path || r.URL.RawPath != tc.rawPath && tc.rawPath != "" || r.RequestURI != tc.sentURI && tc.target[0] == '/' {
				t.Fatalf("Path %q RawPath %q RequestURI %q; want %q %q %q", r.URL.Path, r.URL.RawPath, r.RequestURI, tc.path, tc.rawPath, tc.sentURI)
			}
			if tc.target[0] != '/' && tc.target != "*" && r.RequestURI != tc.sentURI {
				t.Fatalf("RequestURI %q, want %q", r.RequestURI, tc.sentURI)
			}
		})
	}
}

// removeDotSegmentsRef is RFC 3986 §5.2.4 as the RFC writes it, step by
// step on an input and an output buffer, with strata's extras done the
// plain way around it: escapes decoded first, slashes merged, and a ".."
// with nothing left to remove reported instead of ignored.
func removeDotSegmentsRef(p string) (string, error) {
	// The extras: escapes.
	var dec strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] == '#' {
			return "", errPathFragment
		}
		if p[i] != '%' {
			dec.WriteByte(p[i])
			continue
		}
		if i+2 >= len(p) {
			return "", errPathEscape
		}
		v, err := strconv.ParseUint(p[i+1:i+3], 16, 8)
		if err != nil {
			return "", errPathEscape
		}
		i += 2
		switch c := byte(v); {
		case c == '/':
			return "", errPathEncodedSlash
		case c == 0:
			return "", errPathEncodedNUL
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', strings.IndexByte("-._~", c) >= 0:
			dec.WriteByte(c)
		default:
			dec.WriteString("%" + strings.ToUpper(strconv.FormatUint(v>>4, 16)+strconv.FormatUint(v&15, 16)))
		}
	}
	// The extras: slashes merged.
	in := dec.String()
	for strings.Contains(in, "//") {
		in = strings.ReplaceAll(in, "//", "/")
	}
	// RFC 3986 §5.2.4.
	out := ""
	for in != "" {
		switch {
		case strings.HasPrefix(in, "../"):
			in = in[3:]
		case strings.HasPrefix(in, "./"):
			in = in[2:]
		case strings.HasPrefix(in, "/./"):
			in = "/" + in[3:]
		case in == "/.":
			in = "/"
		case strings.HasPrefix(in, "/../") || in == "/..":
			if in == "/.." {
				in = "/"
			} else {
				in = in[len("/.."):]
			}
			if out == "" {
				return "", errPathAboveRoot
			}
			if i := strings.LastIndex(out, "/"); i >= 0 {
				out = out[:i]
			} else {
				out = ""
			}
		case in == "." || in == "..":
			in = ""
		default:
			start := 0
			if in[0] == '/' {
				start = 1
			}
			end := len(in)
			if i := strings.IndexByte(in[start:], '/'); i >= 0 {
				end = start + i
			}
			out += in[:end]
			in = in[end:]
		}
	}
	return out, nil
}

// FuzzNormalizePath checks the normaliser against the plain reference
// above, and that its output is normal and stays as it is.
func FuzzNormalizePath(f *testing.F) {
	for _, s := range []string{"/", "/./admin/x", "//admin/x", "/p/../admin/x", "/%61dmin/x", "/%2Fadmin", "/../x",
		"/a/b/..", "/a/./", "/%2e%2E/", "/a%zz", "/a%3f%20", "/a//../b", "/a#b", "/.well-known/..."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if !strings.HasPrefix(p, "/") {
			p = "/" + p
		}
		got, err := normalizePath(p)
		want, werr := removeDotSegmentsRef(p)
		if err != werr || got != want {
			t.Fatalf("normalizePath(%q) = %q, %v; reference %q, %v", p, got, err, want, werr)
		}
		if err != nil {
			if isNormalPath(p) {
				t.Fatalf("isNormalPath(%q) = true for a refused path", p)
			}
			return
		}
		if isNormalPath(p) && got != p {
			t.Fatalf("isNormalPath(%q) = true, but it normalises to %q", p, got)
		}
		if !isNormalPath(got) {
			t.Fatalf("normalised %q to %q, which isNormalPath refuses", p, got)
		}
		if again, err := normalizePath(got); err != nil || again != got {
			t.Fatalf("normalising %q again gave %q, %v", got, again, err)
		}
	})
}

// TestRoutingNormalizedPaths sends, through a real listener, paths that
// read as /admin/x once normalised: each must meet the /admin/ route (a
// deny), not the catch-all pool; the ones that cannot be normalised get
// 400. Go's client and curl --path-as-is send them as written.
func TestRoutingNormalizedPaths(t *testing.T) {
	curl := testnet.NeedTool(t, "curl", "curl")
	seenc := make(chan string, 16)
	be := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seenc <- r.RequestURI
		io.WriteString(w, "pool")
	}))
	pool := newPool(t, "p", be.addr)
	routes := []config.Route{
		{PathPrefix: "/admin/", Respond: &config.RouteRespond{Status: http.StatusForbidden, Body: "denied"}},
		{Pool: "p"},
	}
	_, base := startProxy(t, Options{}, routes, map[string]*upstream.Pool{"p": pool})
	tests := []struct {
		desc, path string
		status     int
		sent       string // what the backend is sent, for the pool's requests
	}{
		{desc: "dot segment", path: "/./admin/x", status: 403},
		{desc: "doubled slash", path: "//admin/x", status: 403},
		{desc: "dot-dot", path: "/p/../admin/x", status: 403},
		{desc: "escaped letter", path: "/%61dmin/x", status: 403},
		{desc: "escaped dots", path: "/p/%2e%2E/admin/x", status: 403},
		{desc: "encoded slash", path: "/%2Fadmin", status: 400},
		{desc: "above the root", path: "/../x", status: 400},
		{desc: "normal path to the pool", path: "/public/a%20b?q=%2e", status: 200, sent: "/public/a%20b?q=%2e"},
		{desc: "normalised path to the pool", path: "/admin/../public//%7Ex?q=/../", status: 200, sent: "/public/~x?q=/../"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			// net/http's client sends the path as it is written.
			req, err := http.NewRequest(http.MethodGet, base+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("net/http client: GET %s: status %d (%q), want %d", tc.path, resp.StatusCode, body, tc.status)
			}
			checkSent(t, seenc, tc.sent)

			out, err := exec.Command(curl, "-s", "--path-as-is", "-o", "/dev/null", "-w", "%{http_code}", base+tc.path).Output()
			if err != nil {
				t.Fatalf("curl: %v", err)
			}
			if got := string(out); got != strconv.Itoa(tc.status) {
				t.Fatalf("curl --path-as-is %s: status %s, want %d", tc.path, got, tc.status)
			}
			checkSent(t, seenc, tc.sent)
		})
	}
}

// checkSent takes what the backend was sent for one request, if the
// request was to reach it.
func checkSent(t *testing.T, seenc chan string, want string) {
	t.Helper()
	if want == "" {
		select {
		case got := <-seenc:
			t.Fatalf("the backend was sent %q", got)
		default:
		}
		return
	}
	got := <-seenc // the response came after the backend's handler ran
	if got != want {
		t.Fatalf("backend was sent %q, want %q", got, want)
	}
}

// TestNormalizedPathsHTTP2 sends the same paths over HTTP/2 (h2c by prior
// knowledge) to a pool of HTTP/2 backends: HTTP/2 requests are routed by
// the normalised path too, and the backend is sent it as :path.
func TestNormalizedPathsHTTP2(t *testing.T) {
	seenc := make(chan string, 16)
	be := &backend{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	be.addr = ln.Addr().String()
	be.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seenc <- r.Proto + " " + r.RequestURI
		io.WriteString(w, "pool")
	})}
	be.srv.Protocols = new(http.Protocols)
	be.srv.Protocols.SetUnencryptedHTTP2(true)
	go be.srv.Serve(ln)
	t.Cleanup(func() { be.srv.Close() })

	pools := map[string]*upstream.Pool{"p": newPool(t, "p", be.addr)}
	s := NewServer(Options{Logger: quietLogger()})
	t.Cleanup(func() { shutdown(t, s) })
	routes := []config.Route{
		{PathPrefix: "/admin/", Respond: &config.RouteRespond{Status: http.StatusForbidden, Body: "denied"}},
		{Pool: "p"},
	}
	cfg := &config.L7{Listeners: []config.Listener{{Listen: "127.0.0.1:0", H2C: true, Routes: routes}}}
	if err := s.ApplyWith(cfg, pools, map[string]string{"p": "h2c"}); err != nil {
		t.Fatal(err)
	}
	base := "http://" + s.Addrs()[0].String()
	c := h2cClient()
	for _, tc := range []struct {
		path   string
		status int
		sent   string
	}{
		{path: "/./admin/x", status: 403},
		{path: "//admin/x", status: 403},
		{path: "/p/../admin/x", status: 403},
		{path: "/%61dmin/x", status: 403},
		{path: "/%2Fadmin", status: 400},
		{path: "/../x", status: 400},
		{path: "/admin/../public//%7Ex%3f?q=/../", status: 200, sent: "HTTP/2.0 /public/~x%3F?q=/../"},
	} {
		req, err := http.NewRequest(http.MethodGet, base+tc.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", tc.path, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.Proto != "HTTP/2.0" || resp.StatusCode != tc.status {
			t.Fatalf("GET %s: %s %d, want HTTP/2.0 %d", tc.path, resp.Proto, resp.StatusCode, tc.status)
		}
		checkSent(t, seenc, tc.sent)
	}
}
