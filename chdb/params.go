package chdb

import (
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

var placeholderRE = regexp.MustCompile(`\{([A-Za-z_][A-Za-z0-9_]*):([^{}]+)\}`)

// unescaper undoes the escaping of a parameter value in ClickHouse's "escaped" text format.
var unescaper = strings.NewReplacer(`\\`, `\`, `\t`, "\t", `\n`, "\n", `\r`, "\r", `\0`, "\x00", `\'`, `'`)

// bindParams replaces {name:Type} placeholders with literals built from the param_name
// values of the request, as a ClickHouse server does: a value is always a literal of its
// declared type, never SQL. Types other than strings, numbers, dates and booleans are
// refused rather than guessed.
func bindParams(query string, params url.Values) (string, error) {
	var bindErr error
	out := placeholderRE.ReplaceAllStringFunc(query, func(ph string) string {
		m := placeholderRE.FindStringSubmatch(ph)
		name, typ := m[1], strings.TrimSpace(m[2])
		raw, ok := params["param_"+name]
		if !ok {
			bindErr = fmt.Errorf("Code: 456. DB::Exception: Substitution `%s` is not set. (UNKNOWN_QUERY_PARAMETER)", name)
			return ph
		}
		lit, err := literal(unescaper.Replace(raw[0]), typ)
		if err != nil {
			if bindErr == nil {
				bindErr = fmt.Errorf("Code: 457. DB::Exception: Value %q cannot be parsed as %s for query parameter '%s': %v. (BAD_QUERY_PARAMETER)", raw[0], typ, name, err)
			}
			return ph
		}
		// The type comes from the query text, the value only from the validated literal.
		return "CAST(" + lit + " AS " + typ + ")"
	})
	return out, bindErr
}

func literal(v, typ string) (string, error) {
	base := typ
	for _, wrap := range []string{"Nullable(", "LowCardinality("} {
		if strings.HasPrefix(base, wrap) && strings.HasSuffix(base, ")") {
			base = strings.TrimSpace(base[len(wrap) : len(base)-1])
		}
	}
	if strings.HasPrefix(typ, "Nullable(") && v == `\N` {
		return "NULL", nil
	}
	quoted := "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
	switch {
	case base == "String" || strings.HasPrefix(base, "FixedString(") || base == "UUID":
		return quoted, nil
	case strings.HasPrefix(base, "Int") || strings.HasPrefix(base, "UInt"):
		if _, err := strconv.ParseInt(v, 10, 64); err != nil {
			if _, err := strconv.ParseUint(v, 10, 64); err != nil {
				return "", err
			}
		}
		return v, nil
	case strings.HasPrefix(base, "Float") || strings.HasPrefix(base, "Decimal"):
		if _, err := strconv.ParseFloat(v, 64); err != nil {
			return "", err
		}
		return v, nil
	case base == "Bool":
		if v != "true" && v != "false" && v != "0" && v != "1" {
			return "", fmt.Errorf("not a boolean")
		}
		return v, nil
	case base == "Date" || base == "Date32" || strings.HasPrefix(base, "DateTime"):
		return quoted, nil
	}
	return "", fmt.Errorf("type %s is not supported by the embedded endpoint's parameter binding", typ)
}
