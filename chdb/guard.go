package chdb

import (
	"errors"
	"strings"
)

// The engine's readonly=1 is what keeps read-only requests from writing, and it refuses
// file(), url() and the other table functions in a FROM. It leaves holes, each found
// against the engine: a SETTINGS clause inside a subquery changes settings, readonly
// included (SELECT * FROM (SELECT * FROM file(...) SETTINGS readonly=0) reads the file);
// SELECT ... INTO OUTFILE writes a file; the scalar function file() reads one; DESCRIBE
// of a table function reads a file (its header names the columns) or sends a request
// (url()) to infer a schema; and PARALLEL WITH runs statements beside the one readonly
// binds (SELECT 1 PARALLEL WITH CREATE DATABASE x creates x). guard closes them on the
// query as the engine's own parser printed it (formatQuery), which has no comments,
// heredocs or odd quoting left, and the printed text is what then runs, so what is
// checked is what is executed. Table functions that readonly refuses are refused in any
// position, not only where the engine checks them.

// token is one lexical element of a printed query.
type token struct {
	text string
	kind tokenKind
}

type tokenKind int

const (
	word   tokenKind = iota // keyword or bare identifier
	quoted                  // `identifier` or "identifier"
	str                     // 'string literal'
	punct                   // anything else, one byte at a time
)

// lex splits a query into tokens. Quoted text ends at its unescaped closing quote; a
// doubled quote inside is one quote, as in ClickHouse's lexer. An unterminated quote is
// an error: the engine would not have printed it.
func lex(q string) ([]token, error) {
	var out []token
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '\'' || c == '`' || c == '"':
			j := i + 1
			for {
				if j >= len(q) {
					return nil, errors.New("unterminated quote")
				}
				if q[j] == '\\' {
					j += 2
					continue
				}
				if q[j] == c {
					if j+1 < len(q) && q[j+1] == c {
						j += 2
						continue
					}
					break
				}
				j++
			}
			kind := quoted
			if c == '\'' {
				kind = str
			}
			out = append(out, token{q[i : j+1], kind})
			i = j + 1
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80:
			j := i
			for j < len(q) && (q[j] == '_' || q[j] == '$' || q[j] >= 'a' && q[j] <= 'z' || q[j] >= 'A' && q[j] <= 'Z' || q[j] >= '0' && q[j] <= '9' || q[j] >= 0x80) {
				j++
			}
			out = append(out, token{q[i:j], word})
			i = j
		default:
			out = append(out, token{q[i : i+1], punct})
			i++
		}
	}
	return out, nil
}

// readStatements are the statements a read-only request may run.
var readStatements = map[string]bool{"SELECT": true, "WITH": true, "SHOW": true, "DESCRIBE": true, "DESC": true, "EXISTS": true, "EXPLAIN": true}

// hostFunctions read the host's files whatever readonly says.
var hostFunctions = map[string]bool{"file": true, "catboostevaluate": true}

// statement is a printed query in tokens.
type statement []token

func (s statement) is(i int, w string) bool {
	return i >= 0 && i < len(s) && s[i].kind == word && strings.EqualFold(s[i].text, w)
}

func (s statement) punctAt(i int, p string) bool {
	return i >= 0 && i < len(s) && s[i].kind == punct && s[i].text == p
}

// reads reports whether the statement is one of readStatements.
func (s statement) reads() bool {
	i := 0
	for s.punctAt(i, "(") {
		i++
	}
	return i < len(s) && s[i].kind == word && readStatements[strings.ToUpper(s[i].text)]
}

// keyword reports whether w occurs as a keyword: a bare word not after a dot
// (system.settings is a table, not a SETTINGS clause).
func (s statement) keyword(w string) bool {
	for i := range s {
		if s.is(i, w) && !s.punctAt(i-1, ".") {
			return true
		}
	}
	return false
}

// fileTransfer reports INTO OUTFILE or FROM INFILE, which move data between the engine
// and the host's files; ClickHouse's own HTTP interface refuses both.
func (s statement) fileTransfer() string {
	for i := range s {
		if s.is(i, "INTO") && s.is(i+1, "OUTFILE") {
			return "INTO OUTFILE"
		}
		if s.is(i, "FROM") && s.is(i+1, "INFILE") {
			return "FROM INFILE"
		}
	}
	return ""
}

// readOnlyViolation says why a statement may not run as a read-only request, or "".
// tableFunctions are the (lower-case) names of the table functions readonly refuses.
func (s statement) readOnlyViolation(tableFunctions map[string]bool) string {
	if !s.reads() {
		return "only SELECT, SHOW, DESCRIBE, EXISTS and EXPLAIN run read-only"
	}
	if t := s.fileTransfer(); t != "" {
		return t + " writes or reads the host's files"
	}
	if s.keyword("SETTINGS") {
		return "a read-only request cannot change settings (SETTINGS)"
	}
	for i := range s {
		// The engine runs each statement of PARALLEL WITH on its own, and the appended
		// readonly=1 binds the last one only: SELECT 1 PARALLEL WITH CREATE DATABASE x
		// creates x.
		if s.is(i, "PARALLEL") && s.is(i+1, "WITH") {
			return "PARALLEL WITH runs other statements beside this one"
		}
	}
	for i := range s {
		if s[i].kind != word && s[i].kind != quoted || !s.punctAt(i+1, "(") || s.punctAt(i-1, ".") {
			continue
		}
		name := strings.Trim(s[i].text, "`\"")
		if hostFunctions[strings.ToLower(name)] {
			return "function " + name + "() reads the host's files"
		}
		if tableFunctions[strings.ToLower(name)] {
			return "table function " + name + "() reaches beyond the engine's tables"
		}
	}
	return ""
}

// parseStatement lexes a printed query.
func parseStatement(printed string) (statement, error) {
	toks, err := lex(printed)
	if err != nil {
		return nil, err
	}
	return statement(toks), nil
}
