package vmtest

import (
	"regexp"
	"strings"
	"testing"

	"bootforge/internal/boot"
)

func TestDefaultLinuxExpect(t *testing.T) {
	re := regexp.MustCompile(DefaultLinuxExpect)
	for _, line := range []string{
		"[    1.972827] Run /init as init process",
		"[    2.500000] Run /sbin/init as init process",
	} {
		if !re.MatchString(line) {
			t.Errorf("%q does not match the default expect", line)
		}
	}
	for _, line := range []string{
		"[    0.000000] Linux version 6.1.0-57-amd64",
		"Run init as init process",
	} {
		if re.MatchString(line) {
			t.Errorf("%q matches the default expect", line)
		}
	}
	w := regexp.MustCompile(DefaultWimbootExpect)
	if !w.MatchString("wimboot v2.7.3 -- Windows Imaging Format bootloader -- https://ipxe.org/wimboot") {
		t.Error("wimboot's banner does not match the default wimboot expect")
	}
}

func TestFailPattern(t *testing.T) {
	linux := FailPattern(boot.KindLinux)
	for _, line := range []string{
		"[    2.1] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)",
		"error: bad shim signature.",
		"error: you need to load the kernel first.",
		"error: invalid magic number.",
		"Could not select: Exec format error (http://ipxe.org/2e008081)",
		"Could not boot image: Exec format error (http://ipxe.org/2e008081)",
		"No bootable device.  Retrying in 60 seconds.",
		"Verification failed: (0x1A) Security Violation",
	} {
		if !linux.MatchString(line) {
			t.Errorf("%q does not fail a linux test", line)
		}
	}
	for _, line := range []string{
		"secureboot: Secure boot enabled",
		"Could not open device", // not a boot failure of iPXE
		"NETBOOT-OK cmdline: panic=-1",
		"FATAL: could not load",
	} {
		if linux.MatchString(line) {
			t.Errorf("%q fails a linux test", line)
		}
	}
	if !FailPattern(boot.KindWimboot).MatchString("FATAL: no BCD found") {
		t.Error("wimboot's FATAL does not fail a wimboot test")
	}
	// FailPattern must not grow the shared list.
	FailPattern(boot.KindWimboot)
	if FailPattern(boot.KindLinux).MatchString("FATAL: x") {
		t.Error("the wimboot pattern leaked into the linux one")
	}
}

func TestConsoleMatchesWholeLines(t *testing.T) {
	c := NewConsole(regexp.MustCompile(`NETBOOT-OK .*bfmarker=(\S+)`), FailPattern(boot.KindLinux))
	// Split mid-line and mid-escape sequence, with CRs and colours.
	for _, chunk := range []string{
		"\x1b[2J\x1b[01;01HSeaBIOS\r\n", "iPXE ...\r\n", "NETBOOT-OK cmd",
		"line: panic=-1 bfma", "rker=deb-1.0.0 con", "sole=ttyS0\r", "\n",
	} {
		if v, _, _ := c.Verdict(); v != Pending {
			t.Fatalf("decided %s before the line ended", v)
		}
		c.Write([]byte(chunk))
	}
	v, line, _ := c.Verdict()
	if v != Passed || line != "NETBOOT-OK cmdline: panic=-1 bfmarker=deb-1.0.0 console=ttyS0" {
		t.Fatalf("verdict %s, line %q", v, line)
	}
	// The verdict never changes.
	c.Write([]byte("Kernel panic - not syncing: later\n"))
	if v, _, _ := c.Verdict(); v != Passed {
		t.Fatalf("verdict changed to %s", v)
	}
	if got := c.Tail(2); strings.Join(got, "|") != "NETBOOT-OK cmdline: panic=-1 bfmarker=deb-1.0.0 console=ttyS0|Kernel panic - not syncing: later" {
		t.Errorf("tail %q", got)
	}
	if got := c.Tail(100)[0]; got != "SeaBIOS" {
		t.Errorf("first line %q, want the escape sequences gone", got)
	}
}

func TestConsoleFailureWins(t *testing.T) {
	c := NewConsole(regexp.MustCompile(`Run /\S+`), FailPattern(boot.KindLinux))
	c.Write([]byte("http://192.0.2.1:8080/images/deb/1.0.1/vmlinuz... ok\nCould not select: Exec format error (http://ipxe.org/2e008081)\nRun /init\n"))
	v, line, _ := c.Verdict()
	if v != Failed || line != "Could not select: Exec format error (http://ipxe.org/2e008081)" {
		t.Fatalf("verdict %s, line %q", v, line)
	}
	// A line matching both patterns fails.
	c = NewConsole(regexp.MustCompile(`panic`), FailPattern(boot.KindLinux))
	c.Write([]byte("Kernel panic - not syncing: x\n"))
	if v, _, _ := c.Verdict(); v != Failed {
		t.Fatalf("verdict %s", v)
	}
}

func TestConsoleSettlesUnfinishedLine(t *testing.T) {
	c := NewConsole(regexp.MustCompile(`login: $`), nil)
	c.Write([]byte("Debian GNU/Linux 12 vm ttyS0\n\nvm login: "))
	if v, _, _ := c.Verdict(); v != Pending {
		t.Fatalf("decided %s on an unfinished line", v)
	}
	if !c.Unfinished() {
		t.Fatal("Unfinished() = false for a matching prompt")
	}
	if v := c.Settle(); v != Passed {
		t.Fatalf("Settle() = %s", v)
	}
	if _, line, _ := c.Verdict(); line != "vm login: " {
		t.Errorf("line %q", line)
	}
	// Nothing to settle: stays pending.
	c = NewConsole(regexp.MustCompile(`x`), nil)
	c.Write([]byte("abc"))
	if c.Unfinished() || c.Settle() != Pending {
		t.Error("a non-matching unfinished line decided")
	}
}

func TestConsoleBoundsMemory(t *testing.T) {
	c := NewConsole(regexp.MustCompile(`never`), nil)
	for i := 0; i < 5000; i++ {
		c.Write([]byte("a line of output\n"))
	}
	c.Write([]byte(strings.Repeat(".", 3*maxLine)))
	c.mu.Lock()
	lines, cur := len(c.lines), len(c.cur)
	c.mu.Unlock()
	if lines > 2*keepLines || cur > maxLine {
		t.Errorf("kept %d lines and a line of %d bytes", lines, cur)
	}
	if got := c.Tail(3); len(got) != 3 {
		t.Errorf("tail %d lines", len(got))
	}
}

func TestCleanLine(t *testing.T) {
	for in, want := range map[string]string{
		"\x1b[0m\x1b[37m\x1b[40mBdsDxe: loading\r": "BdsDxe: loading",
		"\x1b(B\x1b)0plain\x1b7\x1b8":              "plain",
		"tab\there\x00\x07":                        "tab\there",
		"\x1b[?25lhidden cursor\x1b[?25h":          "hidden cursor",
	} {
		if got := CleanLine(in); got != want {
			t.Errorf("CleanLine(%q) = %q, want %q", in, got, want)
		}
	}
}
