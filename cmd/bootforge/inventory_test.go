package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An inventory file that cannot be read does not stop `profile list` or
// `menu render`, as it does not stop the host commands: they warn, naming
// the file and its line, and go on without it.
func TestReadCommandsLeaveOutUnreadableFile(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"profiles", "hosts", "data"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(name, text string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("bootforge.yaml", "root: "+filepath.Join(dir, "root")+"\ndata_dir: "+filepath.Join(dir, "data")+
		"\ninventory:\n  default_profile: lab\n")
	write("profiles/lab.yaml", "name: lab\nmenu: {default: disk, entries: [{name: disk, kind: local}]}\n")
	write("hosts/good.yaml", "- {name: pc1, macs: [\"52:54:00:aa:00:01\"], profile: lab}\n")
	broken := filepath.Join(dir, "hosts", "broken.yaml")
	write("hosts/broken.yaml", "- {name: t1, macs: [\"52:54:00:aa:00:09\"]\n")

	run := func(args ...string) (string, string, error) {
		var out, errOut bytes.Buffer
		root := newRootCmd(&globalFlags{})
		root.SetOut(&out)
		root.SetErr(&errOut)
		root.SetArgs(append([]string{"--config", filepath.Join(dir, "bootforge.yaml")}, args...))
		err := root.Execute()
		return out.String(), errOut.String(), err
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"profile", "list"}, "lab"},
		{[]string{"menu", "render", "--mac", "52:54:00:aa:00:01"}, "# profile: lab"},
	} {
		out, warn, err := run(tc.args...)
		if err != nil || !strings.Contains(out, tc.want) {
			t.Errorf("%s with a broken host file: %v, want %q in:\n%s", strings.Join(tc.args, " "), err, tc.want, out)
		}
		if !strings.Contains(warn, "warning") || !strings.Contains(warn, broken+":1") {
			t.Errorf("%s: want a warning naming %s:1, got:\n%s", strings.Join(tc.args, " "), broken, warn)
		}
	}
}
