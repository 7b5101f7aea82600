package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A command given the wrong arguments or a flag value that does not
// parse says which command refused it and what to type, in words: not
// cobra's bare "accepts 1 arg(s), received 2", nor the parser's
// "strconv.ParseInt: parsing ...". Every command group refuses a
// subcommand it does not have, completion included, with exit status 1;
// so does help given one (help nosuch printed the usage and exited 0).
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
		{[]string{"check", "dhpc"}, []string{`check: takes no arguments, got "dhpc"; did you mean dhcp?`}, nil},
		{[]string{"menu", "render"}, []string{"--mac is required", "usage: bootforge menu render --mac M"}, []string{`""`}},
		{[]string{"menu", "render", "--mac", "52:54:00:00:00:01", "--format", "nope"}, []string{`--format: format "nope" is not one of`}, nil},
		{[]string{"help", "nosuch"}, []string{`unknown command "nosuch" for "bootforge"`, "see bootforge --help"}, nil},
		{[]string{"help", "hots"}, []string{`unknown command "hots" for "bootforge"; did you mean host?`}, nil},
		{[]string{"help", "host", "ad"}, []string{`unknown command "ad" for "bootforge host"; did you mean add`}, nil},
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

// help of a command that exists prints its help, and exits 0.
func TestHelpOfACommand(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"help", "host"}, {"help", "host", "add"}} {
		var out bytes.Buffer
		root := newRootCmd(&globalFlags{})
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs(args)
		if err := root.Execute(); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		want := "bootforge " + strings.Join(args[1:], " ")
		if !strings.Contains(out.String(), "Usage:\n  "+strings.TrimSpace(want)) {
			t.Errorf("%v printed:\n%s", args, out.String())
		}
	}
}

// The error that ends a command is a JSON log line when the config says
// log.format: json, as the service's log is: it was JSON only with
// --log-format json or BOOTFORGE_LOG_FORMAT=json, so serve's "address
// already in use" reached a collector of its JSON log as plain text.
func TestFatalErrorInConfiguredLogFormat(t *testing.T) {
	t.Setenv("BOOTFORGE_LOG_FORMAT", "") // restored after the test
	os.Unsetenv("BOOTFORGE_LOG_FORMAT")
	dir := t.TempDir()
	for _, tt := range []struct {
		name, yaml string
		flags      []string
		json       bool
	}{
		{"config says json", "log: {format: json}\n", nil, true},
		{"config says text", "log: {format: text}\n", nil, false},
		{"the flag wins", "log: {format: json}\n", []string{"--log-format", "text"}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-")+".yaml")
			text := tt.yaml + "root: " + filepath.Join(dir, "root") + "\ndata_dir: " + filepath.Join(dir, "data") + "\n"
			if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			g := &globalFlags{}
			root := newRootCmd(g)
			root.SetOut(io.Discard)
			root.SetErr(io.Discard)
			root.SetArgs(append([]string{"--config", file, "host", "add", "pc1"}, tt.flags...)) // no --mac: fails after the config loaded
			err := root.Execute()
			if err == nil {
				t.Fatal("host add without a MAC passed")
			}
			var out bytes.Buffer
			printFatal(&out, g, err)
			var line struct{ Level, Msg, Err string }
			isJSON := json.Unmarshal(out.Bytes(), &line) == nil
			if isJSON != tt.json || tt.json && (line.Level != "ERROR" || !strings.Contains(line.Err, "a host needs a MAC")) {
				t.Errorf("printed %q, want JSON: %v", out.String(), tt.json)
			}
		})
	}
}

// A BOOTFORGE_* variable set empty is as if it were not set, for every
// variable alike, as it was for BOOTFORGE_CONFIG: BOOTFORGE_LOG_FORMAT=
// (a service manager's template with the value left out) was refused as
// log.format "", and BOOTFORGE_ROOT= replaced the file's root with "".
func TestEmptyVariableIsUnset(t *testing.T) {
	cfg := apiOffConfig(t)
	for _, name := range []string{"BOOTFORGE_LOG_FORMAT", "BOOTFORGE_LOG_LEVEL", "BOOTFORGE_ROOT", "BOOTFORGE_TFTP_ADDR"} {
		t.Setenv(name, "")
	}
	var out, errOut bytes.Buffer
	root := newRootCmd(&globalFlags{})
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs([]string{"--config", cfg, "-v", "host", "list"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	if want := "root:   " + filepath.Join(filepath.Dir(cfg), "root") + "\n"; !strings.Contains(errOut.String(), want) {
		t.Errorf("not the file's root (%q):\n%s", want, errOut.String())
	}
}

// Every command that reads the config warns once about a BOOTFORGE_*
// variable that names no setting, in serve's words: only serve did, so
// BOOTFORGE_DATADIR (a typo of BOOTFORGE_DATA_DIR) was ignored without a
// word by host, log, keys and the others.
func TestUnknownVariableWarnedByEveryCommand(t *testing.T) {
	cfg := apiOffConfig(t)
	t.Setenv("BOOTFORGE_DATADIR", "/elsewhere")
	const want = `bootforge: warning: config: BOOTFORGE_DATADIR: not a bootforge variable; ignored (did you mean "BOOTFORGE_DATA_DIR"?)`
	for _, args := range [][]string{{"host", "list"}, {"log"}, {"profile", "list"}, {"token", "list"}, {"keys", "show"}} {
		var out, errOut bytes.Buffer
		root := newRootCmd(&globalFlags{})
		root.SetOut(&out)
		root.SetErr(&errOut)
		root.SetArgs(append([]string{"--config", cfg}, args...))
		root.Execute() // keys show fails: no keys; after the config loaded
		if n := strings.Count(errOut.String(), want); n != 1 {
			t.Errorf("%v: the warning %d times, want once:\n%s", args, n, errOut.String())
		}
	}
}
