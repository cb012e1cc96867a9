package chdb

import "testing"

// The policy on printed queries: what a read-only request may run, and what nobody may.
func TestReadOnlyViolations(t *testing.T) {
	for _, c := range []struct {
		printed string
		refused bool
	}{
		{"SELECT 1\n", false},
		{"(SELECT 1)\nUNION ALL\nSELECT 2\n", false},
		{"WITH 1 AS x\nSELECT x\n", false},
		{"SHOW DATABASES\n", false},
		{"DESCRIBE TABLE system.one\n", false},
		{"DESCRIBE TABLE\n(\n    SELECT 1\n)\n", false},
		{"EXPLAIN\nSELECT 1\n", false},
		{"SELECT *\nFROM system.settings\nWHERE name = 'readonly'\n", false},
		{"SELECT\n    'INTO OUTFILE',\n    'SETTINGS readonly = 0',\n    'file(\\'x\\')'\n", false},
		{"SELECT `file`\nFROM t\n", false},
		{"SELECT {s:String}\n", false},
		{"SELECT 'it''s' AS a\n", false},

		{"INSERT INTO t FORMAT Values\n", true},
		{"SELECT 1\nPARALLEL WITH\nCREATE DATABASE x\n", true},
		{"SELECT 1\nparallel with\nSELECT 2\n", true},
		{"DROP DATABASE x\n", true},
		{"SET readonly = 0\n", true},
		{"SELECT 1\nINTO OUTFILE '/tmp/x'\n", true},
		{"SELECT 1\nINTO OUTFILE 'f' AND STDOUT\nFORMAT TSV\n", true},
		{"SELECT 1\nSETTINGS max_execution_time = 0\n", true},
		{"SELECT *\nFROM\n(\n    SELECT 1\n    SETTINGS readonly = 0\n) AS x\n", true},
		{"SELECT file('/etc/passwd')\n", true},
		{"SELECT upper(File('/etc/passwd'))\n", true},
		{"SELECT `file`('/etc/passwd')\n", true},
		{"SELECT catboostEvaluate('/m.bin', 1)\n", true},
		{"DESCRIBE TABLE file('/etc/passwd', 'CSVWithNames')\n", true},
		{"DESCRIBE TABLE url('http://10.0.0.1/x.csv')\n", true},
		{"EXPLAIN TABLE OVERRIDE mysql('10.0.0.1:3306', 'db', 't', 'u', 'p') PARTITION BY tuple()\n", true},
		{"SELECT format('{}', 1)\n", false},
		{"SELECT *\nFROM numbers(3)\n", false},
		{"SELECT 'a\\' INTO OUTFILE ''', 1\nINTO OUTFILE 'x'\n", true},
	} {
		st, err := parseStatement(c.printed)
		if err != nil {
			t.Errorf("%q: %v", c.printed, err)
			continue
		}
		if why := st.readOnlyViolation(map[string]bool{"file": true, "url": true, "mysql": true}); (why != "") != c.refused {
			t.Errorf("%q: violation %q, want refused=%v", c.printed, why, c.refused)
		}
	}
	if _, err := parseStatement("SELECT 'open"); err == nil {
		t.Error("an unterminated string lexed")
	}
}
