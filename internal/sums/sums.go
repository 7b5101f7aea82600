// Package sums reads the checksum lists that vendors publish beside their
// images (SHA256SUMS, CHECKSUM) and checks their detached OpenPGP
// signatures, so that an import can take its expected digest from a file
// the vendor signed instead of a digest copied by hand.
//
// It reads the two line formats sha256sum writes and checks:
//
//	<hex>  <name>             text mode
//	<hex> *<name>             binary mode
//	SHA256 (<name>) = <hex>   BSD tag style (sha256sum --tag, Fedora's CHECKSUM)
//
// Blank lines and lines starting with '#' are skipped, as are tag lines of
// other algorithms (MD5, SHA512, ...), so that a mixed list works. Names
// with a backslash or a newline are escaped the way GNU coreutils does it:
// the line starts with '\'. Any other line is an error, naming the line: a
// file that is not understood is not trusted.
package sums

import (
	"bytes"
	"fmt"
	"path"
	"strings"
)

// Entry is one SHA-256 line of a checksum list.
type Entry struct {
	Name   string // as listed, unescaped
	Digest string // 64 lower-case hex digits
	Line   int    // 1-based
}

const hexLen = 64

// utf8BOM is the byte order mark some Windows editors put at the start of
// a UTF-8 text file.
const utf8BOM = "\xef\xbb\xbf"

// Parse reads a checksum list. A UTF-8 byte order mark at its start is
// skipped: sha256sum writes none, but a list saved by a Windows editor has
// one, and it is not part of the first line's digest.
func Parse(data []byte) ([]Entry, error) {
	data = bytes.TrimPrefix(data, []byte(utf8BOM))
	var out []Entry
	for i, raw := range bytes.Split(data, []byte("\n")) {
		n := i + 1
		line := strings.TrimSuffix(string(raw), "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "-----BEGIN PGP SIGNED MESSAGE-----") {
			return nil, fmt.Errorf("line %d: a clearsigned checksum list is not supported; use the list and its detached signature (--sums-sig)", n)
		}
		e, ok, err := parseLine(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if ok {
			e.Line = n
			out = append(out, e)
		}
	}
	return out, nil
}

// parseLine reads one non-blank line; ok is false for a line to skip.
func parseLine(line string) (e Entry, ok bool, err error) {
	escaped := strings.HasPrefix(line, `\`)
	if escaped {
		line = line[1:]
	}
	var name, digest string
	if tag, rest, isTag := cutTag(line); isTag {
		if tag != "SHA256" {
			return Entry{}, false, nil // another algorithm's line
		}
		i := strings.LastIndex(rest, ") = ")
		if i < 0 {
			return Entry{}, false, fmt.Errorf("want SHA256 (NAME) = DIGEST")
		}
		name, digest = rest[:i], rest[i+len(") = "):]
		if err := checkHex(digest); err != nil {
			return Entry{}, false, err
		}
	} else {
		h := hexPrefix(line)
		switch {
		case h != hexLen:
			return Entry{}, false, notSHA256(line, h)
		case len(line) < hexLen+2 || line[hexLen] != ' ' || (line[hexLen+1] != ' ' && line[hexLen+1] != '*'):
			return Entry{}, false, fmt.Errorf(`want "DIGEST  NAME" or "DIGEST *NAME"`)
		}
		digest, name = line[:hexLen], line[hexLen+2:]
	}
	if escaped {
		if name, err = unescape(name); err != nil {
			return Entry{}, false, err
		}
	}
	if name == "" {
		return Entry{}, false, fmt.Errorf("no file name")
	}
	return Entry{Name: name, Digest: strings.ToLower(digest)}, true, nil
}

// cutTag splits a BSD tag line "ALGO (rest" into ALGO and rest.
func cutTag(line string) (tag, rest string, ok bool) {
	tag, rest, ok = strings.Cut(line, " (")
	if !ok || tag == "" || !strings.Contains(rest, ") = ") {
		return "", "", false
	}
	for _, c := range tag {
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '-' {
			return "", "", false
		}
	}
	return tag, rest, true
}

func hexPrefix(s string) int {
	i := 0
	for i < len(s) && isHex(s[i]) {
		i++
	}
	return i
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func checkHex(d string) error {
	if len(d) != hexLen || hexPrefix(d) != hexLen {
		return fmt.Errorf("digest %q is not 64 hex digits (a SHA-256)", d)
	}
	return nil
}

// notSHA256 explains a line that does not start with a SHA-256.
func notSHA256(line string, digits int) error {
	if digits > 0 && digits < len(line) && line[digits] == ' ' {
		switch digits {
		case 32:
			return fmt.Errorf("a 32-digit digest is MD5; want a SHA256SUMS list")
		case 40:
			return fmt.Errorf("a 40-digit digest is SHA-1; want a SHA256SUMS list")
		case 128:
			return fmt.Errorf("a 128-digit digest is SHA-512; want a SHA256SUMS list")
		}
	}
	return fmt.Errorf(`not a checksum line: want "DIGEST  NAME", "DIGEST *NAME" or "SHA256 (NAME) = DIGEST"`)
}

// Line is the line sha256sum writes for a file (text mode): a name with
// a backslash, a newline or a carriage return escaped, on a line that
// starts with '\\', so that every name is one line and reads back as it
// was.
func Line(digest, name string) string {
	if strings.ContainsAny(name, "\\\n\r") {
		return `\` + digest + "  " + escaper.Replace(name) + "\n"
	}
	return digest + "  " + name + "\n"
}

var escaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, "\r", `\r`)

// unescape undoes coreutils' escaping of a name: \\ \n \r.
func unescape(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		i++
		if i == len(s) {
			return "", fmt.Errorf("name ends in a lone backslash")
		}
		switch s[i] {
		case '\\':
			b.WriteByte('\\')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		default:
			return "", fmt.Errorf(`unknown escape \%c in the name`, s[i])
		}
	}
	return b.String(), nil
}

// Find returns the entry for the file at src, a slash-separated path: a
// URL's path, or a file's absolute path. A line is for src when its name, a
// leading "./" removed, is src's file name, or the end of src's path at a
// "/": "./netboot/debian-installer/amd64/linux" is for
// "/debian/.../images/netboot/debian-installer/amd64/linux". Lists such as
// Debian's name several files alike below different directories, so the
// longest such name wins: the line for src's place. Equally long names
// that give different digests are an error, as is no line at all. A name
// with a ".." element is for no file.
func Find(entries []Entry, src string) (Entry, error) {
	name := path.Base(src)
	var best []Entry // the lines with the longest matching name
	bestLen := 0
	for _, e := range entries {
		p := strings.TrimPrefix(e.Name, "./")
		if !listedAs(src, name, p) {
			continue
		}
		switch {
		case len(p) > bestLen:
			best, bestLen = []Entry{e}, len(p)
		case len(p) == bestLen:
			best = append(best, e)
		}
	}
	if len(best) == 0 {
		if name == src {
			return Entry{}, fmt.Errorf("no line for %q", name)
		}
		return Entry{}, fmt.Errorf("no line for %q, nor for a path that %s ends with", name, src)
	}
	for _, e := range best[1:] {
		if e.Digest != best[0].Digest {
			return Entry{}, fmt.Errorf("lines %d and %d (%q and %q) list %s with different digests", best[0].Line, e.Line, best[0].Name, e.Name, src)
		}
	}
	return best[0], nil
}

// listedAs says whether p, a name from a list without its "./", is for
// the file at src called name.
func listedAs(src, name, p string) bool {
	if p == "" || p == "." || p == "/" {
		return false
	}
	for _, elem := range strings.Split(p, "/") {
		if elem == ".." {
			return false
		}
	}
	return p == name || p == src || strings.HasSuffix(src, "/"+p)
}
