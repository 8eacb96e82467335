package l7

import (
	"bufio"
	"sync"
	"time"
)

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
