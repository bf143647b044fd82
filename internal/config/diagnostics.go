package config

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// DiagnosticsError is the error [Load] and [Parse] return: every problem
// found in the configuration, plus the parsed files so the problems can be
// printed with the offending source.
type DiagnosticsError struct {
	// Diags are the diagnostics in file order; at least one is an error.
	Diags hcl.Diagnostics
	// Files maps each file name used in Diags to its parsed file, for
	// source snippets. It may lack a file that could not be read.
	Files map[string]*hcl.File

	// cause is the underlying error when reading the file failed.
	cause error
}

// Error returns all diagnostics, one a line, each as
// "file:line:col: summary; detail".
func (e *DiagnosticsError) Error() string {
	var b strings.Builder
	for i, d := range e.Diags {
		if i > 0 {
			b.WriteByte('\n')
		}
		if d.Subject != nil {
			fmt.Fprintf(&b, "%s: ", position(*d.Subject))
		}
		b.WriteString(d.Summary)
		if d.Detail != "" {
			b.WriteString("; ")
			b.WriteString(d.Detail)
		}
	}
	return b.String()
}

// Unwrap returns the underlying error when the file could not be read (for
// example one matching fs.ErrNotExist), else nil.
func (e *DiagnosticsError) Unwrap() error { return e.cause }

// WriteDiagnostics writes every diagnostic to w with hcl's text diagnostic
// writer: a "file:line:col: " prefix, the severity and summary, the offending
// source snippet and the detail. ANSI colors are used only if color is true.
func (e *DiagnosticsError) WriteDiagnostics(w io.Writer, color bool) error {
	dw := hcl.NewDiagnosticTextWriter(w, e.Files, 0, color)
	for _, d := range e.Diags {
		if d.Subject != nil {
			if _, err := fmt.Fprintf(w, "%s: ", position(*d.Subject)); err != nil {
				return fmt.Errorf("config: write diagnostics: %w", err)
			}
		}
		if err := dw.WriteDiagnostic(d); err != nil {
			return fmt.Errorf("config: write diagnostics: %w", err)
		}
	}
	return nil
}

// position formats the start of r as file:line:col.
func position(r hcl.Range) string {
	return fmt.Sprintf("%s:%d:%d", r.Filename, r.Start.Line, r.Start.Column)
}

// sortDiagnostics orders diags by file and position, so they read top to
// bottom whatever order the checks ran in. Diagnostics without a subject
// come first.
func sortDiagnostics(diags hcl.Diagnostics) {
	slices.SortStableFunc(diags, func(a, b *hcl.Diagnostic) int {
		switch {
		case a.Subject == nil && b.Subject == nil:
			return 0
		case a.Subject == nil:
			return -1
		case b.Subject == nil:
			return 1
		}
		return cmp.Or(
			cmp.Compare(a.Subject.Filename, b.Subject.Filename),
			cmp.Compare(a.Subject.Start.Byte, b.Subject.Start.Byte),
		)
	})
}
