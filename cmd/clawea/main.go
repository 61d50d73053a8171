// Command clawea is the permissioned-execution layer for enterprise AI
// agents: policy, scoped tokens, gateways, signed receipts and offline
// verification. All logic lives in internal/cli.
package main

import (
	"os"

	"github.com/clawea/clawea/internal/cli"
)

func main() {
	os.Exit(cli.Run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
