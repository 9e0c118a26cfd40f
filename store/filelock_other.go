//go:build !unix

package store

import (
	"context"
	"time"
)

const migrationLockWait = time.Minute

// lockFile is a no-op where flock(2) does not exist: start one Parley
// process first there (or run `parley migrate`) before the others.
func lockFile(context.Context, string, time.Duration) (func() error, error) {
	return func() error { return nil }, nil
}
