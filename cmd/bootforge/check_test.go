package main

import (
	"bytes"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"bootforge/internal/boot"
	"bootforge/internal/check"
	"bootforge/internal/config"
	"bootforge/internal/image"
)

// A menu answer other than 200 is explained by its status: only a 404 of
// bootforge's is "no profile matches" (another server's is said to be
// one); a 403 names the allow-list that leaves the checking client out,
// and which key sets it; a 503 is busy.
func TestMenuStatus(t *testing.T) {
	top := config.Default()
	top.Allow = []config.Prefix{{Prefix: netip.MustParsePrefix("10.0.0.0/8")}}
	own := config.Default()
	own.Allow = top.Allow
	own.HTTP.Allow = []config.Prefix{{Prefix: netip.MustParsePrefix("192.0.2.0/24")}}
	open := config.Default()
	for _, tt := range []struct {
		name string
		cfg  config.Config
		code int
		body string
		want []string
		not  []string
	}{
		{"no profile", open, 404, "not found\n", []string{"status 404 Not Found", `"not found"`, "no profile matches and no default profile"}, nil},
		{"another server's 404", open, 404, "<html>\r\n<head><title>404 Not Found</title></head>\r\n",
			[]string{"status 404 Not Found", "not a bootforge answer", "another server listen on http.listen"}, []string{"no profile"}},
		{"an empty 404", open, 404, "", []string{"not a bootforge answer"}, []string{"no profile"}},
		{"top-level allow", top, 403, "forbidden\n",
			[]string{"status 403 Forbidden", "127.0.0.1 is not in the allow-list allow [10.0.0.0/8]", "top-level allow applies"},
			[]string{"no profile"}},
		{"http.allow", own, 403, "forbidden\n", []string{"not in the allow-list http.allow [192.0.2.0/24]"}, []string{"top-level", "no profile"}},
		{"allowed, still refused", open, 403, "forbidden\n", []string{"refused by the server"}, []string{"not in the allow-list", "no profile"}},
		{"busy", open, 503, "busy, retry\n", []string{"status 503 Service Unavailable", `"busy, retry"`, "busy", "http.max_requests"}, []string{"no profile"}},
		{"other", open, 500, "internal error\n", []string{"status 500 Internal Server Error", `"internal error"`}, []string{"no profile"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := menuStatus(tt.cfg, "127.0.0.1:8080", tt.code, tt.body)
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("%q lacks %q", got, w)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(got, n) {
					t.Errorf("%q says %q", got, n)
				}
			}
		})
	}
}

// A tftp item that fails says what to do: a loader the server does not
// have is to be put into the root (a new operator's empty root), and no
// answer at all most often means no server runs with this config.
func TestCheckTFTPAdvice(t *testing.T) {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	go func() { // a TFTP server with an empty root
		buf := make([]byte, 600)
		for {
			_, from, err := conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			conn.WriteToUDP(append([]byte{0, 5, 0, 1}, "file not found\x00"...), from)
		}
	}()
	silent, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()

	cfg := config.Default()
	cfg.Root, cfg.DataDir = "/srv/bootforge/root", t.TempDir()
	cfg.HTTP.Enabled, cfg.HTTP.TLS.Enabled, cfg.API.Enabled = false, false, false
	for _, tt := range []struct {
		name, addr string
		want       []string
	}{
		{"not found", conn.LocalAddr().String(), []string{"ERROR 1: file not found", "put undionly.kpxe into", "/srv/bootforge/root", "bootforge init"}},
		{"no answer", silent.LocalAddr().String(), []string{"no answer", "bootforge serve", "tftp.listen " + silent.LocalAddr().String()}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := cfg
			c.TFTP.Listen = tt.addr
			var it check.Item
			for _, i := range runChecklist(c, "", "02:bf:00:00:00:01", "", "", boot.FirmwareBIOS) {
				if i.Name == "tftp" {
					it = i
				}
			}
			if it.Status != "fail" {
				t.Fatalf("%+v", it)
			}
			for _, w := range tt.want {
				if !strings.Contains(it.Detail, w) {
					t.Errorf("%q lacks %q", it.Detail, w)
				}
			}
		})
	}
}

// check has a data_dir item: a data_dir that group or others may read
// (it holds the store and the keys) is warned about, as serve does at
// start; one they may write fails the checklist.
func TestCheckDataDirMode(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.TFTP.Enabled, cfg.HTTP.Enabled, cfg.HTTP.TLS.Enabled, cfg.API.Enabled = false, false, false, false
	if err := os.Chmod(cfg.DataDir, 0o700); err != nil { // as serve and init make it
		t.Fatal(err)
	}
	item := func() check.Item {
		for _, i := range runChecklist(cfg, "", "02:bf:00:00:00:01", "", "", boot.FirmwareBIOS) {
			if i.Name == "data_dir" {
				return i
			}
		}
		t.Fatal("no data_dir item")
		return check.Item{}
	}
	if it := item(); it.Status != "pass" {
		t.Fatalf("mode 0700: %+v", it)
	}
	if err := os.Chmod(cfg.DataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if it := item(); it.Status != "warn" || !strings.Contains(it.Detail, "chmod 0700 "+cfg.DataDir) {
		t.Fatalf("mode 0755: %+v", it)
	}
	if err := os.Chmod(cfg.DataDir, 0o777); err != nil {
		t.Fatal(err)
	}
	if it := item(); it.Status != "fail" || !strings.Contains(it.Detail, "writable") {
		t.Fatalf("mode 0777: %+v", it)
	}
}

// With no server on the config's addresses, the menu and health items
// say so in words and ask whether serve runs with this config, as the
// tftp item does: no Go error chain ("Get \"http://...\": dial tcp ...",
// "context deadline exceeded", "read udp [::]:41234"), and an
// unreachable API is said once, not for /healthz and /readyz each.
func TestCheckNoServerSaysWhatToDo(t *testing.T) {
	closed := func(network string) string { // an address nothing listens on
		l, err := net.Listen(network, "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		l.Close()
		return l.Addr().String()
	}
	silent, err := net.Listen("tcp", "127.0.0.1:0") // accepts, never answers
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	quiet, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer quiet.Close()

	for _, tt := range []struct {
		name, http string
		want       string
	}{
		{"nothing listens", closed("tcp"), "connection refused, nothing listens there"},
		{"nothing answers", silent.Addr().String(), "no answer within 3s"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.DataDir = t.TempDir()
			cfg.HTTP.TLS.Enabled = false
			cfg.TFTP.Listen, cfg.HTTP.Listen, cfg.API.Listen = quiet.LocalAddr().String(), tt.http, tt.http
			got := map[string]string{}
			for _, i := range runChecklist(cfg, "", "02:bf:00:00:00:01", "", "", boot.FirmwareBIOS) {
				got[i.Name] = i.Status + ": " + i.Detail
			}
			for name, key := range map[string]string{"menu": "http.listen", "health": "api.listen"} {
				d := got[name]
				if !strings.HasPrefix(d, "fail") || !strings.Contains(d, tt.want) ||
					!strings.Contains(d, "is bootforge serve running with this config ("+key+" "+tt.http+")") {
					t.Errorf("%s item: %s", name, d)
				}
				for _, leak := range []string{"dial tcp", "Get \"", "context deadline", "Client.Timeout"} {
					if strings.Contains(d, leak) {
						t.Errorf("%s item says %q: %s", name, leak, d)
					}
				}
			}
			if strings.Count(got["health"], tt.http) != 2 { // the URL once, and the advice
				t.Errorf("health item names the API more than once: %s", got["health"])
			}
			if d := got["tftp"]; !strings.Contains(d, "no answer from "+quiet.LocalAddr().String()+" within 3s") || strings.Contains(d, "read udp") {
				t.Errorf("tftp item: %s", d)
			}
		})
	}
}

// A config that does not load fails check with a config item that
// names the file and line, in --json too (which printed nothing), and
// exit status 1.
func TestCheckBrokenConfig(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct{ name, text, want string }{
		{"broken yaml", "root: /srv\ntftp:\n  listen: [\n", "broken-yaml.yaml:3"},
		{"empty", "", "has no settings"},
		{"a directory", "", "is a directory"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-")+".yaml")
			if tt.name == "a directory" {
				if err := os.Mkdir(file, 0o755); err != nil {
					t.Fatal(err)
				}
			} else if err := os.WriteFile(file, []byte(tt.text), 0o644); err != nil {
				t.Fatal(err)
			}
			items, _, err := checkJSON(t, file)
			if err == nil {
				t.Fatalf("check passed: %+v", items)
			}
			if len(items) != 1 || items[0].Name != "config" || items[0].Status != "fail" || !strings.Contains(items[0].Detail, tt.want) {
				t.Errorf("items %+v, want one failed config item with %q", items, tt.want)
			}
		})
	}
}

// checkJSON runs `check --json` with the config file: the items it
// printed, what it wrote to stderr, and its error.
func checkJSON(t *testing.T, file string) (items []check.Item, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := newRootCmd(&globalFlags{})
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs([]string{"--config", file, "check", "--json"})
	err = root.Execute()
	if jerr := json.Unmarshal(out.Bytes(), &items); jerr != nil {
		t.Fatalf("check --json: %v:\n%s\n%s", jerr, out.String(), errOut.String())
	}
	return items, errOut.String(), err
}

// check lists what serve warns about for the config, one warn item each,
// in its own words (file, line, key), a misspelled variable among them
// and said once; the warnings do not fail it, as they do not stop serve.
// It listed none of them: a config that serve warns about checked clean.
func TestCheckListsConfigWarnings(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "root"), 0o755); err != nil {
		t.Fatal(err)
	}
	const services = "root: root\ndata_dir: state\ntftp: {enabled: false}\nhttp: {enabled: false}\napi: {enabled: false}\n"
	// check --json with the config text, passing (warnings do not fail
	// it); its config items, and what it wrote to stderr.
	run := func(name, text string) (config []check.Item, stderr string) {
		t.Helper()
		file := filepath.Join(dir, name)
		if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		items, stderr, err := checkJSON(t, file)
		if err != nil {
			t.Errorf("%s: check failed: %v\n%+v\n%s", name, err, items, stderr)
		}
		for _, it := range items {
			if it.Name == "config" {
				config = append(config, it)
			}
		}
		return config, stderr
	}

	if items, _ := run("clean.yaml", services); len(items) != 1 || items[0].Status != "pass" {
		t.Errorf("a config without warnings: config items %+v, want one that passes", items)
	}

	t.Setenv("BOOTFORGE_DATADIR", "/elsewhere")
	items, stderr := run("c.yaml", services+"inventory:\n  profiles:\n    - name: lab\n      menu:\n        entries:\n"+
		"          - {name: a, kind: linux, kernel: vmlinuz, cmdline: \"console={consol}\"}\n")
	for _, it := range items {
		if it.Status != "warn" {
			t.Errorf("config item %+v, want warn", it)
		}
	}
	file := filepath.Join(dir, "c.yaml")
	for _, want := range []string{
		file + `:11: inventory.profiles[0].menu.entries[0].kernel: "vmlinuz" is not in root`,
		file + `:11: inventory.profiles[0].menu.entries[0].cmdline: {consol} is not a placeholder`,
		`BOOTFORGE_DATADIR: not a bootforge variable; ignored (did you mean "BOOTFORGE_DATA_DIR"?)`,
	} {
		n := 0
		for _, it := range items {
			if strings.Contains(it.Detail, want) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d config items with %s, want 1: %+v", n, want, items)
		}
	}
	if strings.Contains(stderr, "BOOTFORGE_DATADIR") {
		t.Errorf("the variable is warned about on stderr too, not once:\n%s", stderr)
	}
}

// A 200 answer is a menu only with its profile line; the profile must be
// the whole name, not a prefix of it. A short answer that is not a menu
// (another server on http.listen) made check panic on slicing it.
func TestMenuItem(t *testing.T) {
	hw, _ := net.ParseMAC("02:bf:00:00:00:01")
	for _, tt := range []struct{ body, expect, status, detail string }{
		{"#!ipxe\n# bootforge profile lab2\nkernel k\n", "", "pass", "02:bf:00:00:00:01 gets profile lab2"},
		{"#!ipxe\n# bootforge profile lab2\nkernel k\n", "lab", "fail", "02:bf:00:00:00:01 gets profile lab2, not lab (--expect-profile)"},
		{"ok", "", "fail", `02:bf:00:00:00:01: the answer is not a bootforge menu (no "# bootforge profile" line): "ok"; does another server listen on http.listen?`},
		{"<html>\n<body>hello</body>\n</html>\n", "lab", "fail", `02:bf:00:00:00:01: the answer is not a bootforge menu (no "# bootforge profile" line): "<html>"; does another server listen on http.listen?`},
	} {
		if it := menuItem(hw, tt.body, tt.expect); it.Status != tt.status || it.Detail != tt.detail {
			t.Errorf("%q, expect %q: %s %q, want %s %q", tt.body, tt.expect, it.Status, it.Detail, tt.status, tt.detail)
		}
	}
}

// check reads the store and must not change it. It made data_dir and an
// empty bootforge.db when they did not exist (its images, dhcp watch and
// mirrors items opened the store as serve does), so that its data_dir
// item's "does not exist yet" was true on the first run only. With no
// store, those items say so and pass: no image is active, no boot log
// holds another DHCP server. A store that exists is read, not migrated.
func TestCheckMakesNoStore(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = filepath.Join(t.TempDir(), "state")
	cfg.TFTP.Enabled, cfg.HTTP.Enabled, cfg.HTTP.TLS.Enabled, cfg.API.Enabled = false, false, false, false
	cfg.DHCP.Mode, cfg.DHCP.Watch.Enabled = "proxy", true
	cfg.Mirrors = []config.Mirror{{URL: "http://127.0.0.1:1"}}
	items := map[string]check.Item{}
	for range 2 { // the second run must find what the first did
		for _, i := range runChecklist(cfg, "", "02:bf:00:00:00:01", "", "", boot.FirmwareBIOS) {
			items[i.Name] = i
		}
		if _, err := os.Stat(cfg.DataDir); err == nil {
			t.Fatalf("check made data_dir %s", cfg.DataDir)
		}
		if it := items["data_dir"]; it.Status != "pass" || !strings.Contains(it.Detail, "does not exist yet") {
			t.Errorf("data_dir item %+v", it)
		}
		for _, name := range []string{"images", "dhcp watch", "mirrors"} {
			it := items[name]
			if it.Status != "pass" || !strings.Contains(it.Detail, "no store yet (serve makes "+filepath.Join(cfg.DataDir, "bootforge.db")) {
				t.Errorf("%s item %+v, want a pass saying there is no store yet", name, it)
			}
		}
	}

	// A store at an older schema, as an upgraded bootforge finds it
	// before serve restarts: check neither migrates it nor reads it as
	// if it were current.
	if err := os.Mkdir(cfg.DataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(cfg.DataDir, "bootforge.db")
	old, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if _, err := old.Exec(`CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	for _, i := range runChecklist(cfg, "", "02:bf:00:00:00:01", "", "", boot.FirmwareBIOS) {
		items[i.Name] = i
	}
	var v int
	if err := old.QueryRow(`SELECT max(version) FROM schema_version`).Scan(&v); err != nil || v != 1 {
		t.Errorf("after check the schema version is %d (%v), want 1: check migrated the store", v, err)
	}
	for _, name := range []string{"images", "dhcp watch", "mirrors"} {
		if it := items[name]; it.Status != "fail" || !strings.Contains(it.Detail, "schema version 1 is older") {
			t.Errorf("%s item %+v, want a failure naming the old schema", name, it)
		}
	}
}

// check lists what serve warns about the profiles in inventory.dir when
// it loads them, one warn item each, in serve's words, without failing;
// an inventory that serve refuses fails. Those warnings come from the
// inventory, not config.Warnings, and check listed none of them.
func TestCheckListsInventoryWarnings(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"root", "inv/profiles"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(file, []byte("root: root\ndata_dir: state\ninventory: {dir: inv}\ntftp: {enabled: false}\nhttp: {enabled: false}\napi: {enabled: false}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	profile := filepath.Join(dir, "inv", "profiles", "lab.yaml")
	// check --json with the profile file's text: its inventory items,
	// and whether it failed.
	run := func(text string) (items []check.Item, failed bool) {
		t.Helper()
		if err := os.WriteFile(profile, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		all, _, err := checkJSON(t, file)
		failed = err != nil
		for _, it := range all {
			if it.Name == "inventory" {
				items = append(items, it)
			}
		}
		return items, failed
	}

	items, failed := run("name: lab\nmenu:\n  entries:\n    - {name: a, kind: linux, kernel: vmlinuz, cmdline: \"h={hostnaem}\"}\n")
	if failed {
		t.Errorf("warnings fail the checklist: %+v", items)
	}
	for _, want := range []string{
		profile + `:1: profile "lab": menu.entries[0].kernel: "vmlinuz" is not in root ` + filepath.Join(dir, "root"),
		profile + `:1: profile "lab": menu.entries[0].cmdline: {hostnaem} is not a placeholder`,
	} {
		n := 0
		for _, it := range items {
			if it.Status == "warn" && strings.HasPrefix(it.Detail, want) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d inventory warnings with %s, want 1: %+v", n, want, items)
		}
	}
	if len(items) != 2 {
		t.Errorf("inventory items %+v, want the two warnings", items)
	}

	if err := os.WriteFile(filepath.Join(dir, "root", "vmlinuz"), []byte("kernel"), 0o644); err != nil {
		t.Fatal(err)
	}
	items, failed = run("name: lab\nmenu:\n  entries:\n    - {name: a, kind: linux, kernel: vmlinuz}\n")
	if failed || len(items) != 1 || items[0].Status != "pass" || !strings.Contains(items[0].Detail, "1 profiles") {
		t.Errorf("a clean inventory: failed %v, items %+v, want one that passes", failed, items)
	}

	items, failed = run("name: lab\nmatch: [{mac: not-a-mac}]\nmenu:\n  entries:\n    - {name: a, kind: linux, kernel: vmlinuz}\n")
	if !failed || len(items) != 1 || items[0].Status != "fail" || !strings.Contains(items[0].Detail, "serve refuses the inventory: "+profile) {
		t.Errorf("an inventory serve refuses: failed %v, items %+v, want one failure naming the file", failed, items)
	}

	// No store yet: an entry naming a built version by constraint
	// resolves, as it will when serve has made the store; a bare name
	// wants the active version, which there is none of.
	built := filepath.Join(dir, "root", "images", "deb", "1.0.0")
	if err := os.MkdirAll(built, 0o755); err != nil {
		t.Fatal(err)
	}
	m, err := json.Marshal(image.Manifest{Name: "deb", Version: "1.0.0", Template: image.TemplateLinux,
		Boot: image.Boot{Kind: "linux", Kernel: "vmlinuz"}, Files: []image.File{{Path: "vmlinuz", Size: 6, SHA256: fmt.Sprintf("%x", sha256.Sum256([]byte("kernel")))}}})
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"vmlinuz": []byte("kernel"), "manifest.json": m} {
		if err := os.WriteFile(filepath.Join(built, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	items, failed = run("name: lab\nmenu:\n  entries:\n    - {name: a, image: \"deb@^1.0\"}\n")
	if failed || len(items) != 1 || items[0].Status != "pass" {
		t.Errorf("an entry naming a built version, no store yet: failed %v, items %+v, want one that passes", failed, items)
	}
	items, failed = run("name: lab\nmenu:\n  entries:\n    - {name: a, image: deb}\n")
	if !failed || len(items) != 1 || !strings.Contains(items[0].Detail, `image "deb"`) || strings.Contains(items[0].Detail, "no image catalog") {
		t.Errorf("an entry naming the active version, no store yet: failed %v, items %+v, want a failure: none is active", failed, items)
	}
	if _, err := os.Stat(filepath.Join(dir, "state")); err == nil {
		t.Errorf("check made data_dir")
	}
}
