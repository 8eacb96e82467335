package l7

import (
	"errors"
	"io"
	"net/http"
	"sync"
	"time"
)

// h1Body is a request body read from the client connection: a length or
// chunked. It is made per request and closed when the handler returns, so
// a goroutine still holding it (an HTTP/2 upstream's body writer) reads an
// error, never the next request.
type h1Body struct {
	c       *h1Conn
	mu      sync.Mutex
	chunked bool
	left    int64 // bytes left: of the body, or of the current chunk
	inChunk bool  // chunked: a chunk's data is being read
	eof     bool
	err     error
	closed  bool
	// expect is set when the client waits for 100 Continue before it
	// sends the body; the first Read sends it.
	expect bool
	// deadline is the read deadline last set on the connection.
	deadline time.Time
}

// arm sets the connection's read deadline before a read that may wait for
// the client, as rarely as it can: when the one set before is less than
// half client_body_timeout away.
func (b *h1Body) arm() {
	if b.c.nc == nil || b.c.br.Buffered() > 0 {
		return
	}
	now := time.Now()
	if b.deadline.Sub(now) >= b.c.to.body/2 {
		return
	}
	b.deadline = now.Add(b.c.to.body)
	b.c.nc.SetReadDeadline(b.deadline)
}

var errBodyClosed = errors.New("http: read on a request body after its handler returned")

func (b *h1Body) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, errBodyClosed
	}
	return b.read(p)
}

func (b *h1Body) read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.eof {
		return 0, io.EOF
	}
	if b.expect {
		b.expect = false
		if err := b.c.w.sendContinue(); err != nil {
			// Also when the response went out first: the client was
			// never asked for the body, so waiting for it would wait
			// for ever.
			b.err = err
			return 0, err
		}
	}
	if !b.chunked {
		n, err := b.readData(p)
		if b.left == 0 {
			b.eof = true
			return n, io.EOF
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		b.err = err
		return n, err
	}
	for !b.inChunk {
		size, err := b.chunkHeader()
		if err != nil {
			b.err = err
			return 0, err
		}
		if size == 0 {
			if err := b.trailers(); err != nil {
				b.err = err
				return 0, err
			}
			b.eof = true
			return 0, io.EOF
		}
		b.left, b.inChunk = size, true
	}
	n, err := b.readData(p)
	if b.left == 0 {
		b.inChunk = false
		if err = b.crlf(); err != nil {
			b.err = err
			return n, err
		}
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		b.err = err
	}
	return n, err
}

// readData reads body bytes, at most the b.left that remain of the body
// or of the current chunk.
func (b *h1Body) readData(p []byte) (int, error) {
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	b.arm()
	n, err := b.c.br.Read(p)
	b.left -= int64(n)
	return n, err
}

var errBadRequestChunk = errors.New("malformed chunked request body")

// chunkLine reads one line of a chunked body, which must end in CRLF: a
// bare LF is how one parser's chunk becomes another's request.
func (b *h1Body) chunkLine() ([]byte, error) {
	b.arm()
	line, err := b.c.br.ReadSlice('\n')
	if err != nil {
		if err == io.EOF {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, errBadRequestChunk // including a line over the buffer
	}
	if len(line) > maxChunkLine || len(line) < 2 || line[len(line)-2] != '\r' {
		return nil, errBadRequestChunk
	}
	return line[:len(line)-2], nil
}

func (b *h1Body) chunkHeader() (int64, error) {
	line, err := b.chunkLine()
	if err != nil {
		return 0, err
	}
	// chunk-size [ BWS ";" chunk-ext ] (RFC 9112 §7.1): the size starts
	// the line, and what follows it is whitespace, an extension that is
	// ignored (§7.1.1), or nothing. A control byte anywhere, such as a
	// bare CR, which other parsers may take for a line end, is refused.
	n := 0
	for n < len(line) && isHex(line[n]) {
		n++
	}
	size, ok := parseHex(line[:n])
	if !ok || size < 0 {
		return 0, errBadRequestChunk
	}
	ext := line[n:]
	for len(ext) > 0 && (ext[0] == ' ' || ext[0] == '\t') {
		ext = ext[1:]
	}
	if len(ext) > 0 && ext[0] != ';' {
		return 0, errBadRequestChunk
	}
	for _, c := range ext {
		if c < ' ' && c != '\t' || c == 0x7f {
			return 0, errBadRequestChunk
		}
	}
	return size, nil
}

func (b *h1Body) crlf() error {
	line, err := b.chunkLine()
	if err != nil {
		return err
	}
	if len(line) != 0 {
		return errBadRequestChunk
	}
	return nil
}

// trailers reads and drops the trailer section: a proxy that re-frames
// the body cannot promise a backend the client's trailers in order, and
// no backend of an HTTP/1.1 proxy relies on them.
func (b *h1Body) trailers() error {
	total := 0
	for {
		line, err := b.chunkLine()
		if err != nil {
			return err
		}
		if len(line) == 0 {
			return nil
		}
		if total += len(line); total > b.c.s.maxHeader {
			return errBadRequestChunk
		}
		// Dropped, but held to what a header field is: a line that is
		// no field is no trailer, whatever another parser makes of it.
		if _, _, _, p := splitField(line, 0, len(line), true); p != fieldOK {
			return errBadRequestChunk
		}
	}
}

// close ends the body when its handler returns. What is left unread is
// read and dropped, up to maxRequestDiscard, and close reports whether the
// connection is positioned at the next request. A client still waiting
// for 100 Continue sent nothing, so nothing is read.
func (b *h1Body) close() bool {
	if !b.mu.TryLock() {
		// Another goroutine (an HTTP/2 upstream's body writer) is in a
		// read that may wait for the client: cut it short. The
		// connection's position is then unknown, so it is not kept.
		b.c.nc.SetReadDeadline(time.Now())
		b.mu.Lock()
		defer b.mu.Unlock()
		b.closed = true
		return false
	}
	defer b.mu.Unlock()
	if b.closed {
		return false
	}
	b.closed = true
	if b.expect && !b.eof {
		return false // the client may send the body anyway; do not guess
	}
	if b.err != nil {
		return false
	}
	var buf [4 << 10]byte
	read := 0
	for !b.eof {
		if read > maxRequestDiscard {
			return false
		}
		n, err := b.read(buf[:])
		read += n
		if err != nil && err != io.EOF {
			return false
		}
	}
	return true
}

var _ io.ReadCloser = (*h1Body)(nil)

// Close is a handler's close of the body; the server's own close comes
// when the handler returns.
func (b *h1Body) Close() error { return nil }

var _ http.ResponseWriter = (*h1Writer)(nil)
