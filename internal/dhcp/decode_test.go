package dhcp

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// decodePeers are packets in wire form: the requests a PXE client sends,
// the replies of encodePeers, and hand-made option fields with pads, a
// code given twice, an empty value and bytes after the end option.
func decodePeers(t testing.TB) [][]byte {
	var out [][]byte
	for _, arch := range []uint16{0, 7, 16} {
		d := discover(t, append(pxeMods(arch), dhcpv4.WithOption(dhcpv4.OptClientIdentifier([]byte{1, 2, 0, 0, 0, 0, 1})))...)
		out = append(out, d.ToBytes())
		r, err := dhcpv4.NewRequestFromOffer(d, pxeMods(arch)...)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r.ToBytes())
	}
	for _, p := range encodePeers(t) {
		out = append(out, p.ToBytes())
	}
	head := discover(t).ToBytes()[:offOptions]
	for _, opts := range [][]byte{
		{53, 1, 1, 0, 0, 12, 2, 'p', 'c', 12, 1, 'x', 60, 0, 60, 2, 'a', 'b', 61, 0, 255, 12, 1, 'y'},
		{53, 1, 3, 77, 0, 255},
		{},
		{255},
		{0, 0, 0},     // no end
		{53, 1},       // a value past the end
		{53, 1, 1, 3}, // a code without a length
	} {
		out = append(out, append(append([]byte(nil), head...), opts...))
	}
	short := append([]byte(nil), head...)
	short[offOptions-1] = 0 // not the magic cookie
	return append(out, short, head[:100], nil)
}

func TestDecodeIsFromBytes(t *testing.T) {
	for i, b := range decodePeers(t) {
		checkDecode(t, b)
		if t.Failed() {
			t.Fatalf("packet %d: %x", i, b)
		}
	}
}

// checkDecode fails t unless decode(b) is what the library makes of b:
// the same fields, or an error from both.
func checkDecode(t *testing.T, b []byte) {
	t.Helper()
	want, werr := dhcpv4.FromBytes(b)
	got, err := decode(bytes.Clone(b))
	if (err != nil) != (werr != nil) {
		t.Fatalf("decode error %v, the library's %v", err, werr)
	}
	if err == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("decode:\n got %#v\nwant %#v", got, want)
	}
}

// A relayed PXE DISCOVER is decoded in four allocations: the packet, the
// options' map and its slots, and a sliced string none of it needs.
func TestDecodeAllocs(t *testing.T) {
	b := decodePeers(t)[2]
	if n := testing.AllocsPerRun(100, func() {
		if _, err := decode(b); err != nil {
			t.Fatal(err)
		}
	}); n > 3 {
		t.Fatalf("%v allocations per packet", n)
	}
}

// FuzzDecode: decode reads any bytes as the library does.
func FuzzDecode(f *testing.F) {
	for _, b := range decodePeers(f) {
		f.Add(b)
	}
	f.Fuzz(checkDecode)
}
