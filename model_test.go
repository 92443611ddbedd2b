package latch_test

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestModelStepsMatchCode keeps the table of model steps in docs/design.md true:
// each row names a file and line, and that line must hold the statement
// the row quotes.
func TestModelStepsMatchCode(t *testing.T) {
	readme, err := os.ReadFile("docs/design.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| [^|]+ \\| `([a-z/_]+\\.go):([0-9]+)` \\| `(.+)` \\|$")
	rows := row.FindAllStringSubmatch(string(readme), -1)
	if len(rows) < 10 {
		t.Fatalf("found %d model-step rows in docs/design.md, want the whole table", len(rows))
	}
	for _, r := range rows {
		file, stmt := r[1], r[3]
		n, _ := strconv.Atoi(r[2])
		b, err := os.ReadFile(file)
		if err != nil {
			t.Errorf("%s: %v", file, err)
			continue
		}
		lines := strings.Split(string(b), "\n")
		if n >= 1 && n <= len(lines) && strings.TrimSpace(lines[n-1]) == stmt {
			continue
		}
		now := "nowhere"
		for i, l := range lines {
			if strings.TrimSpace(l) == stmt {
				now = fmt.Sprintf("at line %d", i+1)
			}
		}
		t.Errorf("docs/design.md says %s:%d is %q; it is %s now: update the model table in docs/design.md", file, n, stmt, now)
	}
}
