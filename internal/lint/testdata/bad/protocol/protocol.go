// Package protocol is a fixture with one of each violation.
package protocol

import (
	"example.com/bad/ring"
	"strings"
)

// There is no doc comment on the next func.

func Undocumented() {}

// Wrong name: the comment does not start with Misnamed.
func Misnamed() {}

// Documented is fine.
func Documented() { _ = strings.ToUpper(ring.Name) }

// A Thing may start with an article.
type Thing struct{}

// Grouped consts are fine under a group doc.
const (
	GroupedA = 1
	GroupedB = 2
)

const (
	Loose = 1
	// Kept has its own doc.
	Kept    = 2
	private = 3
)

func (Thing) Method() {}

// Wrong again.
func (*Thing) Other() {}

type hidden struct{}

func (hidden) Exported() {}

var Bare = 1

type (
	Alias = Thing
	// Named is fine.
	Named int
)
