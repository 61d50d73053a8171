// Package decidebench measures the decision API for runtime tools
// (POST /v1/decide): in process (Gateway.DecideTool, token check
// included), and over loopback HTTP against a no-op handler answering the
// same body on the same machine. Run bench/decide.sh.
package decidebench
