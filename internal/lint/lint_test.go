package lint

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// importTable is the direction of imports from DESIGN.md, by module-relative
// package directory. Only imports of our own packages are checked, except for
// stdlibOnly packages, whose non-test files may import nothing but the
// standard library. Any test file may also import its own package (an
// external _test package does).
var importTable = map[string]importRule{
	// Nothing imports cmd, and cmd may import anything.
	"cmd/...": {anything: true},

	"node": {
		allow:     []string{"protocol", "ring", "hotspot", "internal/connpool"},
		testAllow: []string{"node/nodetest", "internal/memcachedtest", "internal/workload", "internal/tlsconf", "internal/conformance"},
	},
	"client": { // never node: the proxy is protocol.Server plus a client handler
		allow:     []string{"protocol", "ring", "internal/connpool"},
		testAllow: []string{"node", "node/nodetest", "hotspot", "internal/memcachedtest", "internal/tlsconf"},
	},
	"node/nodetest": { // never client: client tests use nodetest
		allow: []string{"node", "protocol", "ring"},
	},
	// End-to-end tests of the deployment files (build-tagged, run against
	// containers): they talk to the cluster as any client would, and share
	// only the compose fixture.
	"deploy/...":        {stdlibOnly: true, testAllow: []string{"internal/composetest"}},
	"internal/connpool": {allow: []string{"protocol"}, testAllow: []string{"internal/tlsconf"}},

	// The pure packages: nothing of ours, so they stay unit-testable and fuzzable.
	"protocol": {testAllow: []string{"internal/workload", "internal/memcachedtest"}},
	"ring":     {testAllow: []string{"internal/workload", "internal/memcachedtest"}},
	"hotspot":  {testAllow: []string{"internal/workload", "internal/memcachedtest"}},

	// Helpers for tests, benchmarks and cmd: the standard library only.
	"internal/workload":      {stdlibOnly: true},
	"internal/lint":          {stdlibOnly: true},
	"internal/memcachedtest": {stdlibOnly: true},
	"internal/hostile":       {stdlibOnly: true},
	"internal/cliflag":       {stdlibOnly: true},
	"internal/conformance":   {stdlibOnly: true},
	"internal/tlsconf":       {stdlibOnly: true}, // TLS configs from PEM files; test certificates
	"internal/composetest":   {stdlibOnly: true}, // docker-compose.yml as a test fixture
}

// loadThisModule parses the module that contains the working directory.
func loadThisModule(t *testing.T) *module {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root, err := findModuleRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	m, err := loadModule(root)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func reportAll(t *testing.T, fs []finding) {
	t.Helper()
	for _, f := range fs {
		t.Error(f)
	}
}

// TestModule_parses fails on a file go/parser rejects: the other checks
// cannot see inside it.
func TestModule_parses(t *testing.T) {
	reportAll(t, loadThisModule(t).errs)
}

// TestImportDirection keeps the direction of imports from DESIGN.md.
func TestImportDirection(t *testing.T) {
	reportAll(t, checkImports(loadThisModule(t), importTable))
}

// TestDocComments requires a doc comment on every exported name and package.
func TestDocComments(t *testing.T) {
	reportAll(t, checkDocs(loadThisModule(t)))
}

// TestChecker_reportsFixture runs the checks on testdata/bad, a module broken
// on purpose, so that a checker that stops finding anything fails here
// instead of passing silently.
func TestChecker_reportsFixture(t *testing.T) {
	m, err := loadModule("testdata/bad")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range sortFindings(slices.Concat(m.errs, checkImports(m, importTable), checkDocs(m))) {
		got = append(got, f.String())
	}
	want := []string{
		`extra/extra.go:1: package doc comment should start with "Package extra"`,
		`extra/extra.go:1: package extra is not in the import table: add it to the import table in internal/lint/lint_test.go`,
		`internal/workload/workload.go:5: internal/workload must import only the standard library, not github.com/cespare/xxhash/v2`,
		`protocol/protocol.go:5: protocol imports ring; allowed: nothing of ours (import table in internal/lint/lint_test.go, DESIGN.md)`,
		`protocol/protocol.go:11: exported func Undocumented has no doc comment`,
		`protocol/protocol.go:14: doc comment of exported func Misnamed should start with "Misnamed "`,
		`protocol/protocol.go:29: exported const Loose has no doc comment`,
		`protocol/protocol.go:35: exported method Thing.Method has no doc comment`,
		`protocol/protocol.go:38: doc comment of exported method Thing.Other should start with "Other "`,
		`protocol/protocol.go:44: exported var Bare has no doc comment`,
		`protocol/protocol.go:47: exported type Alias has no doc comment`,
		`protocol/protocol_test.go:5: a test of protocol imports node; allowed: protocol, internal/workload, internal/memcachedtest (import table in internal/lint/lint_test.go, DESIGN.md)`,
		`ring/ring.go:1: package ring has no package doc comment (add a doc.go starting "// Package ring")`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("findings on testdata/bad:\ngot:\n\t%s\nwant:\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
}

// TestChecker_reportsParseErrors: a file that does not parse is a finding
// with its line, not a crash and not a silent skip.
func TestChecker_reportsParseErrors(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/broken\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "broken.go"), []byte("package broken\n\nfunc F() {\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := loadModule(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.errs) != 1 || m.errs[0].file != "broken.go" || m.errs[0].line != 3 {
		t.Errorf("parse findings = %v, want one at broken.go:3", m.errs)
	}
}

func TestDocStartsWith(t *testing.T) {
	for _, tc := range []struct {
		text, name string
		want       bool
	}{
		{"Get returns the item.", "Get", true},
		{"A Ring is a snapshot.", "Ring", true},
		{"An Item is stored.", "Item", true},
		{"The Server accepts.", "Server", true},
		{"Server's accept loop.", "Server", true},
		{"Get", "Get", true},
		{"GetMulti returns items.", "Get", false},
		{"get returns the item.", "Get", false},
		{"Returns the item.", "Get", false},
		{"A Getter", "Get", false},
		{"", "Get", false},
	} {
		if got := docStartsWith(tc.text, tc.name); got != tc.want {
			t.Errorf("docStartsWith(%q, %q) = %v, want %v", tc.text, tc.name, got, tc.want)
		}
	}
}

func TestLookupRule(t *testing.T) {
	for _, tc := range []struct {
		dir  string
		want bool
	}{
		{"cmd", true},
		{"cmd/cachebench", true},
		{"cmd/cachebench/internal/x", true},
		{"node", true},
		{"node/nodetest", true},
		{"node/other", false},
		{"internal/lint", true},
		{"internal", false},
		{".", false},
	} {
		if _, got := lookupRule(importTable, tc.dir); got != tc.want {
			t.Errorf("lookupRule(%q) found = %v, want %v", tc.dir, got, tc.want)
		}
	}
}
