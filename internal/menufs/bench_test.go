package menufs

import (
	"fmt"
	"net"
	"sort"
	"testing"
	"time"

	"bootforge/internal/boot"
	"bootforge/internal/menu"
)

// benchInventory is 200 profiles and 10,000 hosts, shaped like a large
// site: most profiles match on OUI and firmware, some on SMBIOS, a few
// with priorities; hosts carry labels and some pin profiles.
func benchInventory(b *testing.B) (*boot.Inventory, []boot.Client) {
	b.Helper()
	var profiles []boot.Profile
	fws := []boot.Firmware{boot.FirmwareBIOS, boot.FirmwareEFIx64}
	for i := 0; i < 200; i++ {
		m := boot.Menu{Default: "install", Timeout: 5 * time.Second, Entries: []boot.Entry{
			{Name: "install", Kind: boot.KindLinux, Kernel: fmt.Sprintf("images/p%d/vmlinuz", i),
				Initrds: []string{fmt.Sprintf("images/p%d/initrd.gz", i)}, Cmdline: "console=ttyS0 host={hostname} profile={profile}"},
			{Name: "win", Kind: boot.KindWimboot, Wimboot: "wimboot", BCD: "w/BCD", BootSDI: "w/boot.sdi", BootWIM: "w/boot.wim"},
			{Name: "disk", Kind: boot.KindLocal},
		}}
		p := boot.Profile{Name: fmt.Sprintf("p%03d", i), Menu: m}
		switch {
		case i%10 == 0:
			p.Priority = 1000 - i
			p.Match = []boot.Selector{{Manufacturer: fmt.Sprintf("Vendor%d*", i), Product: "Model ?"}}
		default:
			p.Match = []boot.Selector{{OUI: []byte{0x02, byte(i >> 8), byte(i)}, Arch: fws[i%2]}}
		}
		profiles = append(profiles, p)
	}
	profiles = append(profiles, boot.Profile{Name: "default", Menu: boot.Menu{Entries: []boot.Entry{{Name: "disk", Kind: boot.KindLocal}}}})
	var hosts []boot.Host
	var facts []boot.Client
	for i := 0; i < 10000; i++ {
		p := i % 200
		mac := net.HardwareAddr{0x02, byte(p >> 8), byte(p), byte(i >> 8), byte(i), 1}
		h := boot.Host{Name: fmt.Sprintf("host-%05d", i), MACs: []net.HardwareAddr{mac}, Labels: []string{"rack" + fmt.Sprint(i%40)}}
		if i%50 == 0 {
			h.Profile = fmt.Sprintf("p%03d", (i/50)%200)
		}
		hosts = append(hosts, h)
		facts = append(facts, boot.Client{MAC: mac, Firmware: fws[p%2], Manufacturer: fmt.Sprintf("Vendor%d Inc", p), Product: "Model 7"})
	}
	inv, err := boot.NewInventory(profiles, hosts, "default")
	if err != nil {
		b.Fatal(err)
	}
	return inv, facts
}

// BenchmarkRender measures choosing a profile and rendering its iPXE menu
// for one client, as a boot.ipxe request does (one-shot store excluded).
// It reports p50 and p99 per render besides the mean.
func BenchmarkRender(b *testing.B) {
	inv, facts := benchInventory(b)
	now := time.Now()
	durs := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		d, err := boot.Decide(facts[i%len(facts)], inv, nil, now)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := menu.Render(d, menu.FormatIPXE, menu.Site{BaseURL: "http://192.0.2.1:8080"}); err != nil {
			b.Fatal(err)
		}
		durs = append(durs, time.Since(start))
	}
	b.StopTimer()
	sort.Slice(durs, func(i, j int) bool { return durs[i] < durs[j] })
	b.ReportMetric(float64(durs[len(durs)/2].Nanoseconds())/1000, "p50-µs")
	b.ReportMetric(float64(durs[len(durs)*99/100].Nanoseconds())/1000, "p99-µs")
}
