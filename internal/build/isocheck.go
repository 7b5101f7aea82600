package build

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// checkISO walks every directory of an ISO 9660 image's primary volume
// before github.com/kdomanski/iso9660 (v0.4.0) reads it, and refuses what
// that library cannot survive: a System Use entry shorter than 4 bytes,
// on which its SUSP splitter never advances and grows a slice until the
// process runs out of memory; continuation areas that chain without end
// (it recurses until the stack limit kills the process) or are huge (it
// allocates their length before reading). Both are found in minutes by
// FuzzOpenISO. It also bounds the directories it walks. Anything else
// malformed is left to the library, whose errors and panics openISO
// reports.
func checkISO(ra io.ReaderAt) error {
	root, ok, err := rootRecord(ra)
	if err != nil || !ok {
		return err // not ISO 9660 (UDF, garbage): the library says so
	}
	c := isoChecker{ra: ra, seen: map[uint32]bool{}}
	queue := []extent{root}
	for len(queue) > 0 {
		d := queue[0]
		queue = queue[1:]
		more, err := c.dir(d, d == root)
		if err != nil {
			return err
		}
		queue = append(queue, more...)
	}
	return nil
}

const (
	isoSector       = 2048
	maxDirBytes     = 64 << 20 // all directories together
	maxDirs         = 200_000
	maxContinuation = 64 << 10 // one continuation area; SUSP keeps it in one block
	maxChain        = 32       // continuation areas reached from one record
	maxDescriptors  = 64
)

type extent struct {
	loc, size uint32
}

var errMalformed = errors.New("malformed ISO 9660 image")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errMalformed, fmt.Sprintf(format, args...))
}

// rootRecord finds the primary volume's root directory.
func rootRecord(ra io.ReaderAt) (extent, bool, error) {
	buf := make([]byte, isoSector)
	for s := int64(16); s < 16+maxDescriptors; s++ {
		if _, err := ra.ReadAt(buf, s*isoSector); err != nil {
			return extent{}, false, nil
		}
		if string(buf[1:6]) != "CD001" {
			return extent{}, false, nil
		}
		switch buf[0] {
		case 1: // primary volume descriptor; root record at 156
			r := buf[156 : 156+34]
			return extent{binary.LittleEndian.Uint32(r[2:]), binary.LittleEndian.Uint32(r[10:])}, true, nil
		case 255:
			return extent{}, false, nil
		}
	}
	return extent{}, false, nil
}

type isoChecker struct {
	ra    io.ReaderAt
	seen  map[uint32]bool
	bytes int64
	susp  bool // the root's "." record starts with SP
	skip  int  // SP's bytes to skip in every other record
}

// dir checks one directory's records and returns its subdirectories.
func (c *isoChecker) dir(d extent, isRoot bool) ([]extent, error) {
	if c.seen[d.loc] {
		return nil, nil
	}
	c.seen[d.loc] = true
	if len(c.seen) > maxDirs {
		return nil, malformed("more than %d directories", maxDirs)
	}
	c.bytes += int64(d.size)
	if c.bytes > maxDirBytes {
		return nil, malformed("more than %d MiB of directories", maxDirBytes>>20)
	}
	var subdirs []extent
	buf := make([]byte, isoSector)
	for off := uint32(0); off < d.size; off += isoSector {
		// As the library computes it, in 32 bits.
		if _, err := c.ra.ReadAt(buf, int64(d.loc*isoSector+off)); err != nil {
			return subdirs, nil // the library stops here too
		}
		for i := 0; i < isoSector; {
			n := int(buf[i])
			if n == 0 {
				break
			}
			if n < 34 || i+n > isoSector {
				return nil, malformed("directory record of %d bytes at sector %d", n, d.loc+off/isoSector)
			}
			rec := buf[i : i+n]
			i += n
			nameLen := int(rec[32])
			su := 33 + nameLen + (nameLen+1)%2
			if su > n {
				return nil, malformed("directory record's name overruns it at sector %d", d.loc+off/isoSector)
			}
			dot := nameLen == 1 && rec[33] == 0
			dotdot := nameLen == 1 && rec[33] == 1
			area := rec[su:]
			var pxDir bool
			switch {
			case isRoot && dot:
				// The library splits the root's "." area from its start,
				// and turns SUSP on when it begins with SP.
				if len(area) >= 7 && string(area[:2]) == "SP" {
					c.susp, c.skip = true, int(area[6])
				}
				if _, err := c.entries(area, 0); err != nil {
					return nil, err
				}
			case c.susp:
				if c.skip > len(area) {
					return nil, malformed("SUSP skips %d bytes of a %d-byte system use area", c.skip, len(area))
				}
				var err error
				if pxDir, err = c.entries(area[c.skip:], 0); err != nil {
					return nil, err
				}
			}
			// The library believes Rock Ridge's mode over the flags.
			if (rec[25]&2 != 0 || pxDir) && !dot && !dotdot {
				subdirs = append(subdirs, extent{binary.LittleEndian.Uint32(rec[2:]), binary.LittleEndian.Uint32(rec[10:])})
			}
		}
	}
	return subdirs, nil
}

// entries walks System Use entries as the library splits them, following
// continuation areas, and tells whether a PX entry says directory.
func (c *isoChecker) entries(data []byte, depth int) (bool, error) {
	if depth > maxChain {
		return false, malformed("continuation areas chain more than %d deep", maxChain)
	}
	pxDir := false
	for len(data) >= 4 {
		n := int(data[2])
		if n < 4 {
			return false, malformed("system use entry %q of %d bytes", data[:2], n)
		}
		if n > len(data) {
			return pxDir, nil // the library stops with an error
		}
		e := data[:n]
		data = data[n:]
		switch string(e[:2]) {
		case "PX":
			if n >= 12 && binary.LittleEndian.Uint32(e[4:])&0o170000 == 0o040000 {
				pxDir = true
			}
		case "CE":
			if n != 28 {
				continue // the library refuses it
			}
			loc := binary.LittleEndian.Uint32(e[4:])
			off := binary.LittleEndian.Uint32(e[12:])
			size := binary.LittleEndian.Uint32(e[20:])
			if size > maxContinuation {
				return false, malformed("continuation area of %d bytes", size)
			}
			area := make([]byte, size)
			if _, err := c.ra.ReadAt(area, int64(loc*isoSector+off)); err != nil {
				continue // the library stops with an error
			}
			d, err := c.entries(area, depth+1)
			if err != nil {
				return false, err
			}
			pxDir = pxDir || d
		}
	}
	return pxDir, nil
}
