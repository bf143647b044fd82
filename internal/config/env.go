package config

import (
	"errors"
	"fmt"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
)

// lookupEnvFunc looks up an environment variable, like os.LookupEnv.
type lookupEnvFunc func(name string) (value string, ok bool)

// envNotSetError is returned by env() for a variable that is not set and has
// no default; evalContext's caller turns it into a diagnostic of its own.
type envNotSetError struct{ name string }

func (e *envNotSetError) Error() string {
	return fmt.Sprintf("environment variable %s is not set", e.name)
}

// evalContext returns the context every expression is evaluated in: no
// variables, and the function env.
func evalContext(lookup lookupEnvFunc) *hcl.EvalContext {
	return &hcl.EvalContext{
		Functions: map[string]function.Function{"env": envFunc(lookup)},
	}
}

// envFunc implements env("NAME") and env("NAME", "default").
func envFunc(lookup lookupEnvFunc) function.Function {
	return function.New(&function.Spec{
		Description: "Returns the value of an environment variable, or the default if it is not set.",
		Params: []function.Parameter{
			{Name: "name", Type: cty.String, Description: "Name of the environment variable."},
		},
		VarParam: &function.Parameter{
			Name: "default", Type: cty.String, Description: "Value to use when the variable is not set.",
		},
		Type: function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			if len(args) > 2 {
				return cty.NilVal, fmt.Errorf(`env takes one or two arguments, got %d: write env("NAME") or env("NAME", "default")`, len(args))
			}
			name := args[0].AsString()
			if name == "" {
				return cty.NilVal, function.NewArgErrorf(0, `the variable name is empty: write the name of an environment variable, e.g. env("KAFKA_PASSWORD")`)
			}
			if v, ok := lookup(name); ok {
				return cty.StringVal(v), nil
			}
			if len(args) == 2 {
				return args[1], nil
			}
			return cty.NilVal, &envNotSetError{name: name}
		},
	})
}

// rewriteEnvDiags replaces hcl's generic "Error in function call"
// diagnostics for unset variables with one that names the variable, points
// at the whole env() call and says how to fix it.
func rewriteEnvDiags(diags hcl.Diagnostics) hcl.Diagnostics {
	for i, d := range diags {
		extra, ok := hcl.DiagnosticExtra[hclsyntax.FunctionCallDiagExtra](d)
		if !ok {
			continue
		}
		var notSet *envNotSetError
		if !errors.As(extra.FunctionCallError(), &notSet) {
			continue
		}
		nd := *d
		nd.Summary = "Environment variable not set"
		nd.Detail = fmt.Sprintf(
			`environment variable %s is not set: set it in evproxy's environment, or give a default with env(%q, "value")`,
			notSet.name, notSet.name)
		if d.Context != nil {
			nd.Subject = d.Context.Ptr()
		}
		diags[i] = &nd
	}
	return diags
}
