package chdb

import (
	"net/url"
	"strings"
)

// queryParams returns the values of a request's param_<name> parameters, for the engine
// to bind to the query's {name:Type} placeholders. The engine binds them after parsing,
// as a ClickHouse server does: a value is always a value of its declared type, never
// SQL; a placeholder inside a string literal is text; a NUL byte is a byte of the value.
func queryParams(params url.Values) map[string]string {
	var out map[string]string
	for k, v := range params {
		name, ok := strings.CutPrefix(k, "param_")
		if !ok || name == "" || len(v) == 0 {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[name] = v[0]
	}
	return out
}

// escapedText writes s in ClickHouse's escaped text format, the form in which the engine
// reads a parameter value: tab, newline and backslash would otherwise end or change it.
var escapedText = strings.NewReplacer(`\`, `\\`, "\t", `\t`, "\n", `\n`, "\r", `\r`, "\x00", `\0`)
