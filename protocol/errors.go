package protocol

import "errors"

// ErrUnknownCommand is a request line memcached does not recognise or whose
// token count is wrong for its command; it is answered "ERROR".
var ErrUnknownCommand = errors.New("ERROR")

// ErrServerClosed is returned by Server.Serve after Shutdown.
var ErrServerClosed = errors.New("protocol: server closed")

// errCloseConn is a request after which memcached closes the connection
// (an over-long line that is not a get, or an HTTP request line).
var errCloseConn = errors.New("protocol: connection closed by protocol rule")

// A ClientError is a request the server rejected as malformed. The connection
// stays usable. Error returns the wire form, "CLIENT_ERROR " + Msg.
type ClientError struct{ Msg string }

// Error returns the error as memcached writes it.
func (e *ClientError) Error() string { return "CLIENT_ERROR " + e.Msg }

// A ServerError is a well-formed request the server could not carry out.
// Error returns the wire form, "SERVER_ERROR " + Msg.
type ServerError struct{ Msg string }

// Error returns the error as memcached writes it.
func (e *ServerError) Error() string { return "SERVER_ERROR " + e.Msg }

// The errors memcached sends, word for word.
var (
	// ErrBadFormat is memcached's reply to a malformed command line.
	ErrBadFormat = &ClientError{"bad command line format"}
	// ErrBadDelete is memcached's reply to delete with a hold time or other junk.
	ErrBadDelete = &ClientError{"bad command line format.  Usage: delete <key> [noreply]"}
	// ErrBadDataChunk is the reply to a data block not followed by "\r\n".
	ErrBadDataChunk = &ClientError{"bad data chunk"}
	// ErrBadDelta is the reply to incr or decr with a delta that is not a number.
	ErrBadDelta = &ClientError{"invalid numeric delta argument"}
	// ErrBadExptime is the reply to touch, gat or gats with a bad exptime.
	ErrBadExptime = &ClientError{"invalid exptime argument"}
	// ErrNonNumeric is the reply to incr or decr on a value that is not a number.
	ErrNonNumeric = &ClientError{"cannot increment or decrement non-numeric value"}
	// ErrTooLarge is the reply to a value larger than the item size limit.
	ErrTooLarge = &ServerError{"object too large for cache"}
	// ErrOutOfMemory is the reply when an item could not be stored for lack of room.
	ErrOutOfMemory = &ServerError{"out of memory storing object"}
)
