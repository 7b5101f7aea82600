package build

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
)

// Where injected files go in boot.wim. Windows PE loads no driver from a
// directory by itself: X:\drivers is where startnet.cmd finds them, e.g.
// `for /r X:\drivers %%i in (*.inf) do drvload "%%i"`.
const (
	wimDrivers  = "/drivers"
	wimStartnet = "/Windows/System32/startnet.cmd"
)

// injectedTime stamps every injected file and directory, so that the
// rebuilt WIM does not depend on when the sources were copied:
// 1980-01-01, the DOS epoch.
var injectedTime = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)

// wimMeta is what `wimlib-imagex info` says about a WIM.
type wimMeta struct {
	images    int
	bootIndex int
}

// image is the image wimboot boots: the one marked bootable, else the
// first.
func (w wimMeta) image() int {
	if w.bootIndex > 0 && w.bootIndex <= w.images {
		return w.bootIndex
	}
	return 1
}

// runTool runs wimlib-imagex and returns its stdout; an error carries
// what the tool said on stderr.
func runTool(ctx context.Context, dir string, stdin string, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	// Paths in the WIM compare as Windows compares them, so that
	// startnet.cmd replaces the file however the image spells it.
	cmd.Env = append(os.Environ(), "WIMLIB_IMAGEX_IGNORE_CASE=1")
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		// One line, and the file as the operator knows it rather than
		// its place in the build's temporary directory.
		msg := strings.Join(strings.Fields(stderr.String()), " ")
		for _, a := range args {
			if filepath.IsAbs(a) {
				msg = strings.ReplaceAll(msg, a, filepath.Base(a))
			}
		}
		if msg == "" {
			msg = err.Error()
		}
		return stdout.String(), errors.New(msg)
	}
	return stdout.String(), nil
}

// wimInfo checks a WIM with `wimlib-imagex info`.
func wimInfo(ctx context.Context, tool, wim string) (wimMeta, error) {
	out, err := runTool(ctx, "", "", tool, "info", wim)
	if err != nil {
		return wimMeta{}, err
	}
	return parseWIMInfo(out)
}

// parseWIMInfo reads the image count and boot index from wimlib-imagex
// info's header.
func parseWIMInfo(out string) (wimMeta, error) {
	var m wimMeta
	seen := 0
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		switch strings.TrimSpace(k) {
		case "Image Count":
			if err != nil || n < 1 {
				return wimMeta{}, fmt.Errorf("wimlib-imagex info: image count %q", strings.TrimSpace(v))
			}
			m.images = n
			seen++
		case "Boot Index":
			if err != nil || n < 0 {
				return wimMeta{}, fmt.Errorf("wimlib-imagex info: boot index %q", strings.TrimSpace(v))
			}
			m.bootIndex = n
			seen++
		}
		if seen == 2 {
			return m, nil
		}
	}
	return wimMeta{}, errors.New("wimlib-imagex info printed no image count and boot index")
}

// injectWIM adds the drivers directory and startnet.cmd to the copied
// boot.wim's bootable image with `wimlib-imagex update --rebuild`.
//
// wimlib records the time of the update in the image's XML
// (LASTMODIFICATIONTIME) and the injected files' own times, so two runs
// would differ. The files are therefore staged with fixed times
// (injectedTime) and the image's LASTMODIFICATIONTIME is set back to what
// the source WIM says; with those two, the rebuilt WIM is byte-identical
// from run to run (the header's GUID is the source's, kept by update).
func (r *run) injectWIM(ctx context.Context, tool, wim string, meta wimMeta, drivers, startnet *source) error {
	idx := strconv.Itoa(meta.image())
	xmlFile := filepath.Join(r.stage, "wim.xml")
	if _, err := runTool(ctx, "", "", tool, "info", wim, "--extract-xml", xmlFile); err != nil {
		return fmt.Errorf("winpe: reading boot.wim's XML: %w", err)
	}
	raw, err := os.ReadFile(xmlFile)
	if err != nil {
		return err
	}
	high, low, err := lastModified(raw, meta.image())
	if err != nil {
		return fmt.Errorf("winpe: boot.wim's XML: %w", err)
	}

	var cmds []string
	inject := filepath.Join(r.stage, "inject")
	if err := os.Mkdir(inject, 0o755); err != nil {
		return err
	}
	if drivers != nil {
		if err := copyTree(ctx, r, filepath.Join(inject, "drivers"), drivers); err != nil {
			return fmt.Errorf("winpe: staging --drivers: %w", err)
		}
		cmds = append(cmds, "add drivers "+wimDrivers)
	}
	if startnet != nil {
		if err := r.copySource(ctx, filepath.Join(inject, "startnet.cmd"), startnet); err != nil {
			return fmt.Errorf("winpe: staging --startnet: %w", err)
		}
		cmds = append(cmds, "add startnet.cmd "+wimStartnet)
	}
	if err := stampTree(inject); err != nil {
		return err
	}
	if _, err := runTool(ctx, inject, strings.Join(cmds, "\n")+"\n", tool, "update", wim, idx, "--rebuild"); err != nil {
		return fmt.Errorf("winpe: wimlib-imagex update boot.wim: %w", err)
	}
	if _, err := runTool(ctx, "", "", tool, "info", wim, idx,
		"--image-property", "LASTMODIFICATIONTIME/HIGHPART="+high,
		"--image-property", "LASTMODIFICATIONTIME/LOWPART="+low); err != nil {
		return fmt.Errorf("winpe: setting boot.wim's modification time: %w", err)
	}
	if _, err := wimInfo(ctx, tool, wim); err != nil {
		return fmt.Errorf("winpe: boot.wim after the update is not a valid WIM: %w", err)
	}
	return nil
}

// stampTree sets every file's and directory's times below dir (and dir's)
// to injectedTime, the deepest first so that no later change moves a
// directory's time again.
func stampTree(dir string) error {
	var paths []string
	err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		paths = append(paths, p)
		return err
	})
	if err != nil {
		return err
	}
	for i := len(paths) - 1; i >= 0; i-- {
		if err := os.Chtimes(paths[i], injectedTime, injectedTime); err != nil {
			return err
		}
	}
	return nil
}

// wimXML is the part of a WIM's XML data that build reads.
type wimXML struct {
	Images []struct {
		Index    string    `xml:"INDEX,attr"`
		Modified *fileTime `xml:"LASTMODIFICATIONTIME"`
		Created  *fileTime `xml:"CREATIONTIME"`
	} `xml:"IMAGE"`
}

// fileTime is a Windows FILETIME split as WIM XML writes it.
type fileTime struct {
	High string `xml:"HIGHPART"`
	Low  string `xml:"LOWPART"`
}

var hexPart = regexp.MustCompile(`^0[xX][0-9A-Fa-f]{1,8}$`)

func (t *fileTime) valid() bool {
	return t != nil && hexPart.MatchString(t.High) && hexPart.MatchString(t.Low)
}

// lastModified reads image idx's LASTMODIFICATIONTIME (else its
// CREATIONTIME, else injectedTime) from the XML wimlib-imagex info
// --extract-xml writes: UTF-16LE, usually with a byte-order mark.
func lastModified(raw []byte, idx int) (high, low string, err error) {
	text, err := decodeUTF16LE(raw)
	if err != nil {
		return "", "", err
	}
	var doc wimXML
	d := xml.NewDecoder(strings.NewReader(text))
	// Already decoded: a declaration naming UTF-16 must not re-decode it.
	d.CharsetReader = func(_ string, in io.Reader) (io.Reader, error) { return in, nil }
	if err := d.Decode(&doc); err != nil {
		return "", "", err
	}
	for _, im := range doc.Images {
		if n, err := strconv.Atoi(im.Index); err != nil || n != idx {
			continue
		}
		switch {
		case im.Modified.valid():
			return im.Modified.High, im.Modified.Low, nil
		case im.Created.valid():
			return im.Created.High, im.Created.Low, nil
		}
		break
	}
	// 100 ns ticks since 1601-01-01.
	ft := uint64(injectedTime.Unix()+11644473600) * 10_000_000
	return fmt.Sprintf("0x%08X", ft>>32), fmt.Sprintf("0x%08X", ft&0xFFFFFFFF), nil
}

func decodeUTF16LE(raw []byte) (string, error) {
	if len(raw)%2 != 0 {
		return "", errors.New("odd length for UTF-16")
	}
	u := make([]uint16, len(raw)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(raw[2*i:])
	}
	if len(u) > 0 && u[0] == 0xFEFF {
		u = u[1:]
	}
	return string(utf16.Decode(u)), nil
}
