package protocol

import (
	"bytes"
	"math"
)

// maxTokens is memcached's MAX_TOKENS: a command line is split into at most
// this many tokens, the last of them a terminator.
const maxTokens = 24

// tokenize splits a command line on single spaces, skipping empty tokens, as
// memcached's tokenize_command does (tabs are not separators).
func tokenize(line []byte, toks [][]byte) [][]byte {
	toks = toks[:0]
	start := -1
	for i, c := range line {
		if c == ' ' {
			if start >= 0 {
				toks = append(toks, line[start:i])
				start = -1
			}
		} else if start < 0 {
			start = i
		}
	}
	if start >= 0 {
		toks = append(toks, line[start:])
	}
	return toks
}

// mcTokens is the token count memcached's checks see: the real tokens, capped
// as its tokenizer caps them, plus the terminator.
func mcTokens(toks [][]byte) int {
	if len(toks) >= maxTokens-1 {
		return maxTokens
	}
	return len(toks) + 1
}

// trimLine drops the trailing "\n" or "\r\n" and, as C's strlen would, cuts
// the line at its first NUL byte.
func trimLine(line []byte) []byte {
	line = line[:len(line)-1]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	if i := bytes.IndexByte(line, 0); i >= 0 {
		line = line[:i]
	}
	return line
}

// noreply reports memcached's set_noreply_maybe: the last real token is
// "noreply".
func noreply(toks [][]byte) bool {
	return len(toks) > 0 && string(toks[len(toks)-1]) == "noreply"
}

// parseLine parses one command line (without its line ending) into req. For a
// storage command it returns the length of the data block that follows.
// Errors are ErrUnknownCommand, a *ClientError (req.NoReply may be set, and
// then the error is not sent), or errCloseConn.
func parseLine(line []byte, req *Request) (dataLen int, err error) {
	req.toks = tokenize(line, req.toks)
	toks := req.toks
	n := mcTokens(toks)
	if n < 2 || len(toks[0]) < 2 {
		return 0, ErrUnknownCommand
	}
	name := toks[0]
	switch string(name) {
	case "get":
		return 0, parseRetrieval(CmdGet, toks, req)
	case "gets":
		return 0, parseRetrieval(CmdGets, toks, req)
	case "gat":
		return 0, parseRetrieval(CmdGat, toks, req)
	case "gats":
		return 0, parseRetrieval(CmdGats, toks, req)
	case "set":
		return parseStorage(CmdSet, toks, req)
	case "add":
		return parseStorage(CmdAdd, toks, req)
	case "replace":
		return parseStorage(CmdReplace, toks, req)
	case "append":
		return parseStorage(CmdAppend, toks, req)
	case "prepend":
		return parseStorage(CmdPrepend, toks, req)
	case "cas":
		return parseStorage(CmdCas, toks, req)
	case "incr":
		return 0, parseArith(CmdIncr, toks, req)
	case "decr":
		return 0, parseArith(CmdDecr, toks, req)
	case "delete":
		return 0, parseDelete(toks, req)
	case "touch":
		return 0, parseTouch(toks, req)
	case "flush_all":
		return 0, parseFlushAll(toks, req)
	case "verbosity":
		return 0, parseVerbosity(toks, req)
	case "version":
		req.Cmd = CmdVersion
		return 0, nil
	case "quit":
		req.Cmd = CmdQuit
		return 0, nil
	case "mn":
		req.Cmd = CmdMetaNoop
		return 0, nil
	case "stats":
		req.Cmd = CmdStats
		req.Args = append(req.Args[:0], toks[1:]...)
		return 0, nil
	case "watch":
		req.Cmd = CmdWatch
		req.Args = append(req.Args[:0], toks[1:]...)
		return 0, nil
	case "peer":
		req.Cmd = CmdPeer
		req.Args = append(req.Args[:0], toks[1:]...)
		return 0, nil
	}
	if bytes.HasPrefix(toks[len(toks)-1], []byte("HTTP/")) {
		return 0, errCloseConn
	}
	return 0, ErrUnknownCommand
}

func parseRetrieval(cmd Command, toks [][]byte, req *Request) error {
	if mcTokens(toks) < 3 {
		return ErrUnknownCommand
	}
	req.Cmd = cmd
	keys := toks[1:]
	if cmd == CmdGat || cmd == CmdGats {
		exp, ok := ParseInt32(toks[1])
		if !ok {
			return ErrBadExptime
		}
		req.Exptime = int64(exp)
		keys = toks[2:]
	}
	for _, k := range keys {
		if len(k) > MaxKeyLen {
			return ErrBadFormat
		}
	}
	req.Keys = append(req.Keys[:0], keys...)
	return nil
}

func parseStorage(cmd Command, toks [][]byte, req *Request) (int, error) {
	n := mcTokens(toks)
	want := 6
	if cmd == CmdCas {
		want = 7
	}
	if n != want && n != want+1 {
		return 0, ErrUnknownCommand
	}
	req.Cmd = cmd
	req.NoReply = noreply(toks)
	if len(toks[1]) > MaxKeyLen {
		return 0, ErrBadFormat
	}
	flags, ok1 := ParseUint32(toks[2])
	exp, ok2 := ParseInt32(toks[3])
	vlen, ok3 := ParseInt32(toks[4])
	if !ok1 || !ok2 || !ok3 {
		return 0, ErrBadFormat
	}
	if cmd == CmdCas {
		cas, ok := ParseUint64(toks[5])
		if !ok {
			return 0, ErrBadFormat
		}
		req.Cas = cas
	}
	if vlen < 0 || vlen > math.MaxInt32-2 {
		return 0, ErrBadFormat
	}
	req.Flags, req.Exptime = flags, int64(exp)
	req.Keys = append(req.Keys[:0], toks[1])
	return int(vlen), nil
}

// parseKeyNumber parses "<cmd> <key> <number> [noreply]" (incr, decr,
// touch): the token count, noreply, the key's length, then the number with
// number, which reports the error memcached gives for it.
func parseKeyNumber(cmd Command, toks [][]byte, req *Request, number func(tok []byte) error) error {
	if n := mcTokens(toks); n != 4 && n != 5 {
		return ErrUnknownCommand
	}
	req.Cmd = cmd
	req.NoReply = noreply(toks)
	if len(toks[1]) > MaxKeyLen {
		return ErrBadFormat
	}
	if err := number(toks[2]); err != nil {
		return err
	}
	req.Keys = append(req.Keys[:0], toks[1])
	return nil
}

func parseArith(cmd Command, toks [][]byte, req *Request) error {
	return parseKeyNumber(cmd, toks, req, func(tok []byte) error {
		d, ok := ParseUint64(tok)
		if !ok {
			return ErrBadDelta
		}
		req.Delta = d
		return nil
	})
}

func parseDelete(toks [][]byte, req *Request) error {
	n := mcTokens(toks)
	if n < 3 || n > 5 {
		return ErrUnknownCommand
	}
	req.Cmd = CmdDelete
	if n > 3 {
		holdZero := string(toks[2]) == "0"
		req.NoReply = noreply(toks)
		valid := (n == 4 && (holdZero || req.NoReply)) || (n == 5 && holdZero && req.NoReply)
		if !valid {
			return ErrBadDelete
		}
	}
	if len(toks[1]) > MaxKeyLen {
		return ErrBadFormat
	}
	req.Keys = append(req.Keys[:0], toks[1])
	return nil
}

func parseTouch(toks [][]byte, req *Request) error {
	return parseKeyNumber(CmdTouch, toks, req, func(tok []byte) error {
		exp, ok := ParseInt32(tok)
		if !ok {
			return ErrBadExptime
		}
		req.Exptime = int64(exp)
		return nil
	})
}

func parseFlushAll(toks [][]byte, req *Request) error {
	n := mcTokens(toks)
	if n < 2 || n > 4 {
		return ErrUnknownCommand
	}
	req.Cmd = CmdFlushAll
	req.NoReply = noreply(toks)
	want := 2
	if req.NoReply {
		want = 3
	}
	if n != want {
		d, ok := ParseInt32(toks[1])
		if !ok {
			return ErrBadExptime
		}
		req.Delay = int64(d)
	}
	return nil
}

func parseVerbosity(toks [][]byte, req *Request) error {
	if n := mcTokens(toks); n != 3 && n != 4 {
		return ErrUnknownCommand
	}
	req.Cmd = CmdVerbosity
	req.NoReply = noreply(toks)
	v, ok := ParseUint32(toks[1])
	if !ok {
		return ErrBadFormat
	}
	req.Delay = int64(v)
	return nil
}

// ItemSizeOK reports whether memcached, started with -I maxItem, would accept
// an item with a key of keyLen bytes, these flags and dataLen bytes of data.
// It mirrors item_size_ok: a 48-byte item header, the key and its NUL, four
// bytes of flags when they are not zero, eight bytes of cas, and the data with
// its "\r\n" must fit in maxItem.
func ItemSizeOK(keyLen int, flags uint32, dataLen, maxItem int) bool {
	total := 48 + 8 + keyLen + 1 + dataLen + 2
	if flags != 0 {
		total += 4
	}
	return total <= maxItem
}
