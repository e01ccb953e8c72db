package connpool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/hotcache/hotcache/protocol"
)

var (
	// ErrClosed is returned by Get and Warm after Close.
	ErrClosed = errors.New("connpool: pool closed")
	// ErrBackoff is matched (errors.Is) by the *DialError a Get fails fast
	// with while its address is in redial backoff.
	ErrBackoff = errors.New("connpool: address in redial backoff")
	// ErrPoolTimeout is matched by the error of a Get whose ctx ended while it
	// waited for one of the address's MaxActive connections to be Put. The
	// same error also matches ctx's error (context.DeadlineExceeded or
	// context.Canceled).
	ErrPoolTimeout = errors.New("connpool: timed out waiting for a free connection")
	// ErrInSync marks an error after which the connection is still in
	// protocol sync because the server sent a complete reply: a miss,
	// NOT_STORED, EXISTS, NOT_FOUND. Reusable reports true for any error that
	// matches it; InSync wraps an error so that it does.
	ErrInSync = errors.New("connpool: complete reply; connection in sync")

	// errForgotten tells Get to look its address up again after Forget.
	errForgotten = errors.New("connpool: address forgotten")
)

// A DialError is why Get could not get a new connection to Addr: its dial or
// Hello exchange failed, or the address is in redial backoff after an earlier
// failure, in which case it also matches ErrBackoff.
type DialError struct {
	// Addr is the address that was, or would have been, dialed.
	Addr string
	// Err is why the dial failed; for a Get that failed fast in backoff, the
	// error of the dial that started it.
	Err error
	// Until is, for a Get that failed fast in backoff, when (by Config.Now)
	// the address may be dialed again. It is zero for a dial that failed.
	Until time.Time

	backoff bool
}

// Error describes the failed dial, or the backoff and its cause.
func (e *DialError) Error() string {
	if e.backoff {
		return fmt.Sprintf("connpool: %s in redial backoff (last dial: %v)", e.Addr, e.Err)
	}
	return fmt.Sprintf("connpool: dial %s: %v", e.Addr, e.Err)
}

// Unwrap returns the cause, and ErrBackoff for a Get that failed fast.
func (e *DialError) Unwrap() []error {
	if e.backoff {
		return []error{e.Err, ErrBackoff}
	}
	return []error{e.Err}
}

// Reusable reports whether a connection can go back to the pool after a
// request that ended with err; Put applies it. It is true for nil, for a
// *protocol.ClientError (the server rejected the request and read all of it)
// and for errors matching ErrInSync (see InSync), and false for everything
// else, including *protocol.ServerError, "ERROR" and any error that also
// matches an I/O failure: a timeout, EOF or a short read, a closed
// connection, or a cancelled or expired ctx. When in doubt the connection is
// closed: a spare dial is cheap, a reply read by the wrong request is not.
func Reusable(err error) bool {
	if err == nil {
		return true
	}
	if ioFailure(err) {
		return false
	}
	var ce *protocol.ClientError
	return errors.Is(err, ErrInSync) || errors.As(err, &ce)
}

// ioFailure reports whether err says the stream may be cut mid-reply.
func ioFailure(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrDeadlineExceeded) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// InSync returns an error that reads as err and also matches ErrInSync, for
// a caller whose result (a miss, NOT_STORED) came from a complete reply:
//
//	var ErrNotStored = connpool.InSync(errors.New("client: item not stored"))
//
// InSync(nil) is nil.
func InSync(err error) error {
	if err == nil {
		return nil
	}
	return inSyncError{err}
}

type inSyncError struct{ err error }

func (e inSyncError) Error() string        { return e.err.Error() }
func (e inSyncError) Unwrap() error        { return e.err }
func (e inSyncError) Is(target error) bool { return target == ErrInSync }
