package config

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"
)

// Load reads and parses the configuration file at path, as [Parse] does,
// with env() reading the process environment. On error the returned error is
// a [*DiagnosticsError]; when the file cannot be read it wraps the read error.
func Load(path string) (*Config, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, &DiagnosticsError{
			Diags: hcl.Diagnostics{{
				Severity: hcl.DiagError,
				Summary:  "Cannot read configuration file",
				Detail:   fmt.Sprintf("%v: check the path of the configuration file", err),
			}},
			Files: map[string]*hcl.File{},
			cause: fmt.Errorf("config: read %s: %w", path, err),
		}
	}
	return parse(src, path, os.LookupEnv)
}

// Parse parses the HCL configuration src; filename names it in diagnostics.
// env() reads the process environment. It returns the configuration with
// every default filled in and every value validated; on error the returned
// error is a [*DiagnosticsError] listing every problem found.
func Parse(src []byte, filename string) (*Config, error) {
	return parse(src, filename, os.LookupEnv)
}

// parse is [Parse] with env() reading lookupEnv, so tests need not touch the
// process environment.
func parse(src []byte, filename string, lookupEnv lookupEnvFunc) (*Config, error) {
	if diags := checkNesting(src, filename); diags.HasErrors() {
		return nil, &DiagnosticsError{Diags: diags, Files: map[string]*hcl.File{filename: {Bytes: src}}}
	}

	p := hclparse.NewParser()
	file, diags := p.ParseHCL(src, filename)
	if diags.HasErrors() || file == nil {
		return nil, diagnosticsError(diags, p.Files())
	}
	if diags := checkExpressions(file.Body); diags.HasErrors() {
		return nil, diagnosticsError(diags, p.Files())
	}

	var raw fileSchema
	schemaDiags := gohcl.DecodeBody(file.Body, nil, &raw)
	explainUnsupported(schemaDiags, file.Body)
	diags = append(diags, schemaDiags...)

	d := &decoder{
		ctx:           evalContext(lookupEnv),
		dir:           filepath.Dir(filename),
		missing:       file.Body.MissingItemRange(),
		schemaInvalid: schemaDiags.HasErrors(),
	}
	cfg := d.config(&raw)
	diags = append(diags, d.diags...)
	if diags.HasErrors() {
		return nil, diagnosticsError(diags, p.Files())
	}
	return cfg, nil
}

// diagnosticsError sorts diags into file order and wraps them with files.
func diagnosticsError(diags hcl.Diagnostics, files map[string]*hcl.File) *DiagnosticsError {
	sortDiagnostics(diags)
	return &DiagnosticsError{Diags: diags, Files: files}
}
