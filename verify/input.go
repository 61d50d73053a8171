package verify

import (
	"errors"
	"strconv"

	"github.com/clawea/clawea/canon"
	"github.com/clawea/clawea/envelope"
)

// DefaultMaxBytes is the input size cap when Options.MaxBytes is zero.
// A proof bundle at the reference's limits (1,000 events, 1,000 receipts)
// is about 2 MiB; parsing holds about four times the input in memory.
const DefaultMaxBytes = 64 << 20

func (o *Options) maxBytes() int64 {
	switch {
	case o.MaxBytes < 0:
		return -1
	case o.MaxBytes == 0:
		return DefaultMaxBytes
	}
	return o.MaxBytes
}

// largeInput is the smallest input whose duplicate-key scan runs on its
// own goroutine beside the parse.
const largeInput = 256 << 10

// inputError is why readDocument refused an input.
type inputError struct {
	msg      string
	tooLarge bool
	dupKey   *envelope.DuplicateKeyError
}

// TooLarge reports whether an input of n bytes is over opt's cap, with the
// message to refuse it with.
func TooLarge(n int64, opt Options) (string, bool) {
	if limit := opt.maxBytes(); limit >= 0 && n > limit {
		return "input is " + strconv.FormatInt(n, 10) + " bytes, over the " + strconv.FormatInt(limit, 10) + "-byte limit (--max-bytes)", true
	}
	return "", false
}

// readDocument is the front of every check on bytes: it refuses an input
// over the size cap before looking at it, parses it, and refuses a
// document with a key written twice in any object (in both modes: the
// reference's JSON.parse keeps the last copy, other parsers the first, so
// such a document can name two signers or two payloads). The scan for
// duplicates runs beside the parse on large inputs.
func readDocument(data []byte, opt *Options) (canon.Value, *inputError) {
	if msg, over := TooLarge(int64(len(data)), *opt); over {
		return canon.Value{}, &inputError{msg: msg, tooLarge: true}
	}
	var dupErr error
	var dup chan error
	if len(data) >= largeInput {
		dup = make(chan error, 1)
		go func() { dup <- envelope.CheckDuplicateKeys(data) }()
	}
	v, err := canon.Parse(data)
	if dup != nil {
		dupErr = <-dup
	} else if err == nil {
		dupErr = envelope.CheckDuplicateKeys(data)
	}
	if err != nil {
		return v, &inputError{msg: "input is not valid JSON: " + err.Error()}
	}
	var dk *envelope.DuplicateKeyError
	if errors.As(dupErr, &dk) {
		return v, &inputError{msg: dk.Error(), dupKey: dk}
	}
	if dupErr != nil { // the parser accepted what the scanner did not: refuse
		return v, &inputError{msg: "input is not valid JSON: " + dupErr.Error()}
	}
	return v, nil
}
