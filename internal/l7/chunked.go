package l7

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"strings"
)

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
