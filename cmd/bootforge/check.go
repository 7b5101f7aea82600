package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"bootforge/internal/audit"
	"bootforge/internal/boot"
	"bootforge/internal/catalog"
	"bootforge/internal/check"
	"bootforge/internal/config"
	"bootforge/internal/dhcp"
	"bootforge/internal/httpd"
	"bootforge/internal/inventory"
	"bootforge/internal/store"
)

func newCheckCmd(g *globalFlags) *cobra.Command {
	var loader, mac, expectProfile, iface, arch string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "check [--loader FILE] [--mac M --expect-profile P] [--arch FW] [--interface IF] [--json]",
		Short: "Run the validation checklist against the running server",
		Long: `Check a running bootforge as a client would, with the same config:

  config    the config loads (if not, the only item); each warning that
            serve logs for it at start and on SIGHUP (a file not in
            root, an unknown {placeholder}, a command line a loader
            cannot carry, a BOOTFORGE_* variable that names no
            setting...) is a warn item of its own
  inventory each warning that serve logs when it loads the profiles in
            the inventory directory (a file not in root...) is a warn
            item of its own; an inventory serve refuses fails
  tftp      a TFTP GET of a loader succeeds (the --arch firmware's)
  menu      a test MAC gets a menu (of the expected profile, if given),
            asking as iPXE built for the --arch firmware would
  dhcp      the effective DHCP config, and the DHCP servers answering on
            --interface (more than one giving addresses fails)
  dhcp watch  (DHCP on) the other DHCP servers the running server's watch
            saw on its segments in the last 10 minutes (from the boot
            log); a second authoritative one fails
  health    the management API's /healthz and /readyz answer
  data_dir  group and others cannot write data_dir, which holds the
            store, the TLS key and the signing keys (fails), nor read it
            (warns, as serve does at start)
  https     (http.tls on) the certificate and key load as serve loads
            them, and the certificate is valid now
  signing   (signing on) the signing certificate is issued by ca.pem,
            valid now and has codeSigning, as serve and image build
            require
  images    every file of every active image version matches its
            manifest (size and SHA-256), and, with signing on, that the
            manifest's signature verifies; passes saying so when no
            image is built or none is active, or there is no store yet
  mirrors   (mirrors configured) each mirror holds every active image
            version with this server's manifest; one that is
            unreachable, lacks a version or differs fails

Prints a checklist with pass, fail, skip or warn and the reason, or JSON,
and exits non-zero if anything fails (a warning does not). check reads
the store and changes nothing: a store that does not exist yet is not
made (the items that read it say "no store yet"), and one at an older
schema is not migrated.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fw, err := boot.ParseFirmware(arch)
			if err != nil {
				return fmt.Errorf("--arch: %w", err)
			}
			// A config that does not load is the checklist's first
			// item, and its only one: --json still prints a list.
			// layerConfig, not loadConfig: the variable warnings that
			// loadConfig prints are among the config items.
			var items []check.Item
			if cfg, err := layerConfig(cmd, g); err != nil {
				items = []check.Item{check.Fail("config", "%v", err)}
			} else {
				items = append(configItems(cfg), inventoryItems(cfg, g.config)...)
				items = append(items, runChecklist(cfg, loader, mac, expectProfile, iface, fw)...)
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				enc.Encode(items)
			} else {
				printChecklist(out, items)
			}
			if check.Failed(items) {
				return errors.New("checklist failed")
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&loader, "loader", "", "file to fetch over TFTP (default: the --arch firmware's loader of dhcp.loaders)")
	cmd.Flags().StringVar(&arch, "arch", string(boot.FirmwareBIOS), "the test client's firmware: "+boot.FirmwareNames())
	cmd.Flags().StringVar(&mac, "mac", "02:bf:00:00:00:01", "test MAC for the menu check")
	cmd.Flags().StringVar(&expectProfile, "expect-profile", "", "the profile the test MAC must get")
	cmd.Flags().StringVarP(&iface, "interface", "i", "", "probe this interface for DHCP servers (needs root and a free udp/68)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	for _, f := range serveFlags { // the same addresses as the server's, where it was started with flags
		cmd.Flags().String(f.name, "", f.usage+" (env "+config.EnvName(f.key)+")")
	}
	cmd.AddCommand(newCheckDHCPCmd())
	return cmd
}

// configItems are the checklist's config items for a config that loads:
// a warning each for what serve warns about when it loads it
// (config.Warnings), which does not fail the checklist, as it does not
// stop serve; or one item that passes.
func configItems(cfg config.Config) []check.Item {
	var items []check.Item
	for _, w := range cfg.Warnings() {
		items = append(items, check.Warn("config", "%s", w.Error()))
	}
	if len(items) == 0 {
		items = append(items, check.Pass("config", "loads without warnings"))
	}
	return items
}

// inventoryItems are the checklist's inventory items: a warning each for
// what serve warns about the profiles in the inventory directory when it
// loads them (inventory.Load, as serve's watcher does: a file not in
// root...), which does not fail the checklist; a failure, if serve
// would refuse the inventory; or one item that passes. The config's own
// profiles are the config items'.
func inventoryItems(cfg config.Config, configFile string) []check.Item {
	db, err := openCheckStore(cfg) // the store's hosts and image versions are in the inventory
	switch {
	case errors.Is(err, errNoStore):
		db = nil
	case err != nil:
		return []check.Item{check.Fail("inventory", "%v", err)}
	default:
		defer db.Close()
	}
	src := inventorySource(cfg, configFile, db)
	if db == nil {
		// No store: no host is stored, no image version is active; an
		// entry that names a version by constraint resolves among the
		// built ones, as it will when serve has made the store.
		src.Store, src.Images = nil, catalog.New(cfg.Root, cfg.DataDir, noImageStates{})
	}
	var items []check.Item
	src.Warn = func(msg string) { items = append(items, check.Warn("inventory", "%s", msg)) }
	dir, _ := filepath.Abs(src.Dir) // "." beside a config named without a directory
	inv, err := inventory.Load(src)
	switch {
	case err != nil: // one line, as every item
		items = append(items, check.Fail("inventory", "serve refuses the inventory: %s", strings.ReplaceAll(err.Error(), "\n", "; ")))
	case len(items) == 0:
		items = append(items, check.Pass("inventory", "%d profiles, %d hosts; no warning about the files in the inventory directory %s",
			len(inv.Profiles()), len(inv.Hosts()), dir))
	}
	return items
}

// noImageStates is the image states of a store that does not exist yet:
// none, and no way to write one.
type noImageStates struct{}

func (noImageStates) ImageStates() ([]store.ImageState, error) { return nil, nil }
func (noImageStates) SetImageStates([]store.ImageState, []store.ImageState, ...audit.Event) error {
	return store.ErrReadOnly
}
func (noImageStates) PutEvents([]audit.Event) error { return store.ErrReadOnly }

// local turns a listen address into one a client on this machine can use.
func local(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// menuStatus explains a menu answer other than 200 to the check, which
// asked from this machine to addr: the status, what the server said, and
// the likely cause, which differs by status.
func menuStatus(cfg config.Config, addr string, code int, body string) string {
	msg := fmt.Sprintf("status %d %s", code, http.StatusText(code))
	if said := firstLines(strings.TrimSpace(body), 1); said != "" && len(said) <= 200 {
		msg += fmt.Sprintf(" (the server said %q)", said)
	}
	var why string
	switch code {
	case http.StatusNotFound:
		why = "no profile matches and no default profile"
		if strings.TrimSpace(body) != httpd.NotFound {
			why = "not a bootforge answer; does another server listen on http.listen?"
		}
	case http.StatusForbidden:
		// The server does not say why it refuses; the allow-list is the
		// usual cause, and whether it covers this client can be told here.
		why = "refused by the server, by an allow-list other than this config's or by its path rules (its log says which)"
		host, _, _ := net.SplitHostPort(addr)
		if client, err := netip.ParseAddr(host); err == nil {
			l := cfg.AllowList("http")
			if d := l.Check(client); !d.Allowed {
				why = fmt.Sprintf("the client address %s is not in the allow-list %s %v", client, l.Key, l.Prefixes)
				if l.Key == "allow" {
					why += " (http.allow is not set, so the top-level allow applies)"
				}
			}
		}
	case http.StatusServiceUnavailable:
		why = "the server is busy: http.max_requests or http.max_per_client requests are in flight; try again"
	default:
		return msg
	}
	return msg + ": " + why
}

// menuItem is the menu item for a menu that the server answered with
// 200: the profile it is of, as its "# bootforge profile" line names it,
// which must be expect if that is given. One line, as every item: the
// menu's own lines are for curl.
func menuItem(hw net.HardwareAddr, body, expect string) check.Item {
	got, ok := "", false
	if lines := strings.SplitN(body, "\n", 3); len(lines) == 3 {
		got, ok = strings.CutPrefix(lines[1], menuProfileLine)
	}
	switch {
	case !ok:
		return check.Fail("menu", "%s: the answer is not a bootforge menu (no %q line): %q; does another server listen on http.listen?",
			hw, strings.TrimSpace(menuProfileLine), firstLines(body, 1))
	case expect != "" && got != expect:
		return check.Fail("menu", "%s gets profile %s, not %s (--expect-profile)", hw, got, expect)
	}
	return check.Pass("menu", "%s gets profile %s", hw, got)
}

// menuProfileLine starts the second line of every iPXE menu, the name of
// the profile it is of following it.
const menuProfileLine = "# bootforge profile "

func runChecklist(cfg config.Config, loader, mac, expectProfile, iface string, fw boot.Firmware) []check.Item {
	var items []check.Item
	timeout := 3 * time.Second

	switch {
	case !cfg.TFTP.Enabled:
		items = append(items, check.Skip("tftp", "TFTP is disabled"))
	case loader == "" && cfg.DHCP.Loaders.TFTP()[fw] == "":
		items = append(items, check.Fail("tftp", "dhcp.loaders has no loader for %s (give --loader)", fw))
	default:
		if loader == "" {
			loader = cfg.DHCP.Loaders.TFTP()[fw]
		}
		addr := local(cfg.TFTP.Listen)
		if n, err := check.TFTPGet(addr, loader, timeout); err != nil {
			items = append(items, check.Fail("tftp", "GET %s from %s: %v%s", loader, addr, err, tftpAdvice(cfg, loader, err)))
		} else {
			items = append(items, check.Pass("tftp", "GET %s from %s: %d bytes", loader, addr, n))
		}
	}

	if !cfg.HTTP.Enabled {
		items = append(items, check.Skip("menu", "HTTP is disabled"))
	} else {
		hw, err := net.ParseMAC(mac)
		if err != nil {
			items = append(items, check.Fail("menu", "--mac %q is not a MAC address", mac))
		} else {
			buildarch, platform, _ := fw.IPXE()
			url := fmt.Sprintf("http://%s/bootforge/ipxe?mac=%s&buildarch=%s&platform=%s", local(cfg.HTTP.Listen),
				strings.ReplaceAll(hw.String(), ":", "-"), buildarch, platform)
			code, body, err := check.HTTPGet(url, timeout)
			switch {
			case err != nil:
				items = append(items, check.Fail("menu", "GET %s: %s", url, unreachable(err, timeout, "http.listen", cfg.HTTP.Listen)))
			case code != 200:
				items = append(items, check.Fail("menu", "GET %s: %s", url, menuStatus(cfg, local(cfg.HTTP.Listen), code, body)))
			default:
				items = append(items, menuItem(hw, body, expectProfile))
			}
		}
	}

	d := cfg.DHCP
	summary := fmt.Sprintf("mode %s", d.Mode)
	if d.Mode != "off" {
		loaders := d.Loaders.TFTP()
		summary += fmt.Sprintf(" on %s; loaders bios=%s efi-x64=%s secure-boot=%s; iPXE script %s", strings.Join(d.Interfaces, ","),
			loaders[boot.FirmwareBIOS], loaders[boot.FirmwareEFIx64], d.Loaders.SecureBootX64, d.IPXEScript)
		for _, s := range d.Subnets {
			pools := make([]string, len(s.Pools))
			for i, p := range s.Pools {
				pools[i] = p.String()
			}
			summary += fmt.Sprintf("; subnet %s pools %s", s.Subnet, strings.Join(pools, ","))
		}
	}
	if iface == "" {
		items = append(items, check.Pass("dhcp config", "%s (no --interface: other servers not probed)", summary))
	} else {
		res, err := probeDHCP(iface, 5*time.Second)
		switch {
		case err != nil:
			items = append(items, check.Fail("dhcp", "%s; probing %s: %v", summary, iface, err))
		case len(res.conflicts()) > 0:
			items = append(items, check.Fail("dhcp", "%s; %s", summary, strings.Join(res.conflicts(), "; ")))
		default:
			var seen []string
			for _, s := range res.Servers {
				seen = append(seen, s.Kind+" "+s.ServerID)
			}
			for _, s := range res.DHCPv6.Servers {
				seen = append(seen, "DHCPv6 "+s.Kind+" "+s.Source)
			}
			items = append(items, check.Pass("dhcp", "%s; answering on %s: %s", summary, iface, orDash(strings.Join(seen, ", "))))
		}
	}

	if !cfg.API.Enabled {
		items = append(items, check.Skip("health", "the management API is disabled"))
	} else {
		var bad []string
		paths := []string{"/healthz", "/readyz"}
		base, client, err := apiClient(cfg, timeout)
		if err != nil {
			bad, paths = append(bad, err.Error()), nil
		}
		for _, p := range paths {
			code, body, err := apiGet(client, base+p)
			if err != nil {
				// One unreachable server is said once, not per path.
				bad = append(bad, fmt.Sprintf("%s%s: %s", base, p, unreachable(err, timeout, "api.listen", cfg.API.Listen)))
				break
			} else if code != 200 {
				bad = append(bad, fmt.Sprintf("%s: status %d %s", p, code, strings.TrimSpace(body)))
			}
		}
		if len(bad) > 0 {
			items = append(items, check.Fail("health", "%s", strings.Join(bad, "; ")))
		} else {
			items = append(items, check.Pass("health", "%s/healthz and /readyz answer 200", base))
		}
	}
	if cfg.DHCP.Mode != "off" {
		items = append(items, checkWatch(cfg))
	}
	items = append(items, check.DataDir(cfg.DataDir))
	items = append(items, checkHTTPSCert(cfg, time.Now()))
	items = append(items, checkSigning(cfg))
	items = append(items, checkImages(cfg))
	return append(items, checkMirrors(cfg))
}

// errNoStore is what openCheckStore returns for a SQLite store whose file
// does not exist yet.
var errNoStore = errors.New("no store yet")

// noStore says that the SQLite store does not exist yet, and that serve
// makes it.
func noStore(cfg config.Config) error {
	return fmt.Errorf("%w (serve makes %s when it starts)", errNoStore, storePath(cfg))
}

// openCheckStore opens the store for the checklist, which reads it and
// must not change it: openStore would make data_dir and an empty SQLite
// store, and migrate an older one, so that check found, from its second
// run on, the state it had made itself. A SQLite store that does not
// exist yet is noStore; PostgreSQL is opened as serve opens it, which
// neither creates nor migrates its tables.
func openCheckStore(cfg config.Config) (store.Store, error) {
	loc, err := store.Locate(cfg.Store.URL, cfg.DataDir)
	if err != nil {
		return nil, err
	}
	if !loc.Postgres {
		loc.Path = storePath(cfg) // absolute, as openStore names it
	}
	db, err := store.OpenReadOnly(loc)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, noStore(cfg)
	case errors.Is(err, fs.ErrPermission):
		return nil, fmt.Errorf("%w: run bootforge check as the user serve runs as (or as root)", err)
	}
	return db, err
}

// checkHTTPSCert is the checklist's https item: with http.tls on, the
// certificate and key must load as serve loads them (it refuses to start
// otherwise, and a reload keeps the old pair), and the certificate must be
// valid now, or HTTPS clients refuse it while serve runs on without a
// word. Without http.tls.cert and .key, serve makes a self-signed
// certificate in data_dir/tls; the check only reads it, once made.
func checkHTTPSCert(cfg config.Config, now time.Time) check.Item {
	if !cfg.HTTP.TLS.Enabled {
		return check.Skip("https", "http.tls.enabled is false")
	}
	certFile, keyFile, selfSigned := httpd.CertFiles(cfg.HTTP.TLS.Cert, cfg.HTTP.TLS.Key, cfg.TLSDir())
	if _, err := os.Stat(certFile); selfSigned && errors.Is(err, fs.ErrNotExist) {
		return check.Pass("https", "no http.tls.cert: serve makes a self-signed certificate in %s", cfg.TLSDir())
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if errors.Is(err, fs.ErrPermission) {
		return check.Fail("https", "%v: this user cannot read it; run bootforge check as the user serve runs as (or as root)", err)
	}
	if err != nil {
		return check.Fail("https", "%s with %s: %v: serve refuses to start with it; set http.tls.cert and http.tls.key to a certificate and its own key (or leave both empty for a self-signed one)",
			certFile, keyFile, err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return check.Fail("https", "%s: %v", certFile, err)
	}
	switch {
	case now.After(leaf.NotAfter):
		return check.Fail("https", "%s (%s) expired on %s: HTTPS clients refuse it; renew it, then reload bootforge (SIGHUP)",
			certFile, leaf.Subject, leaf.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(leaf.NotBefore):
		return check.Fail("https", "%s (%s) is not valid before %s: HTTPS clients refuse it until then; check this machine's clock, or the certificate's",
			certFile, leaf.Subject, leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	return check.Pass("https", "%s (%s), valid until %s", certFile, leaf.Subject, leaf.NotAfter.UTC().Format(time.RFC3339))
}

// tftpAdvice says what to do about a failed TFTP GET of loader, for the
// causes a new setup meets: the loader is not in the root, or no server
// answers (not started, or started with another config or address).
func tftpAdvice(cfg config.Config, loader string, err error) string {
	var te check.TFTPError
	switch {
	case errors.As(err, &te) && te.Code == check.TFTPNotFound:
		return fmt.Sprintf(": put %s into the server's root (%s in this config); bootforge init copies the loaders that Debian's ipxe, pxelinux and grub packages installed", loader, cfg.Root)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Sprintf(": is bootforge serve running with this config (tftp.listen %s), and does no firewall drop the request?", cfg.TFTP.Listen)
	}
	return ""
}

// unreachable says why an HTTP request to a server of this config got no
// answer, without the URL that the caller names already, and, when
// nothing listens or nothing answers in time, what to look at: the
// usual cause is that serve does not run, or runs with another config.
func unreachable(err error, timeout time.Duration, key, listen string) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if why, ok := noAnswer(err, timeout, fmt.Sprintf("is bootforge serve running with this config (%s %s)?", key, listen)); ok {
		return why
	}
	return err.Error()
}

// noAnswer says in words that a request found nothing listening, or got
// no answer within timeout (0: the client's own), followed by advice,
// what the operator should look at; ok is false for any other error.
// Go's own error chain (dial tcp ...: connect: connection refused,
// context deadline exceeded) names neither the cause nor the remedy.
func noAnswer(err error, timeout time.Duration, advice string) (why string, ok bool) {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused, nothing listens there: " + advice, true
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		within := "in time"
		if timeout > 0 {
			within = fmt.Sprintf("within %s", timeout)
		}
		return "no answer " + within + ": " + advice + " Does no firewall drop the request?", true
	}
	return "", false
}

// watchWindow is how far back the checklist looks for other DHCP servers
// that the running server's watch reported (it repeats a report every 5
// minutes while it still sees the server).
const watchWindow = 10 * time.Minute

// checkWatch reports the other DHCP servers that the running server's
// watch saw on its segments (from the boot log): a conflicting one fails.
func checkWatch(cfg config.Config) check.Item {
	if !cfg.DHCP.Watch.Enabled {
		return check.Skip("dhcp watch", "dhcp.watch.enabled is false")
	}
	db, err := openCheckStore(cfg)
	if errors.Is(err, errNoStore) {
		return check.Pass("dhcp watch", "%v: no boot log, so no other DHCP server seen", err)
	}
	if err != nil {
		return check.Fail("dhcp watch", "%v", err)
	}
	defer db.Close()
	events, err := db.Events(store.EventFilter{Stage: dhcp.StageForeignServer, Since: time.Now().Add(-watchWindow)})
	if err != nil {
		return check.Fail("dhcp watch", "reading the boot log: %v", err)
	}
	conflicts, seen := map[string]bool{}, map[string]bool{}
	for _, e := range events {
		if e.Result == "conflict" {
			conflicts[e.Reason] = true
		} else {
			seen[e.Reason] = true
		}
	}
	list := func(m map[string]bool) string { return strings.Join(slices.Sorted(maps.Keys(m)), "; ") }
	switch {
	case len(conflicts) > 0:
		return check.Fail("dhcp watch", "in the last %s: %s", watchWindow, list(conflicts))
	case len(seen) > 0:
		return check.Pass("dhcp watch", "no conflict in the last %s; seen: %s", watchWindow, list(seen))
	}
	return check.Pass("dhcp watch", "no other DHCP server seen in the last %s", watchWindow)
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}

func printChecklist(w io.Writer, items []check.Item) {
	for _, it := range items {
		mark := map[string]string{"pass": "[ok]  ", "fail": "[FAIL]", "skip": "[skip]", "warn": "[warn]"}[it.Status]
		fmt.Fprintf(w, "%s %-12s %s\n", mark, it.Name, it.Detail)
	}
}

// dhcpProbe is what `check dhcp` found on a segment: the DHCPv4 servers
// (the fields of check.DHCPResult, at the top of the JSON as before) and
// the DHCPv6 ones.
type dhcpProbe struct {
	check.DHCPResult
	DHCPv6 check.DHCPv6Result `json:"dhcpv6"`
	// V6Error says why DHCPv6 was not probed (no IPv6 on the interface,
	// udp/546 taken); it does not fail the command.
	V6Error string `json:"dhcpv6_error,omitempty"`
}

// probeDHCP probes iface for DHCPv4 and DHCPv6 servers at once.
func probeDHCP(iface string, wait time.Duration) (dhcpProbe, error) {
	var p dhcpProbe
	var v6err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.DHCPv6, v6err = check.ProbeDHCPv6(iface, wait)
	}()
	var err error
	p.DHCPResult, err = check.ProbeDHCP(iface, wait)
	<-done
	if v6err != nil {
		p.V6Error = v6err.Error()
	}
	return p, err
}

// conflicts names the servers that make the segment fail: more than one
// hands out addresses, over DHCPv4 or over DHCPv6.
func (p dhcpProbe) conflicts() []string {
	var out []string
	if p.Conflict {
		var ids []string
		for _, s := range p.Servers {
			if s.Kind == "authoritative" {
				ids = append(ids, s.ServerID)
			}
		}
		out = append(out, "more than one authoritative DHCP server on "+p.Interface+": "+strings.Join(ids, ", "))
	}
	if p.DHCPv6.Conflict {
		var ids []string
		for _, s := range p.DHCPv6.Servers {
			if s.Kind == "authoritative" {
				ids = append(ids, s.Source+" (DUID "+s.DUID+")")
			}
		}
		out = append(out, "more than one DHCPv6 server offering addresses on "+p.Interface+": "+strings.Join(ids, ", "))
	}
	return out
}

func newCheckDHCPCmd() *cobra.Command {
	var iface string
	var wait time.Duration
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "dhcp --interface IF",
		Short: "List the DHCP and DHCPv6 servers answering on a segment; fail if more than one gives addresses",
		Long: `Broadcast a DISCOVER with PXE options on the interface and list every
server that offers: authoritative servers (they offer an address) and
proxyDHCP servers (PXE answers without an address). At the same time,
send a DHCPv6 Solicit (asking for an address and a boot file URL, as UEFI
PXE over IPv6 does) to ff02::1:2 and list every server that advertises:
its DUID, its link-local address, the addresses it offers (IA_NA) and its
boot file URL. More than one server handing out addresses, over either
protocol, is a misconfiguration or a rogue server, and makes this command
exit non-zero. Needs root, a free udp/68 and a free udp/546. An interface
without IPv6 is probed over DHCPv4 only, saying why.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if iface == "" {
				return errors.New("--interface is required")
			}
			res, err := probeDHCP(iface, wait)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(res); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(out, "DHCP servers answering on %s within %s:\n", iface, wait)
				if len(res.Servers) == 0 {
					fmt.Fprintln(out, "  none")
				}
				for _, s := range res.Servers {
					fmt.Fprintf(out, "  %-13s server-id %-15s from %-15s offered %-15s next-server %-15s file %q\n",
						s.Kind, s.ServerID, s.Source, orDash(s.OfferedIP), orDash(s.NextServer), s.BootFile)
				}
				fmt.Fprintf(out, "DHCPv6 servers answering on %s within %s:\n", iface, wait)
				switch {
				case res.V6Error != "":
					fmt.Fprintf(out, "  not probed: %s\n", printable(res.V6Error))
				case len(res.DHCPv6.Servers) == 0:
					fmt.Fprintln(out, "  none")
				}
				for _, s := range res.DHCPv6.Servers {
					status := ""
					if s.Status != "" {
						status = " status " + printable(s.Status)
					}
					fmt.Fprintf(out, "  %-13s from %-25s duid %s offered %s boot-file-url %q%s\n",
						s.Kind, s.Source, s.DUID, orDash(strings.Join(s.Addresses, ",")), printable(s.BootFileURL), status)
				}
			}
			if c := res.conflicts(); len(c) > 0 {
				return errors.New(strings.Join(c, "; "))
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&iface, "interface", "i", "", "interface to probe")
	cmd.Flags().DurationVar(&wait, "wait", 5*time.Second, "how long to collect offers (dnsmasq pings an address for up to 3 s before it offers)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
