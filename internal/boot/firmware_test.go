package boot

import "testing"

func TestIPXERoundTrip(t *testing.T) {
	for _, fw := range Firmwares() {
		b, p, ok := fw.IPXE()
		if !ok {
			t.Fatalf("%s: no iPXE names", fw)
		}
		if got := FirmwareOfIPXE(b, p); got != fw {
			t.Errorf("%s → (%s, %s) → %s", fw, b, p, got)
		}
	}
	if _, _, ok := FirmwareUnknown.IPXE(); ok {
		t.Errorf("the unknown firmware has iPXE names")
	}
}
