// Package toolgwbench measures what the tool gateway adds to a tool call
// (token check, policy decision, redaction, signed receipt in the job's
// chain) against calling the same local connector directly: the dev vault
// through the azsecrets client, and the local queue. Run bench/toolgw.sh.
package toolgwbench
