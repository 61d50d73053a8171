package modelgw

// CodeRequestNotScannable refuses a body whose JSON cannot be scanned for
// the job's secrets by its decoded strings (a lone surrogate in a \u
// escape, nesting past the scanner's limit): it is not forwarded.
const CodeRequestNotScannable = "REQUEST_NOT_SCANNABLE"
