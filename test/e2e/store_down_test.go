package e2e

import (
	"database/sql"
	"net/url"
	"strings"
	"testing"
	"time"

	"bootforge/internal/store/storetest"
)

// pgSetReachable makes the database at u refuse (or accept again) new
// connections, and, refusing, ends the ones open: to its servers, the
// store is down.
func pgSetReachable(t *testing.T, u string, ok bool) {
	t.Helper()
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(pu.Path, "/")
	admin, err := sql.Open("pgx", storetest.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	allow := "false"
	if ok {
		allow = "true"
	}
	if _, err := admin.Exec(`ALTER DATABASE ` + name + ` ALLOW_CONNECTIONS ` + allow); err != nil {
		t.Fatal(err)
	}
	if !ok {
		if _, err := admin.Exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1`, name); err != nil {
			t.Fatal(err)
		}
	}
}

// A server whose PostgreSQL store is unreachable answers a renewal of a
// lease it holds from its cache, offers nothing new, says so in /readyz,
// and serves new clients again once the store is back.
func TestStoreDownRenewsFromCache(t *testing.T) {
	t.Parallel()
	u := newPostgresStore(t)
	lab := NewLab(t)
	s := dhStart(t, lab, dhAuthConfig("192.0.2.100", "192.0.2.120", "")+e2eStore{url: u}.yaml())
	h := dhAddHost(t, lab, "")
	c := dhSocket(t, h.Netns, h.Iface, 68)
	mac := dhMAC(t, h)
	o := dhMustExchange(t, c, "255.255.255.255:67", dhNewMsg(mac, dhDiscover), dhOffer, dhReplyWait)
	ack := dhMustExchange(t, c, "255.255.255.255:67", dhNewMsg(mac, dhRequest, dhOIP(50, o.YIAddr), dhOIP(54, dhServerIP)), dhAck, dhReplyWait)
	ip := ack.YIAddr
	h.MustExec("ip", "addr", "add", ip+"/24", "dev", h.Iface) // as a client configures its lease

	pgSetReachable(t, u, false)
	defer pgSetReachable(t, u, true)

	// RENEWING: unicast, ciaddr set.
	m := dhNewMsg(mac, dhRequest)
	m.Flags, m.CIAddr = 0, ip
	r := dhMustExchange(t, c, dhServerIP+":67", m, dhAck, dhReplyWait)
	if r.YIAddr != ip {
		t.Errorf("renewal with the store down: ACK of %s, want %s", r.YIAddr, ip)
	}
	if lt := r.U32(51); lt <= 0 || lt > 600 {
		t.Errorf("renewal from the cache: lease time %d, want the time the lease has left (at most 600)", lt)
	}
	s.WaitLog("renewal answered from the cache", 10*time.Second)
	// A new client gets nothing.
	if r := dhExchange(t, c, "255.255.255.255:67", dhNewMsg("02:00:00:16:00:02", dhDiscover), dhSilence); r != nil {
		t.Errorf("a new client got %s with the store down", r)
	}
	out, _ := lab.Exec(20*time.Second, "curl", "-s", "-w", "\n%{http_code}", "http://"+s.APIAddr+"/readyz")
	if !strings.HasSuffix(strings.TrimSpace(out), "503") || !strings.Contains(out, "store unreachable") {
		t.Errorf("/readyz with the store down:\n%s", out)
	}

	pgSetReachable(t, u, true)
	dhMustExchange(t, c, "255.255.255.255:67", dhNewMsg("02:00:00:16:00:02", dhDiscover), dhOffer, 15*time.Second)
	out, _ = lab.Exec(20*time.Second, "curl", "-s", "-w", "\n%{http_code}", "http://"+s.APIAddr+"/readyz")
	if !strings.HasSuffix(strings.TrimSpace(out), "200") {
		t.Errorf("/readyz with the store back:\n%s", out)
	}
}
