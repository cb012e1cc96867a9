package chdb

import (
	"regexp"
	"strconv"
)

// Exception is an error reported by the engine, in ClickHouse's own words
// ("Code: 60. DB::Exception: Unknown table ...").
type Exception struct {
	Message string
}

func (e *Exception) Error() string { return e.Message }

var codeRE = regexp.MustCompile(`Code: (\d+)\.`)

// Code is ClickHouse's numeric error code, or 1001 (STD_EXCEPTION) when the message has none.
func (e *Exception) Code() int {
	if m := codeRE.FindStringSubmatch(e.Message); m != nil {
		if c, err := strconv.Atoi(m[1]); err == nil {
			return c
		}
	}
	return 1001
}
