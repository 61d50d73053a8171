package toolgw

import (
	"errors"
	"net/http"
)

// errNotCanonical is what a canonicaliser in tools.go returns for a name
// outside its grammar.
var errNotCanonical = errors.New("not in the name grammar")

// nonCanonical refuses a connector name outside Azure's grammar with
// INVALID_ARGUMENTS, before any policy decision. The message quotes the
// argument Go-escaped, so that NUL, zero-width and full-width characters
// are visible.
func nonCanonical(arg, what, raw string) *Error {
	if len(raw) > 80 {
		raw = raw[:80] + "..."
	}
	return errf(http.StatusBadRequest, CodeInvalidArguments, "argument %q must be %s (got %+q)", arg, what, raw)
}
