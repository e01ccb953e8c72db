// Package lint holds the house rules of this module as tests.
//
// `go test ./internal/lint` parses every package of the module with go/parser
// and fails, with a file:line message, when
//   - a package imports a package of ours that the import table in
//     lint_test.go does not allow (the direction of imports in DESIGN.md), or a
//     package that must stay stdlib-only imports a third-party package;
//   - an exported top-level name has no doc comment, or one that does not start
//     with the name;
//   - a non-main package has no package doc comment.
//
// A new package must be added to the import table before the tests pass. The
// package has no non-test code besides this comment: it is never imported.
package lint
