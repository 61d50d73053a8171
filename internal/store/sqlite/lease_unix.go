//go:build unix

package sqlite

import (
	"errors"
	"os"
	"syscall"
)

// journalSupported: the lease is an flock(2).
const journalSupported = true

// tryLock takes an exclusive flock on f without waiting; false when
// another open file (another process, or another store in this one) holds
// it.
func tryLock(f *os.File) (bool, error) {
	err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return false, nil
	}
	return err == nil, err
}

func unlock(f *os.File) { syscall.Flock(int(f.Fd()), syscall.LOCK_UN) }
