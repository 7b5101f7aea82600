package e2e

// What an operator sees when the DHCP server cannot answer a client: a
// full pool, a reply too large to send; and a hostname no store could
// keep as it came.

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// A client whose hostname (option 12) is not UTF-8 and has a NUL gets
// its lease on either store: PostgreSQL refused the text, so the client
// got no ACK and the log blamed the store.
func TestDHCPHostnameNotUTF8(t *testing.T) { eachStore(t, testDHCPHostnameNotUTF8) }

func testDHCPHostnameNotUTF8(t *testing.T, st e2eStore) {
	lab := NewLab(t)
	s := dhStart(t, lab, dhAuthConfig("192.0.2.100", "192.0.2.200", "")+st.yaml())
	h := dhAddHost(t, lab, "192.0.2.10")
	c := dhSocket(t, h.Netns, h.Iface, 68)
	const mac = "02:00:00:00:7e:01"
	host := dhOS(12, "pc\xff\x00-1")
	off := dhMustExchange(t, c, "255.255.255.255:67", dhNewMsg(mac, dhDiscover, host), dhOffer, dhReplyWait)
	req := dhNewMsg(mac, dhRequest, dhOIP(54, dhServerIP), dhOIP(50, off.YIAddr), host)
	if r := dhExchange(t, c, "255.255.255.255:67", req, dhReplyWait); r == nil || r.Type() != dhAck || r.YIAddr != off.YIAddr {
		t.Fatalf("REQUEST of %s with a hostname not UTF-8: got %v, want an ACK\n%s", off.YIAddr, r, s.Log())
	}
	dhWaitRecord(t, s, dhReplyWait, "dhcp: lease", func(r dhRec) bool { return dhByMAC(mac)(r) && r["ip"] == off.YIAddr })
	if strings.Contains(s.Log(), "lease not stored") {
		t.Errorf("a lease was not stored:\n%s", s.Log())
	}
}

// A PXE client turned away by a full pool is a warning and a boot-log
// line with result refused and the reason; its retries are not a line
// each.
func TestDHCPPoolFullRefusal(t *testing.T) {
	t.Parallel()
	lab := NewLab(t)
	cfg := dhAuthConfig("192.0.2.100", "192.0.2.100", "")
	s := dhStart(t, lab, cfg)
	h := dhAddHost(t, lab, "192.0.2.10")
	c := dhSocket(t, h.Netns, h.Iface, 68)
	// A holds the only address (an offer is held for offer_hold, 30 s).
	dhMustExchange(t, c, "255.255.255.255:67", dhNewMsg("02:00:00:00:7f:01", dhDiscover), dhOffer, dhReplyWait)

	const pxe = "02:00:00:00:7f:02"
	for range 3 {
		m := dhNewMsg(pxe, dhDiscover, dhOS(60, "PXEClient:Arch:00007:UNDI:003016"), dhOArch(7))
		if r := dhExchange(t, c, "255.255.255.255:67", m, 500*time.Millisecond); r != nil {
			t.Fatalf("a PXE client was answered from a full pool: %v", r)
		}
	}
	w := dhWaitRecord(t, s, dhReplyWait, "dhcp: client refused", dhByMAC(pxe))
	if w["level"] != "WARN" || !strings.Contains(w["reason"], "no free address in the pool") {
		t.Errorf("refusal logged as %v", w)
	}
	if n := len(dhRecords(s, "dhcp: client refused", dhByMAC(pxe))); n != 1 {
		t.Errorf("%d warnings for three refused DISCOVERs, want 1", n)
	}
	cli := dcCLIConfig(t, s, "")
	refused := func(events []map[string]any) []map[string]any {
		var out []map[string]any
		for _, e := range events {
			if strings.EqualFold(dcStr(e, "mac"), pxe) && dcStr(e, "protocol") == "dhcp" && dcStr(e, "result") == "refused" {
				out = append(out, e)
			}
		}
		return out
	}
	events := dcEvents(t, cli, func(ev []map[string]any) bool { return len(refused(ev)) > 0 }, "--mac", pxe)
	r := refused(events)
	if len(r) != 1 || !strings.Contains(dcStr(r[0], "reason"), "no free address in the pool") || dcStr(r[0], "stage") != "discover" {
		t.Fatalf("boot log for %s: %s", pxe, dcDump(events))
	}
}

// A reply over 1472 bytes (here: a subnet with 320 DNS servers) is not
// sent; it is counted in bootforge_dhcp_dropped_total{reason="too_large"}
// and logged once per client, not per packet.
func TestDHCPReplyTooLargeCounted(t *testing.T) {
	need(t, "curl", "promtool")
	t.Parallel()
	lab := NewLab(t)
	var dns []string
	for i := 0; i < 320; i++ {
		dns = append(dns, fmt.Sprintf("198.18.%d.%d", i/250, 1+i%250))
	}
	cfg := strings.Replace(dhAuthConfig("192.0.2.100", "192.0.2.200", ""), "dns: [192.0.2.53, 192.0.2.54]",
		"dns: ["+strings.Join(dns, ", ")+"]", 1)
	s := dhStart(t, lab, cfg)
	before := scrapeMetrics(t, s, lab.Netns)
	h := dhAddHost(t, lab, "192.0.2.10")
	c := dhSocket(t, h.Netns, h.Iface, 68)
	const mac = "02:00:00:00:7f:03"
	for range 3 {
		if r := dhExchange(t, c, "255.255.255.255:67", dhNewMsg(mac, dhDiscover), 500*time.Millisecond); r != nil {
			t.Fatalf("a reply over 1472 bytes was sent: %d bytes", len(r.Raw))
		}
	}
	dhWaitRecord(t, s, dhReplyWait, "dhcp: reply too large for EDK2, not sent", dhByMAC(mac))
	if n := len(dhRecords(s, "dhcp: reply too large for EDK2, not sent", dhByMAC(mac))); n != 1 {
		t.Errorf("%d lines for three replies too large, want 1", n)
	}
	after := scrapeMetrics(t, s, lab.Netns)
	checkDeltas(t, before, after, map[string]float64{
		`bootforge_dhcp_dropped_total{reason="too_large"}`:                    3,
		`bootforge_dhcp_requests_total{mode="authoritative",type="discover"}`: 3,
		`bootforge_dhcp_replies_total{mode="authoritative",type="offer"}`:     0,
	})
}
