package tftp

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// decodeNetascii is the client side of RFC 764, for checking the encoder.
func decodeNetascii(b []byte) []byte {
	var out []byte
	for i := 0; i < len(b); i++ {
		if b[i] == '\r' && i+1 < len(b) {
			switch b[i+1] {
			case '\n':
				out = append(out, '\n')
				i++
				continue
			case 0:
				out = append(out, '\r')
				i++
				continue
			}
		}
		out = append(out, b[i])
	}
	return out
}

// readAll drives a source the way a transfer does: windows of blocks, each
// window starting after the last "acknowledged" block, sometimes going back.
func readAll(t *testing.T, src source, blksize, window int, rng *rand.Rand) []byte {
	t.Helper()
	var out []byte
	buf := make([]byte, window*blksize)
	acked := uint64(0)
	for {
		n, err := src.read(buf, acked+1)
		if err != nil {
			t.Fatal(err)
		}
		blocks := (n + blksize - 1) / blksize
		if n < len(buf) && n%blksize == 0 {
			blocks++ // an empty final block
		}
		// The client acknowledges some prefix of the window (a loss), or all.
		got := blocks
		if rng != nil && blocks > 1 && rng.IntN(3) == 0 {
			got = 1 + rng.IntN(blocks-1)
		}
		end := min(got*blksize, n)
		out = append(out, buf[:end]...)
		acked += uint64(got)
		src.acked(acked)
		if got == blocks && n < len(buf) {
			return out
		}
	}
}

func TestNetasciiRoundTrip(t *testing.T) {
	inputs := map[string][]byte{
		"empty":        {},
		"text":         []byte("line one\nline two\n"),
		"bare CR":      []byte("a\rb\r\r\n\n\r"),
		"CR at block":  bytes.Repeat([]byte("abcdefg\r"), 100),
		"LF at block":  bytes.Repeat([]byte("abcdefg\n"), 100),
		"exact blocks": bytes.Repeat([]byte("x"), 64),
	}
	rnd := make([]byte, 100000)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range rnd {
		rnd[i] = "ab\r\n\x00"[rng.IntN(5)]
	}
	inputs["random"] = rnd
	for name, in := range inputs {
		for _, blksize := range []int{8, 9, 512} {
			for _, window := range []int{1, 3, 16} {
				for _, lossy := range []bool{false, true} {
					var r *rand.Rand
					if lossy {
						r = rand.New(rand.NewPCG(uint64(blksize), uint64(window)))
					}
					wire := readAll(t, newNetasciiSource(bytes.NewReader(in), blksize), blksize, window, r)
					if got := decodeNetascii(wire); !bytes.Equal(got, in) {
						t.Fatalf("%s blksize %d window %d lossy %v: round trip differs", name, blksize, window, lossy)
					}
					for i := 0; i < len(wire); i++ {
						if wire[i] == '\n' && (i == 0 || wire[i-1] != '\r') {
							t.Fatalf("%s: bare LF on the wire at %d", name, i)
						}
					}
				}
			}
		}
	}
}

func TestOctetSource(t *testing.T) {
	in := make([]byte, 5000)
	for i := range in {
		in[i] = byte(i)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	got := readAll(t, newOctetSource(bytes.NewReader(in), 512, 4), 512, 4, rng)
	if !bytes.Equal(got, in) {
		t.Fatal("octet source differs")
	}
}

// countingReader counts ReadAt calls and the bytes they ask for.
type countingReader struct {
	r     *bytes.Reader
	calls int
	bytes int
}

func (c *countingReader) ReadAt(b []byte, off int64) (int, error) {
	c.calls++
	c.bytes += len(b)
	return c.r.ReadAt(b, off)
}

// TestOctetSourceReadAhead crosses many read-ahead buffers, with resends,
// at sizes that end inside a block and exactly on a block boundary (an
// empty final block), and checks that the file is read in large pieces.
func TestOctetSourceReadAhead(t *testing.T) {
	for _, size := range []int{0, 1, 512, 3*readAhead + 777, 4 * readAhead, 1468 * 300} {
		for _, bw := range [][2]int{{512, 1}, {1468, 16}, {8192, 16}} {
			in := make([]byte, size)
			rng := rand.New(rand.NewPCG(uint64(size), uint64(bw[0])))
			for i := range in {
				in[i] = byte(rng.Uint32())
			}
			cr := &countingReader{r: bytes.NewReader(in)}
			got := readAll(t, newOctetSource(cr, bw[0], bw[1]), bw[0], bw[1], rng)
			if !bytes.Equal(got, in) {
				t.Fatalf("size %d blksize %d window %d: data differs", size, bw[0], bw[1])
			}
			if limit := 2 + 2*size/max(readAhead, bw[0]*bw[1]); cr.calls > limit {
				t.Errorf("size %d blksize %d: %d reads of the file, want at most %d", size, bw[0], cr.calls, limit)
			}
		}
	}
}

// TestNetasciiReadsWhatItSends: a netascii transfer reads about what it
// converts, at most twice each byte (a block that ends inside a byte's
// CR LF or CR NUL leaves the rest of its read for the next block). It
// read 32 KiB for every window, 64 times a 512-byte block.
func TestNetasciiReadsWhatItSends(t *testing.T) {
	in := bytes.Repeat([]byte("a line of text\r\n"), 4096) // 64 KiB
	for _, bw := range [][2]int{{512, 1}, {1468, 16}} {
		cr := &countingReader{r: bytes.NewReader(in)}
		wire := readAll(t, newNetasciiSource(cr, bw[0]), bw[0], bw[1], nil)
		if !bytes.Equal(decodeNetascii(wire), in) {
			t.Fatalf("blksize %d window %d: round trip differs", bw[0], bw[1])
		}
		if limit := 2*len(in) + bw[0]*bw[1]; cr.bytes > limit {
			t.Errorf("blksize %d window %d: read %d bytes of a %d-byte file, want at most %d", bw[0], bw[1], cr.bytes, len(in), limit)
		}
	}
}

// TestNetasciiBatchesAndResend reads one window in two batches, as the
// sender does for windows over batchBytes, then resends it from its start.
func TestNetasciiBatchesAndResend(t *testing.T) {
	in := bytes.Repeat([]byte("ab\ncd\re\n"), 50)
	whole := make([]byte, 32)
	n, err := newNetasciiSource(bytes.NewReader(in), 8).read(whole, 1)
	if err != nil || n != 32 {
		t.Fatal(n, err)
	}
	src := newNetasciiSource(bytes.NewReader(in), 8)
	a, b := make([]byte, 16), make([]byte, 16)
	src.read(a, 1)
	src.read(b, 3)
	if !bytes.Equal(append(a, b...), whole) {
		t.Fatal("batched read differs")
	}
	again := make([]byte, 32)
	if _, err := src.read(again, 1); err != nil || !bytes.Equal(again, whole) {
		t.Fatalf("resend from block 1 after batches: %v", err)
	}
	src.acked(2)
	if _, err := src.read(again[:16], 3); err != nil || !bytes.Equal(again[:16], whole[16:]) {
		t.Fatalf("resend from block 3 after ACK 2: %v", err)
	}
	if _, err := src.read(again[:8], 1); err == nil {
		t.Fatal("read of an acknowledged block succeeded")
	}
}
