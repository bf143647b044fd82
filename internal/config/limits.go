package config

import (
	"fmt"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// The checks in this file keep a hostile or broken file from hanging or
// crashing evproxy while it is parsed: every problem must come back as a
// diagnostic. The fuzz test found both hazards.

// Bounds of checkNesting. Real configurations stay far below both.
const (
	maxNesting   = 1000  // open brackets, braces, parentheses, quotes and templates
	maxOperators = 10000 // unary operators, conditionals and template directives
)

// checkNesting rejects src that would make the recursive-descent HCL parser
// or evaluator recurse deep enough to overflow the stack, which kills the
// process instead of returning an error. The lexer it uses does not recurse.
func checkNesting(src []byte, filename string) hcl.Diagnostics {
	// Every token counted below contains one of these bytes, so a file with
	// few of them cannot exceed either bound: skip lexing it twice.
	n := 0
	for _, c := range src {
		switch c {
		case '{', '[', '(', '"', '<', '$', '%', '!', '-', '?':
			n++
		}
	}
	if n <= min(maxNesting, maxOperators) {
		return nil
	}

	tokens, _ := hclsyntax.LexConfig(src, filename, hcl.InitialPos)
	depth, operators := 0, 0
	for _, t := range tokens {
		switch t.Type {
		case hclsyntax.TokenOBrace, hclsyntax.TokenOBrack, hclsyntax.TokenOParen,
			hclsyntax.TokenOQuote, hclsyntax.TokenOHeredoc, hclsyntax.TokenTemplateInterp:
			depth++
		case hclsyntax.TokenTemplateControl:
			depth++
			operators++
		case hclsyntax.TokenCBrace, hclsyntax.TokenCBrack, hclsyntax.TokenCParen,
			hclsyntax.TokenCQuote, hclsyntax.TokenCHeredoc, hclsyntax.TokenTemplateSeqEnd:
			depth = max(depth-1, 0)
		case hclsyntax.TokenBang, hclsyntax.TokenMinus, hclsyntax.TokenQuestion:
			operators++
		}
		if depth > maxNesting || operators > maxOperators {
			return hcl.Diagnostics{{
				Severity: hcl.DiagError,
				Summary:  "Configuration too deeply nested",
				Detail: fmt.Sprintf(
					"the file nests brackets more than %d levels deep or uses more than %d operators: simplify the expression here",
					maxNesting, maxOperators),
				Subject: t.Range.Ptr(),
			}}
		}
	}
	return nil
}

// maxNumberExp bounds the binary exponent of number literals, about 1e100.
// Every numeric key is below 2^31; the bound keeps hcl from spending
// seconds formatting a number such as 1e10000000 as a string.
const maxNumberExp = 333

// checkExpressions rejects number literals of absurd magnitude and
// arithmetic. Arithmetic is refused because it can build such numbers from
// small pieces ("${"1e99"}999999" * 1) that hcl then formats slowly; no key
// needs it.
func checkExpressions(body hcl.Body) hcl.Diagnostics {
	sb, ok := body.(*hclsyntax.Body)
	if !ok {
		return nil
	}
	var arithmetic hcl.Range // the last arithmetic reported; VisitAll visits parents first
	return hclsyntax.VisitAll(sb, func(n hclsyntax.Node) hcl.Diagnostics {
		switch e := n.(type) {
		case *hclsyntax.BinaryOpExpr:
			switch e.Op {
			case hclsyntax.OpAdd, hclsyntax.OpSubtract, hclsyntax.OpMultiply, hclsyntax.OpDivide, hclsyntax.OpModulo:
				if arithmetic.ContainsOffset(e.Range().Start.Byte) {
					return nil // part of an expression already reported
				}
				arithmetic = e.Range()
				return hcl.Diagnostics{{
					Severity: hcl.DiagError,
					Summary:  "Arithmetic not supported",
					Detail:   "evproxy configuration does not support arithmetic: write the resulting value, e.g. max_request_bytes = 104857600",
					Subject:  e.Range().Ptr(),
				}}
			}
		case *hclsyntax.LiteralValueExpr:
			v := e.Val
			if v.Type() != cty.Number || v.IsNull() || !v.IsKnown() {
				return nil
			}
			f := v.AsBigFloat()
			if exp := f.MantExp(nil); f.Sign() != 0 && (exp > maxNumberExp || exp < -maxNumberExp) {
				return hcl.Diagnostics{{
					Severity: hcl.DiagError,
					Summary:  "Number out of range",
					Detail:   "this number is too large or too close to zero: every numeric key of evproxy takes a whole number below 2147483648",
					Subject:  e.Range().Ptr(),
				}}
			}
		}
		return nil
	})
}
