package httpapi

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clawea/clawea/internal/testkit"
)

// constructors build public error messages from their format arguments.
var constructors = map[string]bool{"errf": true, "jerr": true, "apiErr": true, "fetchErr": true, "Errorf": true}

// TestNoGoErrorFormattedIntoPublicMessages walks the repository's Go
// sources: no error constructor may be handed an error value (an
// identifier named err, or a call of .Error()) to format into its public
// message; the cause goes through Wrap. Errorf would hide it at run time;
// this keeps messages meaningful and the rule visible.
func TestNoGoErrorFormattedIntoPublicMessages(t *testing.T) {
	root := testkit.RepoRoot()
	fset := token.NewFileSet()
	var bad []string
	filepath.WalkDir(filepath.Join(root, "internal"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			name := ""
			switch fn := call.Fun.(type) {
			case *ast.Ident:
				name = fn.Name
			case *ast.SelectorExpr:
				if x, ok := fn.X.(*ast.Ident); ok && x.Name == "httpapi" {
					name = fn.Sel.Name
				}
			}
			if !constructors[name] || len(call.Args) < 4 {
				return true
			}
			for _, a := range call.Args[3:] {
				if isErrorValue(a) {
					bad = append(bad, fset.Position(call.Pos()).String())
				}
			}
			return true
		})
		return nil
	})
	if len(bad) > 0 {
		t.Fatalf("Go errors formatted into public messages (use .Wrap(err)):\n%s", strings.Join(bad, "\n"))
	}
}

func isErrorValue(e ast.Expr) bool {
	switch x := e.(type) {
	case *ast.Ident:
		return x.Name == "err" || strings.HasSuffix(x.Name, "Err") || strings.HasSuffix(x.Name, "err")
	case *ast.CallExpr:
		if sel, ok := x.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "Error" && len(x.Args) == 0 {
			return true
		}
	}
	return false
}
