package protocol

import (
	"bytes"
	"io"
)

const (
	// readBufSize is the initial read buffer, as memcached's 16 KiB.
	readBufSize = 16 << 10
	// maxPlainLine is how many bytes without a newline memcached buffers
	// before it closes the connection, unless the line is a get or gets.
	maxPlainLine = 2048
	// maxGetLine bounds a multi-get line. memcached has no bound; we refuse
	// to buffer more than this for one request.
	maxGetLine = 2 << 20
)

// reader buffers one connection's input. Slices it returns stay valid until
// the next call that reads.
type reader struct {
	src  io.Reader
	buf  []byte
	r, w int
	n    int64 // bytes read from src, for stats
}

func newReader(src io.Reader) *reader {
	return &reader{src: src, buf: make([]byte, readBufSize)}
}

// buffered reports how many bytes are waiting to be parsed.
func (rd *reader) buffered() int { return rd.w - rd.r }

// fill reads at least one more byte from src, making room first.
func (rd *reader) fill() error {
	if rd.r > 0 {
		copy(rd.buf, rd.buf[rd.r:rd.w])
		rd.w -= rd.r
		rd.r = 0
	}
	if rd.w == 0 && len(rd.buf) > readBufSize {
		rd.buf = make([]byte, readBufSize) // a long multi-get is over: give the memory back
	}
	if rd.w == len(rd.buf) {
		if len(rd.buf) >= maxGetLine {
			return errCloseConn
		}
		nb := make([]byte, min(2*len(rd.buf), maxGetLine))
		copy(nb, rd.buf[:rd.w])
		rd.buf = nb
	}
	n, err := rd.src.Read(rd.buf[rd.w:])
	rd.w += n
	rd.n += int64(n)
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// readLine returns the next line including its "\n". Like memcached, it gives
// up on (errCloseConn) a line that grows past 2048 bytes without a newline,
// unless it begins with "get " or "gets ".
func (rd *reader) readLine() ([]byte, error) {
	scanned := 0
	for {
		if i := bytes.IndexByte(rd.buf[rd.r+scanned:rd.w], '\n'); i >= 0 {
			line := rd.buf[rd.r : rd.r+scanned+i+1]
			rd.r += scanned + i + 1
			return line, nil
		}
		scanned = rd.w - rd.r
		if scanned > maxPlainLine && !isGetPrefix(rd.buf[rd.r:rd.w]) {
			return nil, errCloseConn
		}
		if err := rd.fill(); err != nil {
			return nil, err
		}
	}
}

func isGetPrefix(b []byte) bool {
	i := 0
	for i < len(b) && b[i] == ' ' {
		i++
	}
	if i > 100 {
		return false
	}
	b = b[i:]
	return bytes.HasPrefix(b, []byte("get ")) || bytes.HasPrefix(b, []byte("gets "))
}

// readFull fills p from the buffer and then straight from src.
func (rd *reader) readFull(p []byte) error {
	n := copy(p, rd.buf[rd.r:rd.w])
	rd.r += n
	if n == len(p) {
		return nil
	}
	m, err := io.ReadFull(rd.src, p[n:])
	rd.n += int64(m)
	return err
}

// discard drops n bytes of input.
func (rd *reader) discard(n int) error {
	for n > 0 {
		if rd.r == rd.w {
			if err := rd.fill(); err != nil {
				return err
			}
		}
		k := min(n, rd.w-rd.r)
		rd.r += k
		n -= k
	}
	return nil
}
