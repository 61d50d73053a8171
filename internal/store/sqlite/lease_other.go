//go:build !unix

package sqlite

import (
	"errors"
	"os"
)

// journalSupported: without flock(2) every append is a transaction.
const journalSupported = false

func tryLock(*os.File) (bool, error) { return false, errors.New("no file locks on this system") }

func unlock(*os.File) {}
