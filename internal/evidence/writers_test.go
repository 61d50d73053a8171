package evidence_test

import (
	"encoding/json"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/clawea/clawea/internal/testkit"
)

const module = "github.com/clawea/clawea"

// writes are the store methods that put a job's data on disk: events and
// their evidence, items, bundles, jobs (labels) and approvals (summaries,
// prepared receipts, decisions).
var writes = []string{"AppendEvent", "AppendPrepared", "AddItem", "PutBundle", "CreateJob", "CreateApproval", "SetApprovalStatus"}

// chainWrites are the writes of a job's events and their evidence items:
// only recordPath may make them.
var chainWrites = []string{"AppendEvent", "AppendPrepared", "AddItem"}

const recordPath = "(*github.com/clawea/clawea/internal/evidence.Chain).Record"

// TestEveryEvidenceWriterPassesTheGate type-checks every non-test package
// of the module (except the store back ends themselves) and finds each
// call of a store write method — a method named in writes whose receiver
// is an interface (store.Jobs, evidence.ChainStore, toolgw.Store, ...) or
// a type of internal/store. The function making the call (its closures
// included) must reach evidence.Check through the module's static calls.
// A new writer that does not pass the gate fails here, whatever interface
// it declares to reach the store. evidence.Chain's own AppendEvent and
// Record are not store writes (their receiver is a concrete type outside
// internal/store): Record is the gate's front door, and the one writer of
// a job's events and their evidence.
func TestEveryEvidenceWriterPassesTheGate(t *testing.T) {
	if testing.Short() {
		t.Skip("type-checks the module")
	}
	root := testkit.RepoRoot()
	cmd := exec.Command("go", "list", "-deps", "-export", "-json=ImportPath,Export,Dir,GoFiles,Standard", "./...")
	cmd.Dir = root
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	type pkg struct {
		ImportPath, Export, Dir string
		GoFiles                 []string
		Standard                bool
	}
	var pkgs []pkg
	exports := map[string]string{}
	dec := json.NewDecoder(out)
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		exports[p.ImportPath] = p.Export
		if p.ImportPath == module || strings.HasPrefix(p.ImportPath, module+"/") {
			pkgs = append(pkgs, p)
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	imp := importer.ForCompiler(fset, "gc", func(path string) (io.ReadCloser, error) {
		return os.Open(exports[path])
	})

	calls := map[string][]string{} // function -> functions it calls
	sites := map[string][]string{} // function -> store writes it makes
	const gate = "github.com/clawea/clawea/internal/evidence.Check"
	for _, p := range pkgs {
		if strings.HasPrefix(p.ImportPath, module+"/internal/store") {
			continue // the back ends and their conformance suite
		}
		var files []*ast.File
		for _, name := range p.GoFiles {
			f, err := parser.ParseFile(fset, filepath.Join(p.Dir, name), nil, parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, f)
		}
		info := &types.Info{Uses: map[*ast.Ident]types.Object{}, Selections: map[*ast.SelectorExpr]*types.Selection{}, Defs: map[*ast.Ident]types.Object{}}
		conf := types.Config{Importer: imp}
		if _, err := conf.Check(p.ImportPath, fset, files, info); err != nil {
			t.Fatalf("type-checking %s: %v", p.ImportPath, err)
		}
		for _, f := range files {
			for _, d := range f.Decls {
				fd, ok := d.(*ast.FuncDecl)
				if !ok || fd.Body == nil {
					continue
				}
				caller := info.Defs[fd.Name].(*types.Func).FullName()
				ast.Inspect(fd.Body, func(n ast.Node) bool {
					ce, ok := n.(*ast.CallExpr)
					if !ok {
						return true
					}
					var id *ast.Ident
					switch fn := ast.Unparen(ce.Fun).(type) {
					case *ast.Ident:
						id = fn
					case *ast.SelectorExpr:
						id = fn.Sel
					default:
						return true
					}
					callee, ok := info.Uses[id].(*types.Func)
					if !ok {
						return true
					}
					calls[caller] = append(calls[caller], callee.FullName())
					if isStoreWrite(callee) {
						pos := fset.Position(ce.Pos())
						sites[caller] = append(sites[caller], callee.Name()+" at "+strings.TrimPrefix(pos.Filename, root+"/")+":"+itoa(pos.Line))
					}
					return true
				})
			}
		}
	}
	reaches := func(from string) bool {
		seen := map[string]bool{from: true}
		queue := []string{from}
		for len(queue) > 0 {
			f := queue[0]
			queue = queue[1:]
			for _, c := range calls[f] {
				if c == gate {
					return true
				}
				if !seen[c] {
					seen[c] = true
					queue = append(queue, c)
				}
			}
		}
		return false
	}
	var writers []string
	for fn := range sites {
		writers = append(writers, fn)
	}
	sort.Strings(writers)
	for _, fn := range writers {
		if !reaches(fn) {
			t.Errorf("%s writes to the store without passing the evidence gate (evidence.Check): %s", fn, strings.Join(sites[fn], ", "))
		} else {
			t.Logf("gated writer %s: %s", fn, strings.Join(sites[fn], ", "))
		}
	}
	// Events and their evidence have one write path: only Chain.Record
	// appends them (AppendEvent, AppendPrepared) or adds an item (AddItem).
	for _, fn := range writers {
		if fn == recordPath {
			continue
		}
		for _, site := range sites[fn] {
			if name, _, _ := strings.Cut(site, " "); slices.Contains(chainWrites, name) {
				t.Errorf("%s writes job evidence (%s) outside %s, the one record path", fn, site, recordPath)
			}
		}
	}
	// The scan must see the writers known today, or it is not looking.
	for _, want := range []string{
		"(*github.com/clawea/clawea/internal/evidence.Chain).Record",
		"(*github.com/clawea/clawea/internal/jobs.Service).Start",
		"(*github.com/clawea/clawea/internal/jobs.Service).complete",
		"(*github.com/clawea/clawea/internal/toolgw.Gateway).requestApproval",
		"(*github.com/clawea/clawea/internal/toolgw.Gateway).Decide",
	} {
		if !slices.Contains(writers, want) {
			t.Errorf("the scan did not find the writer %s (found %v)", want, writers)
		}
	}
}

// isStoreWrite reports whether f is a write method of the store: named in
// writes, on an interface or on a type of internal/store.
func isStoreWrite(f *types.Func) bool {
	if !slices.Contains(writes, f.Name()) {
		return false
	}
	sig, ok := f.Type().(*types.Signature)
	if !ok || sig.Recv() == nil {
		return false
	}
	rt := sig.Recv().Type()
	if p, ok := rt.(*types.Pointer); ok {
		rt = p.Elem()
	}
	if types.IsInterface(rt) {
		return true
	}
	if n, ok := rt.(*types.Named); ok && n.Obj().Pkg() != nil {
		return strings.HasPrefix(n.Obj().Pkg().Path(), module+"/internal/store")
	}
	return false
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
