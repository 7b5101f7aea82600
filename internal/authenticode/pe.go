package authenticode

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"hash"
	"io"
	"slices"
)

// Offsets and sizes of the PE/COFF structures read here (Microsoft's
// PE Format document, "MS-DOS Stub", "COFF File Header", "Optional Header",
// "Section Table" and "The Attribute Certificate Table").
const (
	dosHeaderSize   = 0x40 // up to and including e_lfanew
	offLfanew       = 0x3c
	coffHeaderSize  = 24 // "PE\0\0" and the COFF file header
	offNumSections  = 6  // from the "PE\0\0" signature
	offSizeOptional = 20
	sectionSize     = 40
	offSectRawSize  = 16 // SizeOfRawData
	offSectRawPtr   = 20 // PointerToRawData

	magicPE32     = 0x10b
	magicPE32Plus = 0x20b

	// In the optional header, the same for PE32 and PE32+.
	offSizeOfHeaders = 60
	offCheckSum      = 64

	// NumberOfRvaAndSizes, then the data directories.
	offNumRVA32, offDataDirs32         = 92, 96
	offNumRVA32Plus, offDataDirs32Plus = 108, 112

	dirSecurity  = 4 // IMAGE_DIRECTORY_ENTRY_SECURITY, the Certificate Table
	dataDirSize  = 8 // VirtualAddress (a file offset for this entry), Size
	checkSumSize = 4
)

// span is a range of file offsets, [off, off+size).
type span struct{ off, size int64 }

func (s span) end() int64 { return s.off + s.size }

// image is what the digest needs to know of a PE file's layout. Every
// offset in it has been checked to lie within the file.
type image struct {
	size     int64
	plus     bool  // PE32+
	checkSum int64 // offset of the optional header's CheckSum
	certDir  int64 // offset of the Certificate Table data-directory entry; -1 if there is none
	headers  int64 // SizeOfHeaders
	sections []span
	cert     span // the certificate table; size 0 when the file has none
}

// readAt reads exactly len(b) bytes at off, which the caller has checked
// to lie within the file.
func readAt(r io.ReaderAt, b []byte, off int64) error {
	n, err := r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// within reports whether [off, off+n) lies in a file of size bytes, without
// overflowing.
func within(off, n, size int64) bool {
	return off >= 0 && n >= 0 && off <= size && n <= size-off
}

// parseImage reads the headers of the PE file r of size bytes. Errors wrap
// ErrNotPE, except those of reading.
func parseImage(r io.ReaderAt, size int64) (*image, error) {
	notPE := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrNotPE}, a...)...)
	}
	if size < dosHeaderSize {
		return nil, notPE("%d bytes, too short for an MS-DOS header", size)
	}
	var dos [dosHeaderSize]byte
	if err := readAt(r, dos[:], 0); err != nil {
		return nil, err
	}
	if dos[0] != 'M' || dos[1] != 'Z' {
		return nil, notPE("no MZ signature")
	}
	pe := int64(binary.LittleEndian.Uint32(dos[offLfanew:]))
	if !within(pe, coffHeaderSize, size) {
		return nil, notPE("the PE header offset %#x is past the end of the file", pe)
	}
	var coff [coffHeaderSize]byte
	if err := readAt(r, coff[:], pe); err != nil {
		return nil, err
	}
	if string(coff[:4]) != "PE\x00\x00" {
		return nil, notPE("no PE signature at %#x", pe)
	}
	nsect := int64(binary.LittleEndian.Uint16(coff[offNumSections:]))
	optSize := int64(binary.LittleEndian.Uint16(coff[offSizeOptional:]))
	opt := pe + coffHeaderSize
	if !within(opt, optSize, size) {
		return nil, notPE("the optional header (%d bytes at %#x) is past the end of the file", optSize, opt)
	}
	oh := make([]byte, optSize)
	if err := readAt(r, oh, opt); err != nil {
		return nil, err
	}
	if optSize < 2 {
		return nil, notPE("no optional header")
	}
	im := &image{size: size, certDir: -1}
	var offNumRVA, offDirs int64
	switch magic := binary.LittleEndian.Uint16(oh); magic {
	case magicPE32:
		offNumRVA, offDirs = offNumRVA32, offDataDirs32
	case magicPE32Plus:
		offNumRVA, offDirs, im.plus = offNumRVA32Plus, offDataDirs32Plus, true
	default:
		return nil, notPE("optional header magic %#x is neither PE32 nor PE32+", magic)
	}
	if optSize < offDirs {
		return nil, notPE("the optional header is %d bytes, too short for its %d fixed ones", optSize, offDirs)
	}
	im.checkSum = opt + offCheckSum
	im.headers = int64(binary.LittleEndian.Uint32(oh[offSizeOfHeaders:]))
	// The directories the header claims, as far as the optional header
	// holds them.
	ndirs := min(int64(binary.LittleEndian.Uint32(oh[offNumRVA:])), (optSize-offDirs)/dataDirSize)
	if ndirs > dirSecurity {
		d := offDirs + dirSecurity*dataDirSize
		im.certDir = opt + d
		im.cert = span{
			off:  int64(binary.LittleEndian.Uint32(oh[d:])),
			size: int64(binary.LittleEndian.Uint32(oh[d+4:])),
		}
		if im.cert.size == 0 {
			im.cert = span{}
		}
	}

	table := opt + optSize
	if !within(table, nsect*sectionSize, size) {
		return nil, notPE("the section table (%d sections at %#x) is past the end of the file", nsect, table)
	}
	// The headers the digest covers must hold everything read so far, or
	// the signature would not cover the layout it is checked against.
	if im.headers < table+nsect*sectionSize || im.headers > size {
		return nil, notPE("SizeOfHeaders %#x does not cover the section table (%#x) within the file (%#x)", im.headers, table+nsect*sectionSize, size)
	}
	st := make([]byte, nsect*sectionSize)
	if err := readAt(r, st, table); err != nil {
		return nil, err
	}
	for i := range nsect {
		s := st[i*sectionSize:]
		sp := span{
			off:  int64(binary.LittleEndian.Uint32(s[offSectRawPtr:])),
			size: int64(binary.LittleEndian.Uint32(s[offSectRawSize:])),
		}
		if sp.size == 0 {
			continue // no data in the file (.bss)
		}
		if !within(sp.off, sp.size, size) {
			return nil, notPE("section %d (%d bytes at %#x) is past the end of the file (%d bytes)", i, sp.size, sp.off, size)
		}
		im.sections = append(im.sections, sp)
	}
	// In file order; a stable sort keeps equal offsets in table order.
	slices.SortStableFunc(im.sections, func(a, b span) int { return cmp.Compare(a.off, b.off) })
	return im, nil
}

// digest writes the file's Authenticode digest input to h: the headers
// less the CheckSum and the Certificate Table entry, the sections in file
// order, then every byte after the last section's data except the
// certificate table; an unsigned file is padded with zeros to a multiple of
// 8 bytes, as a signer pads it before it appends the table.
func (im *image) digest(r io.ReaderAt, h hash.Hash) error {
	buf := make([]byte, 256<<10)
	hashSpan := func(s span) error {
		if s.size <= 0 {
			return nil
		}
		_, err := io.CopyBuffer(h, io.NewSectionReader(r, s.off, s.size), buf)
		return err
	}
	// The headers, with two holes in them; the parser checked that the
	// CheckSum and the directory entry lie in the optional header, which
	// lies within SizeOfHeaders.
	holes := []span{{im.checkSum, checkSumSize}}
	if im.certDir >= 0 {
		holes = append(holes, span{im.certDir, dataDirSize})
	}
	at := int64(0)
	for _, hole := range holes {
		if err := hashSpan(span{at, hole.off - at}); err != nil {
			return err
		}
		at = hole.end()
	}
	if err := hashSpan(span{at, im.headers - at}); err != nil {
		return err
	}
	end := im.headers
	for _, s := range im.sections {
		if err := hashSpan(s); err != nil {
			return err
		}
		end = max(end, s.end())
	}
	// What follows the sections (debug data, the alignment before the
	// table, anything after it), less the table.
	rest := span{end, im.size - end}
	if im.cert.size > 0 && im.cert.off < rest.end() && im.cert.end() > rest.off {
		if err := hashSpan(span{rest.off, im.cert.off - rest.off}); err != nil {
			return err
		}
		rest = span{im.cert.end(), im.size - im.cert.end()}
	}
	if err := hashSpan(rest); err != nil {
		return err
	}
	if im.cert.size == 0 && im.size%8 != 0 {
		h.Write(make([]byte, 8-im.size%8))
	}
	return nil
}
