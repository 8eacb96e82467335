package l7

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// h1Writer is the http.ResponseWriter of h1Server: the head goes into the
// connection's write buffer with the first body bytes, and a response the
// handler finishes within one buffer goes out in one write.
//
// Framing follows net/http: a declared Content-Length is kept to (a
// shorter body closes the connection, a longer one is refused with
// http.ErrContentLength); without one, a body that ends while still held
// gets a Content-Length, and a longer one is chunked (HTTP/1.1) or ends
// with the connection (HTTP/1.0). Keys set to nil (Date, Content-Type)
// suppress the defaults, as with net/http.
type h1Writer struct {
	c   *h1Conn
	hdr http.Header
	req *http.Request

	// headMu orders the heads written to the connection: the final head
	// (commit), interim ones, and the 100 Continue a request body's first
	// read sends, which may come from another goroutine (an HTTP/2
	// upstream reads the body while the handler writes the response).
	// committed is written under it.
	headMu sync.Mutex

	status      int
	wroteHeader bool // the status is fixed
	committed   bool // the head is in the write buffer
	chunked     bool
	declared    int64 // the Content-Length given, or -1
	written     int64
	noBody      bool
	closeAfter  bool
	hijacked    bool
	failed      bool   // writing to the client failed
	pending     []byte // body held before the head, while its length is unknown
}

// pendingMax is how much body is held to learn its length before the
// response is chunked instead (net/http holds 2 KB).
const pendingMax = 2 << 10

func (w *h1Writer) reset(r *http.Request) {
	clear(w.hdr)
	w.req = r
	w.status, w.wroteHeader, w.committed, w.chunked = 0, false, false, false
	w.declared, w.written, w.noBody, w.closeAfter, w.failed = -1, 0, false, false, false
	w.pending = w.pending[:0]
}

func (w *h1Writer) Header() http.Header { return w.hdr }

func (w *h1Writer) WriteHeader(code int) {
	if w.hijacked || w.wroteHeader {
		return
	}
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		// An interim response goes out at once, with the fields set so
		// far (103 Early Hints carries Link); the final one follows.
		w.headMu.Lock()
		defer w.headMu.Unlock()
		w.writeStatusLine(code)
		w.writeFields(code)
		w.c.bw.WriteString("\r\n")
		if w.c.bw.Flush() != nil {
			w.failed = true
		}
		return
	}
	w.status, w.wroteHeader = code, true
	w.noBody = w.req.Method == http.MethodHead || code == 204 || code == 304 || code < 200
	if v, ok := w.hdr["Content-Length"]; ok && len(v) > 0 {
		w.declareLength(v)
	}
}

// declareLength takes the handler's Content-Length values. A valid one
// (repeated or listed identically, as a backend may send it) is kept as
// one plain number; an invalid one is dropped, as net/http drops it.
// Either way the response carries at most one Content-Length: written
// as given next to the one commit adds, or next to chunking, it would
// let the client (or a cache after it) choose the framing.
func (w *h1Writer) declareLength(vals []string) {
	n, ok := int64(-1), true
	for _, v := range vals {
		m, valid := plainLength(v)
		if !valid {
			m, valid = parseContentLength([]byte(v))
		}
		if !valid || n >= 0 && m != n {
			ok = false
			break
		}
		n = m
	}
	if !ok {
		delete(w.hdr, "Content-Length")
		return
	}
	w.declared = n
	if len(vals) != 1 || vals[0] != strconv.FormatInt(n, 10) {
		w.hdr["Content-Length"] = []string{strconv.FormatInt(n, 10)}
	}
}

// plainLength parses the usual Content-Length, 1 to 18 digits, without
// the copy parseContentLength's []byte would cost.
func plainLength(v string) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

func (w *h1Writer) Write(p []byte) (int, error) {
	if w.hijacked {
		return 0, http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.noBody {
		if w.req.Method == http.MethodHead {
			return len(p), nil
		}
		return 0, http.ErrBodyNotAllowed
	}
	if w.failed {
		return 0, errClientGone
	}
	if w.declared >= 0 && w.written+int64(len(p)) > w.declared {
		return 0, http.ErrContentLength
	}
	if !w.committed {
		if w.declared < 0 && len(w.pending)+len(p) <= pendingMax {
			w.pending = append(w.pending, p...)
			w.written += int64(len(p))
			return len(p), nil
		}
		w.commit(false)
	}
	w.written += int64(len(p))
	if err := w.body(p); err != nil {
		w.failed = true
		return 0, err
	}
	return len(p), nil
}

var errClientGone = fmt.Errorf("writing response: client connection failed")

// body writes p, as a chunk when the response is chunked.
func (w *h1Writer) body(p []byte) error {
	bw := w.c.bw
	if len(p) == 0 {
		return nil
	}
	if w.chunked {
		bw.Write(strconv.AppendInt(bw.AvailableBuffer(), int64(len(p)), 16))
		bw.WriteString("\r\n")
	}
	_, err := bw.Write(p)
	if w.chunked && err == nil {
		_, err = bw.WriteString("\r\n")
	}
	return err
}

// Flush sends what is buffered; a response of unknown length is chunked
// from here on.
func (w *h1Writer) Flush() {
	if w.hijacked {
		return
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.committed {
		w.commit(false)
	}
	if w.c.bw.Flush() != nil {
		w.failed = true
	}
}

// FlushError is Flush with its error, for http.ResponseController.
func (w *h1Writer) FlushError() error {
	w.Flush()
	if w.failed {
		return errClientGone
	}
	return nil
}

// Hijack hands the connection and its buffers to the handler, which then
// owns them; the server forgets the connection.
func (w *h1Writer) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.hijacked {
		return nil, nil, http.ErrHijacked
	}
	c := w.c
	if err := c.bw.Flush(); err != nil {
		return nil, nil, err
	}
	w.hijacked = true
	// The new owner sets its own deadlines: the buffer now writes to the
	// connection itself, not through sendWriter's.
	c.bw.Reset(c.nc)
	c.nc.SetDeadline(time.Time{})
	keepAlive(c.nc) // no client timeout bounds a hijacked connection
	c.state.Store(h1Closed)
	c.s.untrack(c)
	return c.nc, bufio.NewReadWriter(c.br, c.bw), nil
}

// finish completes the response after the handler returned. It reports
// whether the response went out whole, framed so that the connection can
// carry another request.
func (w *h1Writer) finish() bool {
	if w.failed && !w.committed {
		return false // the client is gone: nothing to send it
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.committed {
		w.commit(true)
	}
	if w.chunked && !w.failed {
		w.c.bw.WriteString("0\r\n")
		w.writeTrailers()
		w.c.bw.WriteString("\r\n")
	}
	if w.declared >= 0 && w.written < w.declared && !w.noBody {
		w.closeAfter = true // the client is waiting for bytes that will never come
	}
	if w.c.bw.Flush() != nil {
		w.failed = true
	}
	if cap(w.pending) > 64<<10 {
		w.pending = nil
	}
	return !w.failed
}

// errNoContinue is a body read after the response went out to a client
// that waits for 100 Continue: it will not send the body now.
var errNoContinue = errors.New("request body not sent: the response went out before 100 Continue")

// sendContinue answers Expect: 100-continue when the body is first read,
// unless the final head went out already (a handler that answered without
// reading): a 100 after it would be read as the next response.
func (w *h1Writer) sendContinue() error {
	w.headMu.Lock()
	defer w.headMu.Unlock()
	if w.committed {
		return errNoContinue
	}
	bw := w.c.bw
	bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
	return bw.Flush()
}

// commit writes the head, then the body held so far. final says the
// handler has returned, so a body of unknown length is all in pending and
// gets a Content-Length.
func (w *h1Writer) commit(final bool) {
	w.headMu.Lock()
	defer w.headMu.Unlock()
	w.committed = true
	bw := w.c.bw
	w.writeStatusLine(w.status)
	w.writeFields(w.status)
	if _, ok := w.hdr["Date"]; !ok {
		bw.Write(dateLine())
	}
	if !w.noBody && w.declared < 0 {
		switch {
		case final && !w.hasTrailers():
			w.declared = int64(len(w.pending))
			bw.WriteString("Content-Length: ")
			bw.Write(strconv.AppendInt(bw.AvailableBuffer(), w.declared, 10))
			bw.WriteString("\r\n")
		case w.req.ProtoMinor >= 1:
			w.chunked = true
			bw.WriteString("Transfer-Encoding: chunked\r\n")
		default:
			w.closeAfter = true // HTTP/1.0: the end of the body is the close
		}
	}
	if w.c.head.close || w.c.s.shutdown.Load() {
		w.closeAfter = true
	}
	switch {
	case w.closeAfter:
		bw.WriteString("Connection: close\r\n")
	case w.req.ProtoMinor == 0:
		bw.WriteString("Connection: keep-alive\r\n")
	}
	bw.WriteString("\r\n")
	if len(w.pending) > 0 {
		if err := w.body(w.pending); err != nil {
			w.failed = true
		}
		w.pending = w.pending[:0]
	}
}

func (w *h1Writer) writeStatusLine(code int) {
	bw := w.c.bw
	bw.WriteString("HTTP/1.1 ")
	bw.Write(strconv.AppendInt(bw.AvailableBuffer(), int64(code), 10))
	bw.WriteByte(' ')
	text := http.StatusText(code)
	if text == "" {
		text = "status code " + strconv.Itoa(code)
	}
	bw.WriteString(text)
	bw.WriteString("\r\n")
}

// writeFields writes the header fields the handler set for a response
// of status code, minus framing this writer decides and trailers; a line
// end in a value becomes a space, as net/http makes it. 1xx, 204 and 304
// responses carry no body, hence no Content-Type or Content-Length (RFC
// 9110 §8.6), which net/http drops too.
func (w *h1Writer) writeFields(code int) {
	bw := w.c.bw
	bodyless := code < 200 || code == 204 || code == 304
	for k, vv := range w.hdr {
		switch {
		case len(vv) == 0, strings.HasPrefix(k, http.TrailerPrefix), k == "Transfer-Encoding":
			continue
		case bodyless && (k == "Content-Length" || k == "Content-Type"):
			continue
		case k == "Connection":
			if headerHasToken(vv, "close") {
				w.closeAfter = true
			}
			continue // written once, by commit
		}
		for _, v := range vv {
			bw.WriteString(k)
			bw.WriteString(": ")
			writeFieldValue(bw, v)
			bw.WriteString("\r\n")
		}
	}
}

func writeFieldValue(bw *bufio.Writer, v string) {
	if strings.ContainsAny(v, "\r\n") {
		v = strings.NewReplacer("\r", " ", "\n", " ").Replace(v)
	}
	bw.WriteString(v)
}

// hasTrailers reports whether the handler declared or set trailers,
// which only a chunked response can carry.
func (w *h1Writer) hasTrailers() bool {
	if len(w.hdr["Trailer"]) > 0 {
		return true
	}
	for k := range w.hdr {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			return true
		}
	}
	return false
}

// writeTrailers writes the trailer fields after the last chunk: those
// declared in Trailer and set after the head, and those set with
// http.TrailerPrefix.
func (w *h1Writer) writeTrailers() {
	bw := w.c.bw
	for k, vv := range w.hdr {
		name, ok := strings.CutPrefix(k, http.TrailerPrefix)
		if !ok {
			continue
		}
		for _, v := range vv {
			bw.WriteString(name)
			bw.WriteString(": ")
			writeFieldValue(bw, v)
			bw.WriteString("\r\n")
		}
	}
	for _, declared := range w.hdr["Trailer"] {
		forEachToken([]byte(declared), func(tok []byte) {
			name := http.CanonicalHeaderKey(string(tok))
			for _, v := range w.hdr[name] {
				bw.WriteString(name)
				bw.WriteString(": ")
				writeFieldValue(bw, v)
				bw.WriteString("\r\n")
			}
		})
	}
}

// dateLine returns "Date: <now>\r\n", formatted once a second.
func dateLine() []byte {
	now := time.Now()
	sec := now.Unix()
	if d := dateCache.Load(); d != nil && d.sec == sec {
		return d.line
	}
	d := &cachedDate{sec: sec, line: []byte("Date: " + now.UTC().Format(http.TimeFormat) + "\r\n")}
	dateCache.Store(d)
	return d.line
}

type cachedDate struct {
	sec  int64
	line []byte
}

var dateCache atomic.Pointer[cachedDate]
