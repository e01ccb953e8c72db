package protocol

import (
	"errors"
	"net"
	"strconv"
	"time"
)

const (
	// flushThreshold is how much reply data may wait for the end of a
	// pipeline before it is written anyway: it bounds the write buffer.
	flushThreshold = 64 << 10
	// directWrite is the value size from which a value is written straight
	// from the item instead of being copied into the write buffer.
	directWrite = 32 << 10
)

// ErrHijacked is returned by ResponseWriter methods after Hijack.
var ErrHijacked = errors.New("protocol: connection has been hijacked")

// A ResponseWriter buffers the replies to one connection's requests. The
// Server writes the buffer out when the client has no more pipelined requests
// waiting, or when it grows past 64 KiB. While the current request is
// noreply, everything written is dropped.
type ResponseWriter struct {
	conn         net.Conn
	buf          []byte
	quiet        bool
	hijacked     bool
	err          error
	n            int64 // bytes written to conn, for stats
	writeTimeout time.Duration
	deadline     time.Time // the write deadline armed on conn
	rd           *reader
	connValue    any
}

// ConnValue returns the value a Handler attached to this connection with
// SetConnValue, or nil. It lets a Handler keep per-connection state, such
// as "this is a peer connection", across requests.
func (w *ResponseWriter) ConnValue() any { return w.connValue }

// SetConnValue attaches v to this connection for later requests.
func (w *ResponseWriter) SetConnValue(v any) { w.connValue = v }

func newResponseWriter(c net.Conn, rd *reader, writeTimeout time.Duration) *ResponseWriter {
	return &ResponseWriter{conn: c, buf: make([]byte, 0, 4096), rd: rd, writeTimeout: writeTimeout}
}

// WriteLine writes s followed by "\r\n": a status reply such as "STORED".
func (w *ResponseWriter) WriteLine(s string) {
	if w.quiet {
		return
	}
	w.buf = append(w.buf, s...)
	w.buf = append(w.buf, "\r\n"...)
	w.maybeFlush()
}

// WriteUint writes a number on its own line: the reply to incr and decr.
func (w *ResponseWriter) WriteUint(v uint64) {
	if w.quiet {
		return
	}
	w.buf = strconv.AppendUint(w.buf, v, 10)
	w.buf = append(w.buf, "\r\n"...)
}

// WriteValue writes one "VALUE <key> <flags> <bytes>[ <cas>]" item and its
// data. data is written as is; it must not change until the reply is flushed.
func (w *ResponseWriter) WriteValue(key []byte, flags uint32, data []byte, cas uint64, withCas bool) {
	if w.quiet {
		return
	}
	w.buf = append(w.buf, "VALUE "...)
	w.buf = append(w.buf, key...)
	w.buf = append(w.buf, ' ')
	w.buf = strconv.AppendUint(w.buf, uint64(flags), 10)
	w.buf = append(w.buf, ' ')
	w.buf = strconv.AppendUint(w.buf, uint64(len(data)), 10)
	if withCas {
		w.buf = append(w.buf, ' ')
		w.buf = strconv.AppendUint(w.buf, cas, 10)
	}
	w.buf = append(w.buf, "\r\n"...)
	if len(data) >= directWrite {
		w.Flush()
		w.write(data)
	} else {
		w.buf = append(w.buf, data...)
	}
	w.buf = append(w.buf, "\r\n"...)
	w.maybeFlush()
}

// WriteEnd writes "END", which closes the reply to a retrieval or stats.
func (w *ResponseWriter) WriteEnd() { w.WriteLine("END") }

// WriteStat writes one "STAT <name> <value>" line.
func (w *ResponseWriter) WriteStat(name, value string) {
	if w.quiet {
		return
	}
	w.buf = append(w.buf, "STAT "...)
	w.buf = append(w.buf, name...)
	w.buf = append(w.buf, ' ')
	w.buf = append(w.buf, value...)
	w.buf = append(w.buf, "\r\n"...)
}

// WriteStatUint writes one "STAT <name> <number>" line.
func (w *ResponseWriter) WriteStatUint(name string, v uint64) {
	w.WriteStat(name, strconv.FormatUint(v, 10))
}

// WriteError writes err in the protocol's words: "ERROR", "CLIENT_ERROR …" or
// "SERVER_ERROR …". Any other error becomes "SERVER_ERROR <text>".
func (w *ResponseWriter) WriteError(err error) {
	var ce *ClientError
	var se *ServerError
	switch {
	case errors.Is(err, ErrUnknownCommand):
		w.WriteLine("ERROR")
	case errors.As(err, &ce), errors.As(err, &se):
		w.WriteLine(err.Error())
	default:
		w.WriteLine((&ServerError{Msg: err.Error()}).Error())
	}
}

// Write appends raw bytes to the reply, for streams with their own grammar.
// It implements io.Writer and never fails before Flush does.
func (w *ResponseWriter) Write(p []byte) (int, error) {
	if w.quiet {
		return len(p), nil
	}
	w.buf = append(w.buf, p...)
	w.maybeFlush()
	return len(p), w.err
}

func (w *ResponseWriter) maybeFlush() {
	if len(w.buf) >= flushThreshold {
		w.Flush()
	}
}

// Flush writes the buffered replies to the connection.
func (w *ResponseWriter) Flush() error {
	if len(w.buf) > 0 {
		w.write(w.buf)
		w.buf = w.buf[:0]
	}
	if cap(w.buf) > 4*flushThreshold {
		w.buf = make([]byte, 0, 4096)
	}
	return w.err
}

func (w *ResponseWriter) write(p []byte) {
	if w.err != nil {
		return
	}
	if w.hijacked {
		w.err = ErrHijacked
		return
	}
	if w.writeTimeout > 0 {
		// Re-arming a deadline costs a runtime timer update; at one write per
		// request that is measurable, so re-arm only when half of it is used.
		if now := time.Now(); w.deadline.Sub(now) < w.writeTimeout/2 {
			w.deadline = now.Add(w.writeTimeout)
			w.conn.SetWriteDeadline(w.deadline)
		}
	}
	n, err := w.conn.Write(p)
	w.n += int64(n)
	if err != nil {
		w.err = err
	}
}

// Hijack lets the Handler take over the connection, as http.Hijacker does:
// pending replies are flushed, and the Server neither reads from, writes to,
// tracks nor closes the connection again. buffered holds input the client
// already sent that was not yet parsed.
func (w *ResponseWriter) Hijack() (c net.Conn, buffered []byte, err error) {
	if w.hijacked {
		return nil, nil, ErrHijacked
	}
	w.quiet = false
	if err := w.Flush(); err != nil {
		return nil, nil, err
	}
	w.hijacked = true
	buffered = append([]byte(nil), w.rd.buf[w.rd.r:w.rd.w]...)
	w.rd.r = w.rd.w
	return w.conn, buffered, nil
}
