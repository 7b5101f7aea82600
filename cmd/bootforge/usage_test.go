package main

import (
	"bytes"
	"strings"
	"testing"
)

// A command given the wrong arguments or a flag value that does not
// parse says which command refused it and what to type, in words: not
// cobra's bare "accepts 1 arg(s), received 2", nor the parser's
// "strconv.ParseInt: parsing ...". Every command group refuses a
// subcommand it does not have, completion included, with exit status 1.
func TestUsageErrorsSayWhatToType(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want []string
		not  []string
	}{
		{[]string{"host", "add", "pc1", "52:54:00:12:34:56"},
			[]string{"host add: accepts 1 arg(s), received 2", "usage: bootforge host add NAME --mac MAC"}, nil},
		{[]string{"version", "extra"},
			[]string{`version: takes no arguments, got "extra"`, "usage: bootforge version"}, []string{"unknown command"}},
		{[]string{"keys", "export-edk2"}, []string{"usage: bootforge keys export-edk2 FILE"}, nil},
		{[]string{"log", "--before", "abc"},
			[]string{`log: invalid argument "abc" for "--before" flag: not a whole number`, "see bootforge log --help"}, []string{"strconv"}},
		{[]string{"log", "--since", "2x"},
			[]string{`"--since" flag: not a duration like`, "see bootforge log --help"}, []string{"time:"}},
		{[]string{"host", "add", "pc1", "--bogus"}, []string{"host add: unknown flag: --bogus (see bootforge host add --help)"}, nil},
		{[]string{"completion", "bsh"}, []string{`unknown command "bsh" for "bootforge completion"`}, nil},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out bytes.Buffer
			root := newRootCmd(&globalFlags{})
			root.SetOut(&out)
			root.SetErr(&out)
			root.SetArgs(append([]string{"--config", ""}, tt.args...))
			err := root.Execute()
			if err == nil {
				t.Fatalf("no error; printed:\n%s", out.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q lacks %q", err, w)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(err.Error(), n) {
					t.Errorf("%q says %q", err, n)
				}
			}
		})
	}
}
