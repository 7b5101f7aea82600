package menufs

import (
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"bootforge/internal/boot"
	"bootforge/internal/bootfs"
	"bootforge/internal/store"
)

// FuzzIPXEQuery sends arbitrary query strings to the per-client iPXE
// script, /bootforge/ipxe: nothing panics, and a script served is an iPXE
// script with no control characters, whose command line carries the
// client's values only in the safe alphabet.
func FuzzIPXEQuery(f *testing.F) {
	f.Add("mac=52-54-00-00-00-0a&uuid=4c4c4544-0000-1000-8000-000000000001&buildarch=x86_64&platform=efi&manufacturer=Dell%20Inc.&product=OptiPlex%207060&serial=ABC123&ip=192.0.2.50")
	f.Add("mac=52-54-00-00-00-0a&buildarch=i386&platform=pcbios")
	f.Add("mac=52:54:00:00:00:0a&buildarch=arm64&platform=efi&ip=::1")
	f.Add("mac=${mac:hexhyp}&uuid=${uuid}&buildarch=${buildarch}&platform=${platform}&manufacturer=${manufacturer:uristring}&product=${product:uristring}&serial=${serial:uristring}&ip=${ip}")
	f.Add("mac=52-54-00-00-00-0a&uuid=%0Areboot%0A&ip=1;reboot&manufacturer=%1b[31m")
	f.Add("mac=52-54-00-00-00-0a&mac=zz&uuid=x&uuid=y")
	f.Add("mac=02-00-5e-10-00-00-00-01&buildarch=riscv64")
	f.Add("%zz=&&;=")
	root := f.TempDir()
	for _, name := range []string{"vmlinuz", "initrd.gz"} {
		if err := os.WriteFile(filepath.Join(root, name), []byte(name), 0o644); err != nil {
			f.Fatal(err)
		}
	}
	dir, err := bootfs.OpenDir(root, false)
	if err != nil {
		f.Fatal(err)
	}
	db, err := store.OpenSQLite(filepath.Join(f.TempDir(), "bf.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	entries := []boot.Entry{
		{Name: "a", Kind: boot.KindLocal},
		{Name: "b", Kind: boot.KindLinux, Kernel: "vmlinuz", Initrds: []string{"initrd.gz"},
			Cmdline: "marker={mac}|{uuid}|{ip}|{arch}|{profile}|{entry} end"},
	}
	inv, err := boot.NewInventory([]boot.Profile{
		{Name: "lab", Menu: boot.Menu{Default: "b", Timeout: time.Second, Entries: entries}},
		{Name: "dell", Match: []boot.Selector{{Manufacturer: "Dell*"}}, Menu: boot.Menu{Default: "b", Entries: entries}},
	}, nil, "lab")
	if err != nil {
		f.Fatal(err)
	}
	m := New(dir, func() *boot.Inventory { return inv }, db, boot.NewSightingTable(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	f.Fuzz(func(t *testing.T, query string) {
		q, _ := url.ParseQuery(query) // what net/http hands over: the pairs it could read
		file, err := m.Open(bootfs.Request{Path: "/bootforge/ipxe", Client: client, Protocol: "http", Query: q, Host: "192.0.2.1:8080"})
		if err != nil {
			return
		}
		defer file.Close()
		b, err := io.ReadAll(file)
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		if !strings.HasPrefix(text, "#!ipxe\n") {
			t.Fatalf("not an iPXE script:\n%s", text)
		}
		for _, c := range text {
			if (c < 0x20 && c != '\n' && c != '\t') || c == 0x7f {
				t.Fatalf("control character %q in the script:\n%s", c, text)
			}
		}
		for _, line := range strings.Split(text, "\n") {
			_, values, ok := strings.Cut(line, "marker=")
			if !ok {
				continue
			}
			values, _, ok = strings.Cut(values, " end")
			if !ok {
				t.Fatalf("command line cut short:\n%s", text)
			}
			for _, c := range values {
				if !strings.ContainsRune("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:@+=,/-|", c) {
					t.Fatalf("%q outside the safe alphabet in the command line %q", c, values)
				}
			}
		}
	})
}
