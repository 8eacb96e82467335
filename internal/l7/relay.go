package l7

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/strata-lb/strata/internal/upstream"
)

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

// clientError marks a failure to write the response to the client.
type clientError struct{ err error }

func (e clientError) Error() string { return "writing response to client: " + e.err.Error() }

func (e clientError) Unwrap() error { return e.err }

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
