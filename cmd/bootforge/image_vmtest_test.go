package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"bootforge/internal/image"
	"bootforge/internal/vmtest"
)

func TestPrintVMResult(t *testing.T) {
	id, _ := image.ParseID("deb@1.0.0")
	var b bytes.Buffer
	printVMResult(&b, &vmtest.Result{ID: id, Firmware: vmtest.UEFI, Passed: true, Elapsed: 31234 * time.Millisecond,
		Line: "[    6.9] Run /init as init process"})
	if got := b.String(); got != "PASS deb@1.0.0 (uefi): matched after 31.2 s: [    6.9] Run /init as init process\n" {
		t.Errorf("pass: %q", got)
	}
	b.Reset()
	printVMResult(&b, &vmtest.Result{ID: id, Firmware: vmtest.BIOS, Elapsed: 19 * time.Second,
		Reason: "the console printed a failure: Could not select: Exec format error", MAC: "52:54:00:12:34:56", IP: "192.0.2.10",
		ConsoleTail: []string{"http://192.0.2.1:8080/images/deb/1.0.0/vmlinuz... ok", "Could not select: Exec format error"},
		ServerLog:   []string{`level=INFO msg="dhcp: lease" ip=192.0.2.10`}})
	want := `FAIL deb@1.0.0 (bios) after 19.0 s: the console printed a failure: Could not select: Exec format error
--- console tail (last 40 lines) ---
http://192.0.2.1:8080/images/deb/1.0.0/vmlinuz... ok
Could not select: Exec format error
--- server log for 52:54:00:12:34:56 / 192.0.2.10 ---
level=INFO msg="dhcp: lease" ip=192.0.2.10
---
`
	if got := b.String(); got != want {
		t.Errorf("fail:\n%s\nwant:\n%s", got, want)
	}
	b.Reset()
	printVMResult(&b, &vmtest.Result{ID: id, Firmware: vmtest.BIOS, Reason: "x"})
	for _, s := range []string{"(the console printed nothing)", "(the server logged nothing about this VM)"} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("empty fail lacks %q:\n%s", s, b.String())
		}
	}
}

// TestImageTestCmdRefusesEarly: bad arguments and a missing version fail
// before anything is set up (no root or QEMU needed).
func TestImageTestCmdRefusesEarly(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "bootforge.yaml")
	os.WriteFile(cfg, []byte("root: "+filepath.Join(dir, "root")+"\ndata_dir: "+filepath.Join(dir, "data")+"\n"), 0o644)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"deb"}, "name the version"},
		{[]string{"deb@1.0.0", "--firmware", "efi"}, "use bios, uefi or secboot"},
		{[]string{"deb@1.0.0"}, "no built version deb@1.0.0"},
		{[]string{}, "accepts 1 arg"},
	} {
		g := &globalFlags{}
		root := newRootCmd(g)
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs(append([]string{"--config", cfg, "image", "test"}, tc.args...))
		err := root.Execute()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("image test %v: %v, want %q", tc.args, err, tc.want)
		}
	}
}
