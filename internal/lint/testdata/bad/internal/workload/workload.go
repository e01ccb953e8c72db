// Package workload imports a third-party package although it must not.
package workload

import (
	"github.com/cespare/xxhash/v2"
)

// X is documented.
var X = xxhash.Sum64String
