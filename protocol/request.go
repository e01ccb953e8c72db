package protocol

// Command identifies a memcache text command.
type Command uint8

// The commands the parser knows. CmdGet..CmdGats read, CmdSet..CmdCas carry a
// data block, the rest are single-line commands.
const (
	CmdNone Command = iota
	CmdGet
	CmdGets
	CmdGat
	CmdGats
	CmdSet
	CmdAdd
	CmdReplace
	CmdAppend
	CmdPrepend
	CmdCas
	CmdDelete
	CmdIncr
	CmdDecr
	CmdTouch
	CmdFlushAll
	CmdVersion
	CmdVerbosity
	CmdStats
	CmdQuit
	CmdMetaNoop // "mn": replies "MN"; clients use it to mark the end of a pipeline
	CmdWatch    // "watch": a long-lived stream; see docs/protocol.md
	CmdPeer     // "peer <name>": marks a connection as a cluster peer's
)

var commandNames = [...]string{
	CmdNone: "", CmdGet: "get", CmdGets: "gets", CmdGat: "gat", CmdGats: "gats",
	CmdSet: "set", CmdAdd: "add", CmdReplace: "replace", CmdAppend: "append",
	CmdPrepend: "prepend", CmdCas: "cas", CmdDelete: "delete", CmdIncr: "incr",
	CmdDecr: "decr", CmdTouch: "touch", CmdFlushAll: "flush_all", CmdVersion: "version",
	CmdVerbosity: "verbosity", CmdStats: "stats", CmdQuit: "quit", CmdMetaNoop: "mn",
	CmdWatch: "watch", CmdPeer: "peer",
}

// String returns the command's name as typed on the wire.
func (c Command) String() string {
	if int(c) < len(commandNames) {
		return commandNames[c]
	}
	return "unknown"
}

// IsStorage reports whether the command is followed by a data block.
func (c Command) IsStorage() bool { return c >= CmdSet && c <= CmdCas }

// IsRetrieval reports whether the command is one of get, gets, gat and gats.
func (c Command) IsRetrieval() bool { return c >= CmdGet && c <= CmdGats }

// MaxKeyLen is the longest key memcached accepts, in bytes.
const MaxKeyLen = 250

// A Request is one parsed command. The parser reuses a Request and the
// buffers behind Keys and Args for the next command on the connection, so a
// Handler must not keep them after Serve returns. The exception is the data
// block of a storage command: Block is a fresh allocation that the Handler
// owns and may keep.
type Request struct {
	Cmd Command
	// Keys holds the key of a single-key command, or every key of a retrieval
	// command in order (duplicates included).
	Keys [][]byte
	// Args holds the arguments of stats (the subcommand) and the raw tokens of
	// commands the handler interprets itself (watch).
	Args [][]byte
	// Flags is the client flags word of a storage command.
	Flags uint32
	// Exptime is the expiration of a storage command, touch, gat and gats, as
	// sent: 0 never expires, up to 30 days is relative, larger is a unix time,
	// negative is already expired.
	Exptime int64
	// Cas is the unique sent with cas.
	Cas uint64
	// Delta is the operand of incr and decr.
	Delta uint64
	// Delay is the optional delay in seconds of flush_all, and the level of
	// verbosity.
	Delay int64
	// NoReply is set when the request ended in "noreply": the Server drops
	// whatever the Handler writes.
	NoReply bool
	// Invalid is set on a storage command that was read to its end but cannot
	// be stored: ErrTooLarge (the block exceeded the item size limit and was
	// discarded) or ErrBadDataChunk (the block did not end in "\r\n"). The
	// Handler does its bookkeeping (memcached counts the set, and unlinks the
	// key of a too-large set) and replies with Invalid.
	Invalid error
	// Block holds, for a storage command, the key immediately followed by the
	// data and its trailing "\r\n", in one allocation owned by the Handler.
	// Key() and Data() are views into it.
	Block []byte

	keyLen int
	toks   [][]byte
	// reserved is the Server's pending-bytes budget this request's block
	// holds until the next request is read; deadline is set while a block
	// deadline is armed on the connection.
	reserved int64
	deadline bool
}

// Key returns the request's first key, or nil.
func (r *Request) Key() []byte {
	if len(r.Keys) == 0 {
		return nil
	}
	return r.Keys[0]
}

// Data returns the data block of a storage command, without its "\r\n".
func (r *Request) Data() []byte {
	if len(r.Block) < r.keyLen+2 {
		return nil
	}
	return r.Block[r.keyLen : len(r.Block)-2]
}

func (r *Request) reset() {
	r.Cmd = CmdNone
	r.Keys = r.Keys[:0]
	r.Args = r.Args[:0]
	r.Flags, r.Exptime, r.Cas, r.Delta, r.Delay = 0, 0, 0, 0, 0
	r.NoReply, r.Invalid = false, nil
	r.Block = nil
	r.keyLen = 0
	r.reserved = 0
}
