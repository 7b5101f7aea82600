package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"bootforge/internal/check"
	"bootforge/internal/config"
)

// asOtherUser is set in the environment of this test binary when it runs
// itself as another user: the value is the command's arguments, one a
// line.
const asOtherUser = "BOOTFORGE_TEST_AS_OTHER_USER"

// An operator who runs a command as his own user beside a serve that runs
// as its own (the systemd unit's) cannot open data_dir. The commands say
// to run as the user that owns it; check's data_dir item fails saying
// so, and its https item does not claim that serve refuses the
// certificate, which serve reads well.
func TestDataDirOfAnotherUser(t *testing.T) {
	if args := os.Getenv(asOtherUser); args != "" {
		os.Unsetenv(asOtherUser) // the command would warn: no setting of that name
		var out bytes.Buffer
		root := newRootCmd(&globalFlags{})
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs(strings.Split(args, "\n"))
		err := root.Execute()
		os.Stdout.Write(out.Bytes())
		if err != nil {
			os.Stdout.WriteString("error: " + err.Error() + "\n")
		}
		os.Exit(0)
	}
	if os.Geteuid() != 0 {
		// The README's test command runs as root, as CI does.
		t.Fatal("this test runs a command as another user (nobody): run the tests as root")
	}
	// What the other user reaches: this test binary and the config, in a
	// directory it may read; data_dir, root's and 0700, it may not.
	pub, err := os.MkdirTemp("", "bootforge-otheruser-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(pub) })
	if err := os.Chmod(pub, 0o755); err != nil {
		t.Fatal(err)
	}
	self, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	defer self.Close()
	bin := filepath.Join(pub, "bootforge.test")
	copyTo, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(copyTo, self); err != nil {
		t.Fatal(err)
	}
	copyTo.Close()
	data := filepath.Join(pub, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(pub, "bootforge.yaml")
	if err := os.WriteFile(cfgFile, []byte("data_dir: "+data+"\nroot: "+filepath.Join(data, "root")+
		"\ntftp: {enabled: false}\nhttp: {enabled: false}\napi: {enabled: false}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	db, err := openStore(cfg) // as serve makes it
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if err := os.MkdirAll(filepath.Join(data, "tls"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"cert.pem", "key.pem"} {
		if err := os.WriteFile(filepath.Join(data, "tls", f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	run := func(args ...string) string {
		cmd := exec.Command(bin, "-test.run=^TestDataDirOfAnotherUser$")
		// Not the BOOTFORGE_* variables of the shell that runs the
		// tests (BOOTFORGE_TEST_POSTGRES): the command would warn about
		// them amid the output read here.
		var env []string
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "BOOTFORGE_") {
				env = append(env, kv)
			}
		}
		cmd.Env = append(env, asOtherUser+"="+strings.Join(append([]string{"--config", cfgFile}, args...), "\n"))
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}} // nobody
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", args, err, out)
		}
		return string(out)
	}
	for _, args := range [][]string{{"host", "list"}, {"token", "list"}, {"log"}} {
		if out := run(args...); !strings.Contains(out, "permission denied: run bootforge as the user that owns data_dir "+data) {
			t.Errorf("%s as another user:\n%s", args, out)
		}
	}
	out := run("check", "--json")
	var items []check.Item
	if err := json.Unmarshal([]byte(out[:strings.LastIndex(out, "]")+1]), &items); err != nil {
		t.Fatalf("check --json: %v\n%s", err, out)
	}
	got := map[string]string{}
	for _, it := range items {
		got[it.Name] = it.Status + ": " + it.Detail
	}
	if d := got["data_dir"]; !strings.HasPrefix(d, "fail") || !strings.Contains(d, "run bootforge check as the user serve runs as") {
		t.Errorf("data_dir item: %s", d)
	}
	if d := got["https"]; !strings.HasPrefix(d, "fail") || strings.Contains(d, "serve refuses") || !strings.Contains(d, "as the user serve runs as") {
		t.Errorf("https item: %s", d)
	}
}
