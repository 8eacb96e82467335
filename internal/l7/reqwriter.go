package l7

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"
)

// errClientBody marks a failure to read the request body from the client.
var errClientBody = errors.New("reading request body from client")

type clientBodyError struct{ err error }

func (e clientBodyError) Error() string { return errClientBody.Error() + ": " + e.err.Error() }

func (e clientBodyError) Is(t error) bool { return t == errClientBody }

func (e clientBodyError) Unwrap() error { return e.err }

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
