package tftp

import (
	"errors"
	"io"
)

// source yields a transfer's bytes block by block. A transfer asks for any
// block after the last acknowledged one, more than once if it must resend.
type source interface {
	// read fills buf with the data starting at block first (1-based; each
	// block is blksize bytes) and returns how many bytes it wrote. Fewer than
	// len(buf) means the data ends there.
	read(buf []byte, first uint64) (int, error)
	// acked says every block up to and including n is acknowledged: it
	// will never be asked for again.
	acked(n uint64)
}

// octetSource reads the file as it is, through a read-ahead buffer: a
// lockstep transfer asks for one 512-byte block per ACK, and a pread per
// block would be a third system call beside the ACK's recvfrom and the
// block's sendto (atftpd reads through stdio for the same reason). A resent
// window starts at or after the buffer's start, so it is served from the
// buffer too.
type octetSource struct {
	r       io.ReaderAt
	blksize int

	buf []byte // file bytes from off; shorter than its capacity only at the end of the file
	off int64
	eof bool // the file ends at off+len(buf)
}

// readAhead is the least a source reads from the file at once. A window
// is read whole, so the buffer is the larger of the two: 16 KiB for a
// lockstep transfer (a pread per 11 blocks of 1468 bytes), at most 128 KiB
// for the largest window. A storm of 500 lockstep transfers holds 8 MiB.
const readAhead = 16 << 10

func newOctetSource(r io.ReaderAt, blksize, window int) *octetSource {
	return &octetSource{r: r, blksize: blksize, buf: make([]byte, 0, max(readAhead, blksize*window))}
}

func (*octetSource) acked(uint64) {}

func (s *octetSource) read(buf []byte, first uint64) (int, error) {
	off := int64(first-1) * int64(s.blksize)
	end := s.off + int64(len(s.buf))
	if off < s.off || off+int64(len(buf)) > end && !s.eof {
		if err := s.fill(off, len(buf)); err != nil {
			return 0, err
		}
		end = s.off + int64(len(s.buf))
	}
	if off >= end {
		return 0, nil
	}
	return copy(buf, s.buf[off-s.off:]), nil
}

// fill reads the file from off into the buffer, at least want bytes unless
// the file ends first.
func (s *octetSource) fill(off int64, want int) error {
	if want > cap(s.buf) {
		s.buf = make([]byte, 0, want)
	}
	b := s.buf[:cap(s.buf)]
	n, err := s.r.ReadAt(b, off)
	s.buf, s.off, s.eof = b[:n], off, false
	switch {
	case n == len(b):
		return nil
	case err == nil || errors.Is(err, io.EOF):
		s.eof = true // ReaderAt returns a short read only with an error
		return nil
	default:
		return err
	}
}

// netasciiSource converts LF to CR LF and CR to CR NUL (RFC 764) as it reads.
// The output is longer than the file and its block boundaries do not line up
// with file offsets, so it remembers where each block of the current window
// started in the file.
type netasciiSource struct {
	r       io.ReaderAt
	blksize int
	marks   map[uint64]asciiState // block number → encoder state at its start
	chunk   []byte
}

type asciiState struct {
	off     int64 // next file offset to read
	pending int   // a second output byte owed from the previous block, or -1
}

func newNetasciiSource(r io.ReaderAt, blksize int) *netasciiSource {
	return &netasciiSource{
		r:       r,
		blksize: blksize,
		marks:   map[uint64]asciiState{1: {pending: -1}},
		chunk:   make([]byte, 32*1024),
	}
}

// acked forgets where the acknowledged blocks started.
func (s *netasciiSource) acked(n uint64) {
	for b := range s.marks {
		if b <= n {
			delete(s.marks, b)
		}
	}
}

func (s *netasciiSource) read(buf []byte, first uint64) (int, error) {
	st, ok := s.marks[first]
	if !ok {
		return 0, errors.New("netascii: block out of order")
	}
	n := 0
	block := first
	emit := func(c byte) {
		buf[n] = c
		n++
		if n%s.blksize == 0 {
			block++
		}
	}
	for n < len(buf) {
		if n%s.blksize == 0 {
			s.marks[block] = st
		}
		if st.pending >= 0 {
			emit(byte(st.pending))
			st.pending = -1
			continue
		}
		// Each byte read makes at least one byte of output: reading
		// more than the output still wanted only reads again what the
		// next window rereads from its mark.
		m, err := s.r.ReadAt(s.chunk[:min(len(buf)-n, len(s.chunk))], st.off)
		if m == 0 {
			if err == nil || errors.Is(err, io.EOF) {
				return n, nil
			}
			return n, err
		}
		for _, c := range s.chunk[:m] {
			if n == len(buf) {
				break
			}
			if n%s.blksize == 0 {
				s.marks[block] = st
			}
			st.off++
			switch c {
			case '\n':
				emit('\r')
				st.pending = '\n'
			case '\r':
				emit('\r')
				st.pending = 0
			default:
				emit(c)
				continue
			}
			if n < len(buf) {
				if n%s.blksize == 0 {
					s.marks[block] = st
				}
				emit(byte(st.pending))
				st.pending = -1
			}
		}
	}
	if n%s.blksize == 0 {
		s.marks[block] = st
	}
	return n, nil
}
