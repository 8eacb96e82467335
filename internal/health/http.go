package health

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/strata-lb/strata/internal/config"
)

// maxBody bounds how much of a response body an HTTP check reads when it
// looks for ExpectBody, so that a backend streaming a large or endless body
// cannot hold a checker's memory or time.
const maxBody = 64 << 10

// HTTPOptions describe an HTTP or HTTPS check.
type HTTPOptions struct {
	// HTTPS speaks TLS to the backend.
	HTTPS bool
	// Method is the request method (default GET).
	Method string
	// Path is the request path and query (default /).
	Path string
	// Host is the Host header, and the TLS server name without its port
	// (default: the backend address).
	Host string
	// Expect lists the statuses that pass (default 200-399). Redirects are
	// not followed: a 3xx is judged as it is.
	Expect config.StatusRanges
	// ExpectBody, when set, must occur in the first 64 KiB of the body.
	ExpectBody string
	// TLSSkipVerify accepts any certificate, for backends with
	// self-signed or internal certificates.
	TLSSkipVerify bool
}

// HTTP checks a backend with one HTTP request. Build it with NewHTTP.
type HTTP struct {
	opts   HTTPOptions
	want   string // Expect as text, for error messages
	client *http.Client
}

var _ Checker = (*HTTP)(nil)

// NewHTTP builds an HTTP checker. It owns a dedicated transport with
// keep-alives off, so every check measures a fresh connection (a pooled
// connection would hide a backend that no longer accepts new ones), and
// with proxies from the environment ignored, so checks go to the backend
// itself.
func NewHTTP(o HTTPOptions) *HTTP {
	if o.Method == "" {
		o.Method = http.MethodGet
	}
	if o.Path == "" {
		o.Path = "/"
	}
	if len(o.Expect) == 0 {
		o.Expect = config.StatusRanges{{Lo: 200, Hi: 399}}
	}
	tlsConf := &tls.Config{InsecureSkipVerify: o.TLSSkipVerify}
	if o.Host != "" {
		host := o.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		tlsConf.ServerName = host
	}
	tr := &http.Transport{
		Proxy:               nil,
		DisableKeepAlives:   true,
		TLSClientConfig:     tlsConf,
		TLSHandshakeTimeout: 0, // the check's context bounds the whole exchange
	}
	return &HTTP{
		opts: o,
		want: formatRanges(o.Expect),
		client: &http.Client{
			Transport: tr,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
	}
}

// Check sends one request to addr and judges the status and, when asked,
// the body.
func (h *HTTP) Check(ctx context.Context, addr string) error {
	scheme := "http"
	if h.opts.HTTPS {
		scheme = "https"
	}
	req, err := http.NewRequestWithContext(ctx, h.opts.Method, scheme+"://"+addr+h.opts.Path, nil)
	if err != nil {
		return fmt.Errorf("http check %s %s: %w", h.opts.Method, h.opts.Path, err)
	}
	if h.opts.Host != "" {
		req.Host = h.opts.Host
	}
	req.Header.Set("User-Agent", "strata-health/1")
	resp, err := h.client.Do(req)
	if err != nil {
		return fmt.Errorf("http check %s %s: %w", h.opts.Method, h.opts.Path, err)
	}
	defer resp.Body.Close()
	if !h.opts.Expect.Match(resp.StatusCode) {
		return fmt.Errorf("http check %s %s: status %d, want %s", h.opts.Method, h.opts.Path, resp.StatusCode, h.want)
	}
	if h.opts.ExpectBody == "" {
		return nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return fmt.Errorf("http check %s %s: reading body: %w", h.opts.Method, h.opts.Path, err)
	}
	if !bytes.Contains(body, []byte(h.opts.ExpectBody)) {
		return fmt.Errorf("http check %s %s: body does not contain %q (read %d bytes)", h.opts.Method, h.opts.Path, h.opts.ExpectBody, len(body))
	}
	return nil
}

// formatRanges writes ranges the way expect_status is written.
func formatRanges(rs config.StatusRanges) string {
	var b strings.Builder
	for i, r := range rs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(r.Lo))
		if r.Hi != r.Lo {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(r.Hi))
		}
	}
	return b.String()
}
