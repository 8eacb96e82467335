package l7

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/strata-lb/strata/internal/upstream"
)

// handler serves one listener: it routes each request and forwards it.
type handler struct {
	s  *Server
	ln *listener
}

// exchange is the per-request scratch state, pooled so that a proxied
// request allocates little beyond the request head the server made and two
// objects for the response header.
type exchange struct {
	head responseHead
	buf  []byte // copy buffer for bodies larger than the read buffer

	// c and timeout let long bodies push the connection's deadline on, so
	// that UpstreamTimeout bounds silence, not the length of a download,
	// an upload or an event stream.
	c       *upConn
	timeout time.Duration

	// rt is the route being served, for its response policy; nil for
	// tunnels. setCookie is a sticky cookie to add to the response.
	rt        *route
	setCookie []string
	// replay holds the request body when it may be sent again.
	replay *replayBody
}

func releaseExchange(x *exchange) {
	x.c, x.rt, x.setCookie, x.replay = nil, nil, nil, nil
	exchangePool.Put(x)
}

// touch extends the backend deadline before a read that may block.
func (x *exchange) touch(br *bufio.Reader) {
	if x.c != nil && br.Buffered() == 0 {
		x.c.extendDeadline(time.Now(), x.timeout)
	}
}

var exchangePool = sync.Pool{New: func() any {
	return &exchange{head: responseHead{raw: make([]byte, 0, 1024), fields: make([]field, 0, 16)}}
}}

const copyBufSize = 32 << 10

func (x *exchange) copyBuf() []byte {
	if x.buf == nil {
		x.buf = make([]byte, copyBufSize)
	}
	return x.buf
}

// outcome classifies how an attempt ended, which decides retries and the
// error the client sees.
type outcome uint8

const (
	done         outcome = iota // a response was relayed (or the client left)
	dialFailed                  // nothing was sent: safe to retry anywhere
	sendFailed                  // the backend failed before a response began
	relayFailed                 // the backend failed after the response began
	timedOut                    // the backend did not answer in time
	clientFailed                // the client's request body could not be read
	statusFailed                // a retryable status was swallowed for a retry
)

func (h handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t := h.ln.table.Load()
	if t.healthPath != "" && r.URL.Path == t.healthPath {
		h.s.serveHealth(w) // lameduck.go
		return
	}
	rt := t.find(r)
	noteRoute(w, rt) // observe.go
	if rt == nil {
		http.Error(w, "no route", http.StatusNotFound)
		return
	}
	ip := clientIP(r.RemoteAddr)
	// Protection first: nothing below should cost a backend anything for
	// a request that is refused anyway.
	if rt.limiter != nil {
		if ok, wait := rt.limiter.allow(r, ip); !ok {
			tooManyRequests(w, wait)
			return
		}
	}
	hasBody := r.Body != nil && r.Body != http.NoBody
	if t.maxBodyBytes > 0 && hasBody {
		if r.ContentLength > t.maxBodyBytes {
			tooLarge(w)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, t.maxBodyBytes)
	}
	switch {
	case rt.redirect != nil:
		rt.redirect.serve(w, r)
		return
	case rt.respond != nil:
		rt.respond.serve(w, r)
		return
	}
	if !rt.reqOps.empty() {
		rt.reqOps.apply(r.Header)
	}

	// Choose the pool and the backend: a split condition, then a valid
	// sticky cookie, then the split weights and the pool's picker.
	pi := 0
	forced := -1
	if len(rt.splits) > 0 {
		forced = rt.forcedPool(r)
	}
	key := rt.hashKey(r, ip)
	var b *upstream.Backend
	var snaps []*upstream.Snapshot
	var setCookie []string
	if rt.sticky != nil {
		snaps = make([]*upstream.Snapshot, len(rt.pools))
		for i, p := range rt.pools {
			snaps[i] = p.Snapshot()
		}
		b, pi = rt.sticky.resolve(r, snaps, forced)
	}
	if b == nil {
		pi = forced
		if pi < 0 {
			pi = rt.drawPool()
		}
	}
	pool := rt.pools[pi]
	snap := pool.Snapshot()
	if snaps != nil {
		snap = snaps[pi]
	}
	if b == nil {
		b = snap.Pick(key)
		if b == nil {
			http.Error(w, "no backend available", http.StatusServiceUnavailable)
			return
		}
		if rt.sticky != nil {
			setCookie = rt.sticky.setCookie(snaps, pi, b)
		}
	}
	upgrade := r.Header["Upgrade"] != nil && headerHasToken(r.Header["Connection"], "upgrade")
	if upgrade {
		h.s.tunnel(w, r, rt, snap, b, ip)
		return
	}

	x := exchangePool.Get().(*exchange)
	defer releaseExchange(x)
	x.rt, x.setCookie = rt, setCookie
	pol := &rt.retry
	rt.budget.request()
	// A request is sent again only if its method allows it and its body,
	// if any, is held in memory.
	replayable := pol.attempts > 0 && pol.replayable(r.Method)
	if replayable && hasBody {
		rb, ok, err := bufferBody(r, pol.maxBody)
		if err != nil {
			h.clientBodyFailed(w, err)
			return
		}
		x.replay, replayable = rb, ok
	}
	var triedBuf [4]*upstream.Backend
	tried := triedBuf[:0]
	for attempt := 0; ; attempt++ {
		tried = append(tried, b)
		left := attempt < pol.attempts
		// Whether a retry would be possible decides, before the response
		// is seen, whether a retryable status may be swallowed.
		statusRetry := left && replayable && !pol.statuses.empty() && len(snap.Ready) > len(tried) && rt.budget.allow()
		res, err := h.s.forward(w, r, b, ip, x, statusRetry)
		retry := false
		switch res {
		case done:
			return
		case dialFailed:
			// Nothing was sent, so any method may go elsewhere, and it
			// cost no backend anything: the budget is not charged.
			h.s.log.Warn("connecting to backend", "route", rt.name, "pool", pool.Name(), "backend", b.Name, "err", err)
			retry = left
		case sendFailed:
			h.s.log.Warn("proxying to backend", "route", rt.name, "pool", pool.Name(), "backend", b.Name, "err", err)
			retry = left && replayable && rt.budget.withdraw()
		case timedOut:
			h.s.log.Warn("waiting for backend", "route", rt.name, "pool", pool.Name(), "backend", b.Name, "err", err)
			retry = left && replayable && pol.onTimeout && rt.budget.withdraw()
		case statusFailed:
			// The budget allowed it before the attempt; charge it now.
			rt.budget.withdraw()
			retry = true
		case clientFailed:
			h.clientBodyFailed(w, err)
			return
		case relayFailed:
			h.s.log.Warn("relaying response from backend", "route", rt.name, "pool", pool.Name(), "backend", b.Name, "err", err)
			// The status line is gone; only cutting the connection tells
			// the client the response is incomplete.
			panic(http.ErrAbortHandler)
		}
		if retry && len(tried) < cap(triedBuf) {
			snap = pool.Snapshot()
			if nb := another(snap, tried, key); nb != nil {
				b = nb
				if x.replay != nil {
					x.replay.rewind()
				}
				if rt.sticky != nil {
					x.setCookie = rt.sticky.setCookie(snaps, pi, b)
				}
				continue
			}
		}
		switch res {
		case timedOut:
			http.Error(w, "gateway timeout", http.StatusGatewayTimeout)
		case statusFailed:
			// Unreachable: a status is swallowed only when a retry was
			// possible; answer as the backend did if it ever happens.
			http.Error(w, http.StatusText(x.head.status), x.head.status)
		default:
			http.Error(w, "bad gateway", http.StatusBadGateway)
		}
		return
	}
}

// clientBodyFailed answers a request whose body could not be read: 413
// when it passed the listener's limit, else 400.
func (h handler) clientBodyFailed(w http.ResponseWriter, err error) {
	var mb *http.MaxBytesError
	if errors.As(err, &mb) {
		tooLarge(w)
		return
	}
	http.Error(w, "reading request body failed", http.StatusBadRequest)
}

func tooLarge(w http.ResponseWriter) {
	// The rest of the body is not read; the connection cannot be reused.
	w.Header().Set("Connection", "close")
	http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
}

// forward sends r to b and relays the response to w. It retries by itself
// only the keep-alive race: a pooled connection the backend had already
// closed, detected before any response byte arrived.
//
// With retryStatus, a response whose status the route retries is read and
// dropped instead of relayed, and statusFailed returned.
func (s *Server) forward(w http.ResponseWriter, r *http.Request, b *upstream.Backend, ip string, x *exchange, retryStatus bool) (outcome, error) {
	noteBackend(w, b) // observe.go
	if u := s.h2For(b); u != nil {
		return s.forwardH2(u, w, r, b, ip, x, retryStatus) // h2.go
	}
	b.Active.Add(1)
	defer b.Active.Add(-1)
	b.Requests.Add(1)

	hasBody := r.Body != nil && r.Body != http.NoBody
	// A request can be sent twice only if repeating it is harmless and
	// nothing of it was consumed from the client, or its body is held in
	// memory.
	replayable := (!hasBody || x.replay != nil) && isIdempotent(r.Method)
	ioTimeout, firstByte := s.tr.ioTimeout, time.Duration(0)
	if rt := x.rt; rt != nil {
		replayable = (!hasBody || x.replay != nil) && rt.retry.replayable(r.Method)
		if rt.timeouts.idle > 0 {
			ioTimeout = rt.timeouts.idle
		}
		firstByte = rt.timeouts.firstByte
	}
	cp := s.tr.pool(b.Addr)
	now := time.Now()
	fresh := false
	for {
		var c *upConn
		if !fresh {
			c = cp.get(now, s.tr.idleTimeout)
		}
		if c != nil && !replayable && !c.alive() {
			c.nc.Close()
			continue
		}
		if c == nil {
			var err error
			c, err = s.dialRoute(r.Context(), cp, x.rt)
			if err != nil {
				s.fail(b)
				return dialFailed, err
			}
		}
		c.attach()
		c.extendDeadline(now, ioTimeout)
		x.c, x.timeout = c, ioTimeout

		err := writeRequest(c.bw, r, ip, hasBody, x)
		if err == nil {
			err = c.bw.Flush()
		}
		var n int
		if err == nil && firstByte > 0 {
			// The wait for the head has its own bound; the idle bound
			// takes over once the head is in.
			c.deadline = time.Now().Add(firstByte)
			err = c.nc.SetDeadline(c.deadline)
		}
		if err == nil && awaitHead(w, c) == errClientLeft {
			// The client left while the backend was thinking: the
			// backend sees its connection close, as nginx does it (499).
			c.close()
			noteStatus(w, statusClientClosed)
			return done, nil
		}
		if err == nil {
			n, err = readResponseHead(c.br, &x.head)
			for err == nil && x.head.status >= 100 && x.head.status < 200 && x.head.status != 101 {
				// Interim responses (100 Continue, 103 Early Hints) are
				// dropped: the request body was sent without waiting and
				// the server already answered the client's Expect.
				n, err = readResponseHead(c.br, &x.head)
			}
		}
		if err != nil {
			reused := c.reused
			c.close()
			if errors.Is(err, errClientBody) {
				// The client went away or sent a broken body; the backend
				// did nothing wrong.
				return clientFailed, err
			}
			if reused && n == 0 && replayable && isConnGone(err) {
				fresh = true
				if x.replay != nil {
					x.replay.rewind()
				}
				continue
			}
			s.fail(b)
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				return timedOut, err
			}
			return sendFailed, err
		}
		if x.head.status == 101 {
			c.close()
			s.fail(b)
			return sendFailed, errors.New("backend switched protocols without being asked to")
		}
		if firstByte > 0 {
			c.deadline = time.Now().Add(ioTimeout)
			c.nc.SetDeadline(c.deadline)
		}
		if retryStatus && x.rt.retry.statuses.has(x.head.status) {
			s.report(b, x.rt, x.head.status)
			s.discard(r, c, x)
			return statusFailed, nil
		}
		return s.relay(w, r, b, c, x)
	}
}

// relay writes the parsed response head to w and copies the body.
func (s *Server) relay(w http.ResponseWriter, r *http.Request, b *upstream.Backend, c *upConn, x *exchange) (outcome, error) {
	h := &x.head
	copyHeader(w.Header(), h)
	if rt := x.rt; rt != nil {
		if !rt.respOps.empty() {
			rt.respOps.apply(w.Header())
		}
		if x.setCookie != nil {
			w.Header()["Set-Cookie"] = append(w.Header()["Set-Cookie"], x.setCookie...)
		}
	}
	noBody := r.Method == http.MethodHead || h.status == 204 || h.status == 304
	w.WriteHeader(h.status)
	var err error
	switch {
	case noBody:
	case h.contentLength >= 0:
		err = copyN(w, c.br, h.contentLength, x)
	case h.chunked:
		err = copyChunked(w, c.br, x)
	default:
		err = copyToEOF(w, c.br, x)
	}
	if err != nil {
		c.close()
		var ce clientError
		if errors.As(err, &ce) {
			// The client left mid-body; the backend is fine.
			s.report(b, x.rt, h.status)
			return done, nil
		}
		s.fail(b)
		return relayFailed, err
	}
	s.report(b, x.rt, h.status)
	if h.close || c.br.Buffered() > 0 || (!noBody && h.contentLength < 0 && !h.chunked) {
		c.close()
	} else {
		c.cp.put(c, time.Now())
	}
	return done, nil
}

func (s *Server) fail(b *upstream.Backend) {
	b.Failures.Add(1)
	b.ConsecutiveFailures.Add(1)
	if s.opts.Passive != nil {
		s.opts.Passive.Failure(b)
	}
}

func (s *Server) succeed(b *upstream.Backend) {
	if b.ConsecutiveFailures.Load() != 0 {
		b.ConsecutiveFailures.Store(0)
	}
	if s.opts.Passive != nil {
		s.opts.Passive.Success(b)
	}
}

// errClientBody marks a failure to read the request body from the client.
var errClientBody = errors.New("reading request body from client")

type clientBodyError struct{ err error }

func (e clientBodyError) Error() string   { return errClientBody.Error() + ": " + e.err.Error() }
func (e clientBodyError) Is(t error) bool { return t == errClientBody }
func (e clientBodyError) Unwrap() error   { return e.err }

// clientError marks a failure to write the response to the client.
type clientError struct{ err error }

func (e clientError) Error() string { return "writing response to client: " + e.err.Error() }
func (e clientError) Unwrap() error { return e.err }

// writeRequest writes the request head and body for the backend: origin
// form, hop-by-hop headers and those named by Connection removed (RFC 9110
// §7.6.1), X-Forwarded-For extended with the client address, Host kept.
func writeRequest(bw *bufio.Writer, r *http.Request, ip string, hasBody bool, x *exchange) error {
	writeHead(bw, r, ip)

	chunked := false
	switch {
	case r.ContentLength > 0:
		bw.WriteString("Content-Length: ")
		bw.Write(strconv.AppendInt(bw.AvailableBuffer(), r.ContentLength, 10))
		bw.WriteString("\r\n")
	case hasBody:
		chunked = true
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	case r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch:
		// Some servers insist on a length for these methods (411).
		bw.WriteString("Content-Length: 0\r\n")
	}
	_, err := bw.WriteString("\r\n")
	if err != nil || !hasBody {
		return err
	}
	return writeBody(bw, r.Body, chunked, x)
}

// writeHead writes the request line and the end-to-end header fields,
// without the framing fields and the final empty line.
func writeHead(bw *bufio.Writer, r *http.Request, ip string) {
	uri := r.RequestURI
	if uri == "" || (uri[0] != '/' && uri != "*") {
		uri = r.URL.RequestURI()
	}
	bw.WriteString(r.Method)
	bw.WriteByte(' ')
	bw.WriteString(uri)
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(r.Host)
	bw.WriteString("\r\n")
	connVals := r.Header["Connection"]
	for k, vv := range r.Header {
		if isHopByHop(k) || (connVals != nil && headerHasToken(connVals, k)) {
			continue
		}
		for _, v := range vv {
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(v)
			bw.WriteString("\r\n")
		}
	}
	bw.WriteString("X-Forwarded-For: ")
	for _, v := range r.Header["X-Forwarded-For"] {
		bw.WriteString(v)
		bw.WriteString(", ")
	}
	bw.WriteString(ip)
	bw.WriteString("\r\n")
}

// writeBody copies the request body, chunk-encoding it when its length is
// unknown. It uses its own loop because bufio.Writer.ReadFrom would hand
// the copy to net.TCPConn, which allocates a buffer per call.
func writeBody(bw *bufio.Writer, body io.Reader, chunked bool, x *exchange) error {
	buf := x.copyBuf()
	for {
		if x.c != nil {
			x.c.extendDeadline(time.Now(), x.timeout)
		}
		n, rerr := body.Read(buf)
		if n > 0 {
			if chunked {
				bw.Write(strconv.AppendInt(bw.AvailableBuffer(), int64(n), 16))
				bw.WriteString("\r\n")
			}
			if _, err := bw.Write(buf[:n]); err != nil {
				return err
			}
			if chunked {
				bw.WriteString("\r\n")
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return clientBodyError{rerr}
		}
	}
	if chunked {
		_, err := bw.WriteString("0\r\n\r\n")
		return err
	}
	return nil
}

// copyHeader moves the backend's header fields into dst, minus hop-by-hop
// ones. All names and values share one string, and all value slices one
// array: two allocations for the whole header.
func copyHeader(dst http.Header, h *responseHead) {
	if len(h.fields) == 0 {
		dst["Date"] = nil
		return
	}
	base := int(h.fields[0].nameStart)
	all := string(h.raw[base:h.fields[len(h.fields)-1].valueEnd])
	vals := make([]string, len(h.fields))
	var connVal []byte
	if h.connTokens {
		connVal = connectionValue(h)
	}
	sawDate := false
	for i, f := range h.fields {
		name := h.name(f)
		if isHopByHopBytes(name) {
			continue
		}
		if string(name) == "Content-Length" && h.contentLength < 0 {
			continue // the length came with Transfer-Encoding: not to be trusted
		}
		if connVal != nil && bytesHasToken(connVal, name) {
			continue
		}
		key := all[int(f.nameStart)-base : int(f.nameEnd)-base]
		vals[i] = all[int(f.valueStart)-base : int(f.valueEnd)-base]
		if key == "Date" {
			sawDate = true
		}
		if old, ok := dst[key]; ok {
			dst[key] = append(old, vals[i])
		} else {
			dst[key] = vals[i : i+1 : i+1]
		}
	}
	// Without these, net/http would sniff a Content-Type and add a Date
	// that the backend never sent; a proxy should pass the response as is.
	if !h.hasContentType {
		dst["Content-Type"] = nil
	}
	if !sawDate {
		dst["Date"] = nil
	}
}

// connectionValue returns the Connection header's values, joined when
// there are several lines of it (rare, so it may allocate).
func connectionValue(h *responseHead) []byte {
	var v []byte
	for _, f := range h.fields {
		if string(h.name(f)) == "Connection" {
			if v != nil {
				v = append(append(v, ','), h.value(f)...)
			} else {
				v = append([]byte(nil), h.value(f)...)
			}
		}
	}
	return v
}

// copyN copies exactly n body bytes. Bytes already in the read buffer are
// written from it directly; larger bodies are read straight into the copy
// buffer, bypassing the bufio.Reader.
func copyN(w http.ResponseWriter, br *bufio.Reader, n int64, x *exchange) error {
	for n > 0 {
		if br.Buffered() == 0 && n >= int64(br.Size()) {
			buf := x.copyBuf()
			if int64(len(buf)) > n {
				buf = buf[:n]
			}
			x.touch(br)
			m, err := br.Read(buf)
			if m > 0 {
				if _, werr := w.Write(buf[:m]); werr != nil {
					return clientError{werr}
				}
				n -= int64(m)
			}
			if err != nil {
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return err
			}
			continue
		}
		if br.Buffered() == 0 {
			x.touch(br)
			if _, err := br.Peek(1); err != nil {
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return err
			}
		}
		m := min(int64(br.Buffered()), n)
		p, _ := br.Peek(int(m))
		if _, werr := w.Write(p); werr != nil {
			return clientError{werr}
		}
		br.Discard(int(m))
		n -= m
	}
	return nil
}

// flushIfIdle pushes what was written to the client when the backend has
// nothing more buffered, so that streamed responses (server-sent events,
// long polls) reach the client as they are produced.
func flushIfIdle(w http.ResponseWriter, br *bufio.Reader) {
	if br.Buffered() == 0 {
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
	}
}

// maxChunkLine bounds a chunk-size line (size plus extensions).
const maxChunkLine = 4 << 10

var errBadChunk = errors.New("malformed chunked response body")

// copyChunked decodes a chunked body onto w, which re-frames it for
// the client. Trailer fields are passed on as http.TrailerPrefix headers.
func copyChunked(w http.ResponseWriter, br *bufio.Reader, x *exchange) error {
	for {
		x.touch(br)
		line, err := readLine(br)
		if err != nil {
			return err
		}
		if i := indexByte(line, ';'); i >= 0 {
			line = line[:i] // chunk extensions are ignored (RFC 9112 §7.1.1)
		}
		size, ok := parseHex(trimOWS(line))
		if !ok {
			return errBadChunk
		}
		if size == 0 {
			x.touch(br)
			return copyTrailers(w, br)
		}
		if err := copyN(w, br, size, x); err != nil {
			return err
		}
		x.touch(br)
		crlf, err := readLine(br)
		if err != nil {
			return err
		}
		if len(crlf) != 0 {
			return errBadChunk
		}
		flushIfIdle(w, br)
	}
}

// copyTrailers reads the trailer section after the last chunk.
func copyTrailers(w http.ResponseWriter, br *bufio.Reader) error {
	total := 0
	for {
		line, err := readLine(br)
		if err != nil {
			return err
		}
		if len(line) == 0 {
			return nil
		}
		total += len(line)
		if total > maxResponseHead {
			return errHeadTooLarge
		}
		name, value, ok := strings.Cut(string(line), ":")
		if !ok || name == "" {
			return errBadChunk
		}
		w.Header().Add(http.TrailerPrefix+http.CanonicalHeaderKey(name), strings.TrimSpace(value))
	}
}

// readLine reads one line of at most maxChunkLine bytes, without its line
// end. The result is valid until the next read from br.
func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err == bufio.ErrBufferFull || len(line) > maxChunkLine {
		return nil, errBadChunk
	}
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

func parseHex(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 15 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		n = n<<4 | int64(c)
	}
	return n, true
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

func indexByte(b []byte, c byte) int {
	for i := range b {
		if b[i] == c {
			return i
		}
	}
	return -1
}

// copyToEOF copies a body delimited by the backend closing the connection.
func copyToEOF(w http.ResponseWriter, br *bufio.Reader, x *exchange) error {
	buf := x.copyBuf()
	for {
		x.touch(br)
		n, err := br.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return clientError{werr}
			}
			flushIfIdle(w, br)
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

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

// isIdempotent lists the methods RFC 9110 §9.2.2 lets a proxy repeat.
func isIdempotent(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut,
		http.MethodDelete, http.MethodTrace:
		return true
	}
	return false
}

// isConnGone reports whether err means the backend closed the connection:
// the signature of a pooled connection that went stale.
func isConnGone(err error) bool {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	var ne *net.OpError
	if errors.As(err, &ne) && !ne.Timeout() {
		return true // ECONNRESET, EPIPE and the like
	}
	return false
}

// clientIP returns the host part of a RemoteAddr without allocating.
func clientIP(addr string) string {
	if i := strings.LastIndexByte(addr, ':'); i >= 0 {
		addr = addr[:i]
	}
	return strings.TrimSuffix(strings.TrimPrefix(addr, "["), "]")
}
