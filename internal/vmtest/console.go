package vmtest

import (
	"regexp"
	"strings"
	"sync"

	"bootforge/internal/boot"
)

// DefaultLinuxExpect is what --expect defaults to for a linux image: the
// kernel's own line when it hands over to user space ("Run /init as init
// process" from an initramfs, "Run /sbin/init as init process" from a root
// file system). It proves the firmware, the loaders, the kernel and the
// initrd all worked. The kernel prints it at KERN_INFO, so a command line
// with "quiet" hides it; give such images an --expect of their own.
const DefaultLinuxExpect = `Run /\S+ as init process`

// DefaultWimbootExpect is the default for a wimboot image: wimboot's
// banner, "wimboot v2.7.3 -- Windows Imaging Format bootloader -- ...".
const DefaultWimbootExpect = `wimboot v[0-9][^\s]* -- Windows Imaging Format bootloader`

// failPatterns end a test at once when the console prints one: a kernel
// that died, a loader that refused an image, or firmware that ran out of
// things to boot. Each is what the real component prints.
var failPatterns = []string{
	`Kernel panic - not syncing`,        // Linux
	`Unable to mount root fs`,           // Linux without a usable root or initrd
	`No working init found`,             // Linux: the initrd has no /init
	`bad shim signature`,                // GRUB through shim, Secure Boot
	`Verification failed`,               // shim
	`Security Violation`,                // EDK2 refused an image
	`invalid magic number`,              // GRUB: not a kernel
	`you need to load the kernel first`, // GRUB: the linux command failed
	`Could not (boot|select)( image)?:`, // iPXE: kernel, initrd or boot failed
	`No bootable device`,                // SeaBIOS gave up
}

// wimbootFail is wimboot's die(): "FATAL: ...".
const wimbootFail = `FATAL: `

// FailPattern is the pattern that fails a test of an image of kind (linux
// or wimboot) as soon as a console line matches it.
func FailPattern(kind string) *regexp.Regexp {
	p := failPatterns
	if kind == boot.KindWimboot {
		p = append(p[:len(p):len(p)], wimbootFail)
	}
	return regexp.MustCompile(strings.Join(p, "|"))
}

// maxLine bounds one console line; firmware that prints progress without
// newlines gets its line broken there.
const maxLine = 16 << 10

// keepLines is how many complete console lines a Console keeps for its tail.
const keepLines = 400

// Verdict is the state of a console being watched.
type Verdict int

// Verdicts.
const (
	Pending Verdict = iota // neither pattern has matched yet
	Passed                 // the expected pattern matched
	Failed                 // a failure pattern matched first
)

func (v Verdict) String() string {
	switch v {
	case Passed:
		return "passed"
	case Failed:
		return "failed"
	}
	return "pending"
}

// Console watches a serial console as it streams in. It is an io.Writer:
// bytes are split into lines, terminal escape sequences and carriage
// returns are removed, and each complete line is matched against the
// expected pattern and the failure pattern. The first match decides, and
// the verdict never changes after that. Patterns are matched line by line,
// never across a line break.
//
// A line still being written (a prompt, or a message half sent) is judged
// only by Settle, which the watcher calls once such a line has matched for
// a moment: that way the line a verdict shows is whole.
type Console struct {
	expect, fail *regexp.Regexp

	mu      sync.Mutex
	lines   []string // the last keepLines complete lines, cleaned
	cur     []byte   // the line being written, raw
	verdict Verdict
	line    string // the line that decided
	changed chan struct{}
}

// NewConsole watches for expect; fail may be nil.
func NewConsole(expect, fail *regexp.Regexp) *Console {
	return &Console{expect: expect, fail: fail, changed: make(chan struct{})}
}

// Write feeds console output; it never fails.
func (c *Console) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, b := range p {
		switch {
		case b == '\n':
			c.endLine()
		case len(c.cur) >= maxLine:
			c.endLine()
			c.cur = append(c.cur, b)
		default:
			c.cur = append(c.cur, b)
		}
	}
	close(c.changed)
	c.changed = make(chan struct{})
	return len(p), nil
}

// endLine completes the current line. Called with mu held.
func (c *Console) endLine() {
	line := CleanLine(string(c.cur))
	c.cur = c.cur[:0]
	c.lines = append(c.lines, line)
	if len(c.lines) > 2*keepLines {
		c.lines = append(c.lines[:0], c.lines[len(c.lines)-keepLines:]...)
	}
	if c.verdict == Pending {
		c.verdict = c.judge(line)
		if c.verdict != Pending {
			c.line = line
		}
	}
}

// judge matches one line. A line that matches both patterns fails: a
// panic message that happens to contain the expected text is a panic.
func (c *Console) judge(line string) Verdict {
	switch {
	case c.fail != nil && c.fail.MatchString(line):
		return Failed
	case c.expect.MatchString(line):
		return Passed
	}
	return Pending
}

// Unfinished reports whether the line still being written would decide
// the verdict if it ended now.
func (c *Console) Unfinished() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.verdict == Pending && len(c.cur) > 0 && c.judge(CleanLine(string(c.cur))) != Pending
}

// Settle judges the line still being written as it is, and returns the
// verdict.
func (c *Console) Settle() Verdict {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.verdict == Pending && len(c.cur) > 0 {
		line := CleanLine(string(c.cur))
		if c.verdict = c.judge(line); c.verdict != Pending {
			c.line = line
		}
	}
	return c.verdict
}

// Verdict returns the verdict so far, the line that decided it, and a
// channel that is closed at the next write.
func (c *Console) Verdict() (Verdict, string, <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.verdict, c.line, c.changed
}

// Tail returns the last n non-blank lines, the unfinished one included.
func (c *Console) Tail(n int) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	all := append([]string(nil), c.lines...)
	if cur := CleanLine(string(c.cur)); cur != "" {
		all = append(all, cur)
	}
	var out []string
	for i := len(all) - 1; i >= 0 && len(out) < n; i-- {
		if strings.TrimSpace(all[i]) != "" {
			out = append(out, all[i])
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// escapeRE matches the terminal escape sequences firmware writes: CSI
// sequences (colours, cursor moves, "\x1b[2J"), character-set selection
// and the two-byte ones (keypad modes, save and restore cursor).
var escapeRE = regexp.MustCompile(`\x1b(\[[0-?]*[ -/]*[@-~]|[()][0-9A-Za-z]|[=>78cDEHM])`)

// CleanLine removes escape sequences and control characters but tabs.
func CleanLine(s string) string {
	s = escapeRE.ReplaceAllString(s, "")
	return strings.Map(func(r rune) rune {
		if r == '\t' || (r >= ' ' && r != 0x7f) {
			return r
		}
		return -1
	}, s)
}
