package testkit

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// protocolPackages are the importable protocol library: they must not
// import servers, storage or anything under internal/.
var protocolPackages = []string{"b64u", "canon", "didkey", "envelope", "signer", "receipt", "bundle", "verify", "policy", "token"}

var forbiddenInProtocol = []string{
	"github.com/clawea/clawea/internal/",
	"database/sql", "modernc.org/sqlite", "github.com/jackc/pgx",
	"github.com/Azure/", "github.com/modelcontextprotocol/",
	"net/http",
}

func goPackages(t *testing.T) map[string][]string {
	t.Helper()
	root := RepoRoot()
	pkgs := map[string][]string{}
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "node_modules") && path != root {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
			rel, _ := filepath.Rel(root, filepath.Dir(path))
			pkgs[rel] = append(pkgs[rel], path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return pkgs
}

// TestPackageDocs requires exactly one package doc comment per package.
func TestPackageDocs(t *testing.T) {
	for dir, files := range goPackages(t) {
		docs := 0
		for _, f := range files {
			ast, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.PackageClauseOnly|parser.ParseComments)
			if err != nil {
				t.Fatal(err)
			}
			if ast.Doc != nil {
				docs++
				if !strings.HasPrefix(ast.Doc.Text(), "Package "+ast.Name.Name+" ") && !strings.HasPrefix(ast.Doc.Text(), "Command ") {
					t.Errorf("%s: package doc must start with \"Package %s\"", f, ast.Name.Name)
				}
			}
		}
		if docs != 1 {
			t.Errorf("package %s has %d package doc comments, want 1", dir, docs)
		}
	}
}

// TestProtocolImports keeps the protocol library free of servers and
// storage.
func TestProtocolImports(t *testing.T) {
	pkgs := goPackages(t)
	for _, p := range protocolPackages {
		for _, f := range pkgs[p] {
			ast, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range ast.Imports {
				path := strings.Trim(imp.Path.Value, `"`)
				for _, bad := range forbiddenInProtocol {
					if path == bad || strings.HasPrefix(path, bad) && strings.HasSuffix(bad, "/") || strings.HasPrefix(path, bad+"/") {
						t.Errorf("%s imports %s; protocol packages must not", f, path)
					}
				}
			}
		}
	}
}

// TestGoMod forbids replace directives and toolchain downloads.
func TestGoMod(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(RepoRoot(), "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "replace") {
			t.Errorf("go.mod has a replace directive: %s", line)
		}
	}
}
