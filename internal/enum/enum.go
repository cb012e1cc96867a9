// Package enum parses the closed sets of words driftd's options take (a method, a test, a
// format). Each option's type lives in the package that owns the concept; this package
// only gives them one Parse and one error text, so that a bad value reads the same way
// wherever it is written (YAML, environment, flag).
package enum

import (
	"fmt"
	"strings"
)

// Parse returns s as a T when it is one of values, and otherwise an error naming what was
// parsed, the bad value and the accepted ones, e.g.
// `method "foo" is not one of auto, test, distance`.
func Parse[T ~string](what, s string, values ...T) (T, error) {
	for _, v := range values {
		if string(v) == s {
			return v, nil
		}
	}
	return "", fmt.Errorf("%s %q is not one of %s", what, s, Join(values))
}

// Join lists values separated by commas, for error texts and help.
func Join[T ~string](values []T) string {
	s := make([]string, len(values))
	for i, v := range values {
		s[i] = string(v)
	}
	return strings.Join(s, ", ")
}
