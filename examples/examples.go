// Package examples embeds the example policies of examples/policies, so
// that the clawea binary can run its demo and tests can read them without
// the source tree.
package examples

import (
	"embed"
	"io/fs"
)

//go:embed policies/*.json
var files embed.FS

// Policies is the policies folder: NAME.wpc.json with NAME.cases.json.
var Policies fs.FS = mustSub(files, "policies")

func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic(err)
	}
	return sub
}

// Policy returns the example policy NAME (without .wpc.json).
func Policy(name string) ([]byte, error) { return fs.ReadFile(Policies, name+".wpc.json") }
