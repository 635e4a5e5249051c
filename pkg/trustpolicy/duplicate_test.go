package trustpolicy

import (
	"strings"
	"testing"
)

// A duplicate key, at any depth, is an error naming both lines.
func TestDuplicateKeyIsAnError(t *testing.T) {
	for name, tc := range map[string]struct {
		doc  string
		want []string
	}{
		"Effect twice": {`{
  "Version": "2012-10-17",
  "Statement": [{
    "Effect": "Deny",
    "Principal": {"Service": "ecs-tasks.amazonaws.com"},
    "Action": "sts:AssumeRole",
    "Effect": "Allow"
  }]
}`, []string{"t.json:7:", `duplicate key "Effect"`, "line 4 and line 7"}},
		"Statement twice": {`{"Version": "2012-10-17",
"Statement": [],
"Statement": [{"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}]}`,
			[]string{`duplicate key "Statement"`, "line 2 and line 3"}},
		"Service inside Principal": {`{"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
 "Principal": {"Service": "ec2.amazonaws.com",
   "Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}]}`,
			[]string{`duplicate key "Service"`, "line 2 and line 3"}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Lint([]byte(tc.doc), "t.json", Task, "")
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%v lacks %q", err, w)
				}
			}
		})
	}
	// The same key in two different objects is fine.
	ok := `{"Version": "2012-10-17", "Statement": [
 {"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"},
 {"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:TagSession"}]}`
	if _, err := Lint([]byte(ok), "t.json", Task, ""); err != nil {
		t.Fatal(err)
	}
}
