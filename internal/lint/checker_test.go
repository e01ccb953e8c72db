package lint

// The machinery of the checks: loading a module's packages with go/parser and
// walking their ASTs. The rules themselves (the import table) are in lint_test.go.

import (
	"bufio"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/scanner"
	"go/token"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// module is a parsed Go module: every package under its root, except testdata,
// vendor, hidden or underscore directories, and nested modules.
type module struct {
	root string // absolute directory holding go.mod
	path string // module path from go.mod
	fset *token.FileSet
	pkgs []*pkg // sorted by dir
	errs []finding
}

// pkg is the files of one directory.
type pkg struct {
	dir   string // slash-separated, relative to the module root; "." for the root
	files []*file
}

type file struct {
	rel  string // slash-separated path relative to the module root
	test bool   // name ends in _test.go
	gen  bool   // carries a "Code generated ... DO NOT EDIT." line
	ast  *ast.File
}

// finding is one violation, printed as "rel/file.go:line: msg".
type finding struct {
	file string // slash-separated, relative to the module root
	line int
	msg  string
}

func (f finding) String() string { return fmt.Sprintf("%s:%d: %s", f.file, f.line, f.msg) }

// sortFindings orders findings by file, then line, then message.
func sortFindings(fs []finding) []finding {
	slices.SortFunc(fs, func(a, b finding) int {
		if c := strings.Compare(a.file, b.file); c != 0 {
			return c
		}
		if a.line != b.line {
			return a.line - b.line
		}
		return strings.Compare(a.msg, b.msg)
	})
	return fs
}

// findModuleRoot walks up from dir to the first directory holding go.mod.
func findModuleRoot(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod found above the working directory")
		}
		dir = parent
	}
}

// modulePath returns the path on the module line of root/go.mod.
func modulePath(root string) (string, error) {
	f, err := os.Open(filepath.Join(root, "go.mod"))
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if rest, ok := strings.CutPrefix(line, "module"); ok && rest != "" && (rest[0] == ' ' || rest[0] == '\t') {
			p := strings.TrimSpace(rest)
			if i := strings.Index(p, "//"); i >= 0 {
				p = strings.TrimSpace(p[:i])
			}
			if uq, err := strconv.Unquote(p); err == nil {
				p = uq
			}
			return p, nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", fmt.Errorf("%s/go.mod has no module line", root)
}

// loadModule parses every .go file of the module rooted at root. A file that
// does not parse becomes a finding rather than an error, so that one broken
// file does not hide the other violations.
func loadModule(root string) (*module, error) {
	mp, err := modulePath(root)
	if err != nil {
		return nil, err
	}
	m := &module{root: root, path: mp, fset: token.NewFileSet()}
	byDir := map[string]*pkg{}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p == root {
				return nil
			}
			name := d.Name()
			if name == "testdata" || name == "vendor" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(p, "go.mod")); err == nil {
				return filepath.SkipDir // a nested module is not ours to check
			}
			return nil
		}
		name := d.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		af, err := parser.ParseFile(m.fset, p, nil, parser.ParseComments|parser.SkipObjectResolution)
		if err != nil {
			m.errs = append(m.errs, parseFinding(rel, err))
			return nil
		}
		dir := path.Dir(rel)
		pk := byDir[dir]
		if pk == nil {
			pk = &pkg{dir: dir}
			byDir[dir] = pk
			m.pkgs = append(m.pkgs, pk)
		}
		pk.files = append(pk.files, &file{
			rel:  rel,
			test: strings.HasSuffix(name, "_test.go"),
			gen:  ast.IsGenerated(af),
			ast:  af,
		})
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(m.pkgs, func(a, b *pkg) int { return strings.Compare(a.dir, b.dir) })
	return m, nil
}

func parseFinding(rel string, err error) finding {
	var list scanner.ErrorList
	if errors.As(err, &list) && len(list) > 0 {
		return finding{file: rel, line: list[0].Pos.Line, msg: "does not parse: " + list[0].Msg}
	}
	return finding{file: rel, line: 1, msg: "does not parse: " + err.Error()}
}

// at returns a finding at p.
func (m *module) at(p token.Pos, msg string) finding {
	pos := m.fset.Position(p)
	rel, err := filepath.Rel(m.root, pos.Filename)
	if err != nil {
		rel = pos.Filename
	}
	return finding{file: filepath.ToSlash(rel), line: pos.Line, msg: msg}
}

// importRule says which packages of ours one package may import.
type importRule struct {
	// anything: the package may import any package of ours (cmd/...).
	anything bool
	// allow lists the module-relative packages that non-test files may import.
	allow []string
	// testAllow lists what _test.go files may import besides allow and the
	// package itself (an external test package imports the package it tests).
	testAllow []string
	// stdlibOnly: non-test files may import nothing outside the standard library.
	stdlibOnly bool
}

// lookupRule finds the rule for a package directory: an exact key, or a key
// "x/..." that matches x and everything below it.
func lookupRule(table map[string]importRule, dir string) (importRule, bool) {
	if r, ok := table[dir]; ok {
		return r, true
	}
	for d := dir; d != "." && d != "/"; d = path.Dir(d) {
		if r, ok := table[d+"/..."]; ok {
			return r, true
		}
	}
	return importRule{}, false
}

// isStdlib reports whether an import path belongs to the standard library:
// by the convention the go command uses, its first element has no dot.
func isStdlib(importPath string) bool {
	first, _, _ := strings.Cut(importPath, "/")
	return !strings.Contains(first, ".")
}

// checkImports reports imports that break the table, and packages the table
// does not know.
func checkImports(m *module, table map[string]importRule) []finding {
	var out []finding
	for _, pk := range m.pkgs {
		rule, known := lookupRule(table, pk.dir)
		if !known {
			out = append(out, finding{
				file: pk.files[0].rel,
				line: 1,
				msg:  fmt.Sprintf("package %s is not in the import table: add it to the import table in internal/lint/lint_test.go", pk.dir),
			})
			continue
		}
		if rule.anything {
			continue
		}
		for _, f := range pk.files {
			for _, spec := range f.ast.Imports {
				ip, err := strconv.Unquote(spec.Path.Value)
				if err != nil {
					continue // the parser accepted it, so this cannot happen
				}
				if msg := importViolation(m.path, pk.dir, rule, f.test, ip); msg != "" {
					out = append(out, m.at(spec.Pos(), msg))
				}
			}
		}
	}
	return sortFindings(out)
}

// importViolation returns why importing ip from a file of package dir breaks
// rule, or "" if it does not.
func importViolation(modPath, dir string, rule importRule, test bool, ip string) string {
	rel, ours := strings.CutPrefix(ip, modPath+"/")
	if ip == modPath {
		rel, ours = ".", true
	}
	if !ours {
		if rule.stdlibOnly && !test && !isStdlib(ip) {
			return fmt.Sprintf("%s must import only the standard library, not %s", dir, ip)
		}
		return ""
	}
	if slices.Contains(rule.allow, rel) {
		return ""
	}
	if test && (rel == dir || slices.Contains(rule.testAllow, rel)) {
		return ""
	}
	allowed := rule.allow
	who := dir
	if test {
		allowed = append(append(slices.Clip(allowed), dir), rule.testAllow...)
		who = "a test of " + dir
	}
	what := "nothing of ours"
	if len(allowed) > 0 {
		what = strings.Join(allowed, ", ")
	}
	return fmt.Sprintf("%s imports %s; allowed: %s (import table in internal/lint/lint_test.go, DESIGN.md)", who, rel, what)
}

// checkDocs reports exported top-level names of non-test, non-main files that
// lack a doc comment starting with the name, and non-main packages with no
// package doc comment. Generated files are skipped.
func checkDocs(m *module) []finding {
	var out []finding
	for _, pk := range m.pkgs {
		var lib []*file // non-test files of a non-main package
		for _, f := range pk.files {
			if !f.test && f.ast.Name.Name != "main" {
				lib = append(lib, f)
			}
		}
		if len(lib) == 0 {
			continue
		}
		hasDoc := false
		for _, f := range lib {
			if f.ast.Doc == nil {
				continue
			}
			hasDoc = true
			name := f.ast.Name.Name
			if text := docText(f.ast.Doc); !strings.HasPrefix(text, "Package "+name) || !boundary(strings.TrimPrefix(text, "Package "+name)) {
				out = append(out, m.at(f.ast.Doc.Pos(), fmt.Sprintf("package doc comment should start with %q", "Package "+name)))
			}
		}
		if !hasDoc {
			out = append(out, finding{
				file: lib[0].rel,
				line: 1,
				msg:  fmt.Sprintf("package %s has no package doc comment (add a doc.go starting %q)", lib[0].ast.Name.Name, "// Package "+lib[0].ast.Name.Name),
			})
		}
		for _, f := range lib {
			if !f.gen {
				out = append(out, checkFileDocs(m, f.ast)...)
			}
		}
	}
	return sortFindings(out)
}

func checkFileDocs(m *module, f *ast.File) []finding {
	var out []finding
	report := func(pos token.Pos, kind, name string, doc *ast.CommentGroup, names ...string) {
		if doc == nil {
			out = append(out, m.at(pos, fmt.Sprintf("exported %s %s has no doc comment", kind, name)))
			return
		}
		if len(names) == 0 {
			names = []string{name}
		}
		text := docText(doc)
		for _, n := range names {
			if docStartsWith(text, n) {
				return
			}
		}
		out = append(out, m.at(pos, fmt.Sprintf("doc comment of exported %s %s should start with %q", kind, name, names[0]+" ")))
	}
	for _, decl := range f.Decls {
		switch d := decl.(type) {
		case *ast.FuncDecl:
			if !d.Name.IsExported() {
				continue
			}
			if d.Recv == nil {
				report(d.Name.Pos(), "func", d.Name.Name, d.Doc)
				continue
			}
			if recv := receiverType(d.Recv); recv != "" && ast.IsExported(recv) {
				report(d.Name.Pos(), "method", recv+"."+d.Name.Name, d.Doc, d.Name.Name)
			}
		case *ast.GenDecl:
			grouped := d.Lparen.IsValid()
			for _, spec := range d.Specs {
				switch s := spec.(type) {
				case *ast.TypeSpec:
					if !s.Name.IsExported() {
						continue
					}
					doc := s.Doc
					if doc == nil && (!grouped || len(d.Specs) == 1) {
						doc = d.Doc
					}
					report(s.Name.Pos(), "type", s.Name.Name, doc)
				case *ast.ValueSpec:
					var exported []string
					for _, n := range s.Names {
						if n.IsExported() {
							exported = append(exported, n.Name)
						}
					}
					if len(exported) == 0 {
						continue
					}
					kind := d.Tok.String()
					if grouped && d.Doc != nil {
						continue // the group's doc covers its names
					}
					doc := s.Doc
					if !grouped {
						doc = d.Doc
					}
					report(s.Pos(), kind, strings.Join(exported, ", "), doc, exported...)
				}
			}
		}
	}
	return out
}

// receiverType returns the base type name of a method receiver: T for T, *T,
// T[K] and *T[K, V].
func receiverType(recv *ast.FieldList) string {
	if recv == nil || len(recv.List) == 0 {
		return ""
	}
	t := recv.List[0].Type
	for {
		switch x := t.(type) {
		case *ast.StarExpr:
			t = x.X
		case *ast.ParenExpr:
			t = x.X
		case *ast.IndexExpr:
			t = x.X
		case *ast.IndexListExpr:
			t = x.X
		case *ast.Ident:
			return x.Name
		default:
			return ""
		}
	}
}

func docText(doc *ast.CommentGroup) string { return strings.TrimSpace(doc.Text()) }

// docStartsWith reports whether a doc comment starts with name, optionally
// after "A ", "An " or "The ", as golint accepted.
func docStartsWith(text, name string) bool {
	for _, article := range []string{"", "A ", "An ", "The "} {
		if rest, ok := strings.CutPrefix(text, article+name); ok && boundary(rest) {
			return true
		}
	}
	return false
}

// boundary reports whether rest can follow a complete identifier: it is empty
// or starts with something that cannot continue one.
func boundary(rest string) bool {
	r, _ := utf8.DecodeRuneInString(rest)
	return rest == "" || !(r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r))
}
