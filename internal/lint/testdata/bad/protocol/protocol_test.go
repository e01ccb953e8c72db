package protocol_test

import (
	"example.com/bad/internal/workload"
	"example.com/bad/node"
	"example.com/bad/protocol"
)

func Undocumented() { _, _, _ = workload.X, node.X, protocol.Documented }
