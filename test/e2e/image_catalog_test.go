package e2e

// Image versions as an operator meets them (issue #12: Versions,
// Integrity while serving, and the Verify acceptance): versions that
// `image build` would leave in the served root, listed, shown, promoted
// and rolled back with the CLI beside a running server; `image verify`
// and `bootforge check` catching a flipped byte; and the server refusing
// a truncated file over HTTP (curl) and TFTP (atftp, tftp-hpa).

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"bootforge/internal/image"
)

// icWriteVersion writes a version's files and manifest.json into root as
// `image build` leaves them (build is tested on its own; this fakes its
// output with correct sizes and digests).
func icWriteVersion(t *testing.T, root, ref string, files map[string][]byte) {
	t.Helper()
	id, err := image.ParseID(ref)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, filepath.FromSlash(id.Dir()))
	m := image.Manifest{Name: id.Name, Version: id.Version.String(), Template: image.TemplateLinux,
		Built: time.Now().UTC().Truncate(time.Second), Boot: image.Boot{Kind: "linux", Kernel: "vmlinuz", Initrds: []string{"initrd.gz"},
			Cmdline: "marker=" + id.Version.String()}}
	var paths []string
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, files[p], 0o644); err != nil {
			t.Fatal(err)
		}
		h := sha256.Sum256(files[p])
		m.Files = append(m.Files, image.File{Path: p, Size: int64(len(files[p])), SHA256: hex.EncodeToString(h[:])})
		m.Sources = append(m.Sources, image.Source{Origin: "blob", Size: int64(len(files[p])), SHA256: hex.EncodeToString(h[:])})
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, image.ManifestName), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func icRandom(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	return b
}

type icVersion struct {
	Name, Version, State, Template string
	Size                           int64
}

func TestImageCatalog(t *testing.T) {
	need(t, "curl", "atftp", "tftp")
	root := t.TempDir()
	// A loader and a default profile, so that every other check item
	// passes and the images item alone decides.
	if err := os.WriteFile(filepath.Join(root, "undionly.kpxe"), icRandom(t, 1500), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := "inventory:\n  default_profile: lab\n  profiles:\n    - {name: lab, menu: {entries: [{name: disk, kind: local}]}}\n"
	s := StartServer(t, ServerOptions{Root: root, Config: cfg})

	kernel1, initrd1 := icRandom(t, 70_000), icRandom(t, 5000)
	icWriteVersion(t, root, "deb@1.0.0", map[string][]byte{"vmlinuz": kernel1, "initrd.gz": initrd1, "boot/grubx64.efi": icRandom(t, 900)})
	icWriteVersion(t, root, "deb@2.0.0", map[string][]byte{"vmlinuz": icRandom(t, 71_000), "initrd.gz": icRandom(t, 5100)})

	where := []string{"--root", root, "--data-dir", s.DataDir}
	cli := func(wantOK bool, args ...string) string {
		t.Helper()
		out, err := run(t, 60*time.Second, binary, append(args, where...)...)
		if (err == nil) != wantOK {
			t.Fatalf("bootforge %s: err %v, want ok=%v\n%s", strings.Join(args, " "), err, wantOK, out)
		}
		return out
	}
	list := func() map[string]icVersion {
		t.Helper()
		out := cli(true, "image", "list", "--json")
		var vs []icVersion
		if err := json.Unmarshal([]byte(out), &vs); err != nil {
			t.Fatalf("image list --json: %v\n%s", err, out)
		}
		m := map[string]icVersion{}
		for _, v := range vs {
			m[v.Name+"@"+v.Version] = v
		}
		return m
	}
	wantStates := func(want map[string]string) {
		t.Helper()
		got := list()
		if len(got) != len(want) {
			t.Fatalf("image list: %+v, want %v", got, want)
		}
		for id, st := range want {
			if got[id].State != st {
				t.Errorf("%s is %q, want %q", id, got[id].State, st)
			}
		}
	}
	// Promote, rollback (and gc) bump the store's generation: the running
	// server reloads its inventory within two seconds.
	reloads := func() int { return s.CountLog(`msg="inventory loaded"`) }
	waitReload := func(before int) {
		t.Helper()
		deadline := time.Now().Add(4 * time.Second)
		for reloads() <= before {
			if time.Now().After(deadline) {
				t.Fatalf("the server did not reload its inventory after an image change; log:\n%s", s.Log())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// Built versions start staged; show without a version picks the
	// newest while none is active.
	wantStates(map[string]string{"deb@1.0.0": "staged", "deb@2.0.0": "staged"})
	if v := list()["deb@1.0.0"]; v.Template != "linux" || v.Size != int64(len(kernel1)+len(initrd1)+900) {
		t.Errorf("image list: %+v", v)
	}
	var shown struct {
		image.Manifest
		State string `json:"state"`
	}
	if err := json.Unmarshal([]byte(cli(true, "image", "show", "deb", "--json")), &shown); err != nil {
		t.Fatal(err)
	}
	if shown.Version != "2.0.0" || shown.State != "staged" || shown.Boot.Cmdline != "marker=2.0.0" || len(shown.Files) != 2 {
		t.Errorf("image show deb (none active): %+v", shown)
	}

	before := reloads()
	if out := cli(true, "image", "promote", "deb@1.0.0"); !strings.Contains(out, "deb@1.0.0 is active") {
		t.Errorf("promote: %s", out)
	}
	waitReload(before)
	wantStates(map[string]string{"deb@1.0.0": "active", "deb@2.0.0": "staged"})
	if out := cli(true, "image", "show", "deb"); !strings.Contains(out, "deb@1.0.0 (active)") || !strings.Contains(out, `cmdline "marker=1.0.0"`) ||
		!strings.Contains(out, "boot/grubx64.efi") {
		t.Errorf("image show deb:\n%s", out)
	}
	if out := cli(true, "image", "promote", "deb@2.0.0"); !strings.Contains(out, "deb@2.0.0 is active; deb@1.0.0 is retired") {
		t.Errorf("second promote: %s", out)
	}
	wantStates(map[string]string{"deb@1.0.0": "retired", "deb@2.0.0": "active"})
	cli(false, "image", "promote", "deb@3.0.0") // not built
	before = reloads()
	if out := cli(true, "image", "rollback", "deb"); !strings.Contains(out, "deb@1.0.0 is active; deb@2.0.0 is staged") {
		t.Errorf("rollback: %s", out)
	}
	waitReload(before)
	wantStates(map[string]string{"deb@1.0.0": "active", "deb@2.0.0": "staged"})
	if out := cli(false, "image", "rollback", "deb"); !strings.Contains(out, "no retired version") {
		t.Errorf("a second rollback with nothing retired: %s", out)
	}

	// Each change is in the boot log, by the CLI.
	logOut, err := run(t, 30*time.Second, "env", "BOOTFORGE_DATA_DIR="+s.DataDir, binary, "log", "--json")
	if err != nil {
		t.Fatalf("log: %v\n%s", err, logOut)
	}
	var changes []string
	for _, line := range strings.Split(strings.TrimSpace(logOut), "\n") {
		var e struct{ Stage, Protocol, Image, Result string }
		if json.Unmarshal([]byte(line), &e) == nil && e.Stage == "image" && e.Protocol == "cli" {
			changes = append(changes, e.Image+" "+strings.Fields(e.Result)[0])
		}
	}
	if want := "deb@1.0.0 promoted,deb@1.0.0 retired,deb@2.0.0 promoted,deb@2.0.0 staged,deb@1.0.0 active"; strings.Join(changes, ",") != want {
		t.Errorf("boot log image events: %v, want %s\n%s", changes, want, logOut)
	}

	// Served as built, over HTTP and TFTP.
	url := "http://" + s.HTTPAddr + "/images/deb/1.0.0/vmlinuz"
	if got := clGet(t, url); got != string(kernel1) {
		t.Errorf("HTTP GET of the kernel: %d bytes, want %d", len(got), len(kernel1))
	}
	tftpOut := filepath.Join(t.TempDir(), "vmlinuz")
	if res, err := run(t, 30*time.Second, "atftp", "-g", "-r", "images/deb/1.0.0/vmlinuz", "-l", tftpOut, Host(s.TFTPAddr), Port(s.TFTPAddr)); err != nil {
		t.Fatalf("atftp: %v\n%s", err, res)
	}
	if got := mustRead(t, tftpOut); string(got) != string(kernel1) {
		t.Errorf("atftp got %d bytes, want %d", len(got), len(kernel1))
	}

	// Verify and check pass...
	if out := cli(true, "image", "verify"); !strings.Contains(out, "2 versions verified against the manifests, no drift") {
		t.Errorf("image verify: %s", out)
	}
	checkArgs := []string{"check", "--json", "--tftp-addr", s.TFTPAddr, "--http-addr", s.HTTPAddr, "--api-addr", s.APIAddr}
	items := func(out string) map[string]string {
		t.Helper()
		var list []struct{ Name, Status, Detail string }
		if err := json.Unmarshal([]byte(out[:strings.LastIndex(out, "]")+1]), &list); err != nil {
			t.Fatalf("check --json: %v\n%s", err, out)
		}
		m := map[string]string{}
		for _, it := range list {
			m[it.Name] = it.Status + ": " + it.Detail
		}
		return m
	}
	if got := items(cli(true, checkArgs...))["images"]; !strings.HasPrefix(got, "pass: 1 active version verified") || !strings.Contains(got, "deb@1.0.0") {
		t.Errorf("check, images item: %s", got)
	}

	// ...and fail after one byte of a served file is flipped (same size).
	initrd := filepath.Join(root, "images", "deb", "1.0.0", "initrd.gz")
	flipped := append([]byte(nil), initrd1...)
	flipped[len(flipped)/2] ^= 0x01
	if err := os.WriteFile(initrd, flipped, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"image", "verify"}, {"image", "verify", "deb@1.0.0"}, {"image", "verify", "deb"}, {"image", "verify", "--all"}} {
		out := cli(false, args...)
		if !strings.Contains(out, "DRIFT deb@1.0.0: initrd.gz: digest differs") || !strings.Contains(out, "1 drift from the manifests") {
			t.Errorf("%s after a flipped byte:\n%s", strings.Join(args, " "), out)
		}
	}
	cli(true, "image", "verify", "deb@2.0.0") // the other version is fine
	got := items(cli(false, checkArgs...))
	if !strings.HasPrefix(got["images"], "fail") || !strings.Contains(got["images"], "deb@1.0.0: initrd.gz: digest differs") {
		t.Errorf("check, images item after a flipped byte: %s", got["images"])
	}
	for _, name := range []string{"tftp", "menu", "health"} {
		if !strings.HasPrefix(got[name], "pass") {
			t.Errorf("check, %s item: %s", name, got[name])
		}
	}
	// Same size: the server still serves it (digests are verify's job).
	if got := clGet(t, "http://"+s.HTTPAddr+"/images/deb/1.0.0/initrd.gz"); got != string(flipped) {
		t.Errorf("same-size file over HTTP: %d bytes", len(got))
	}

	// A truncated file is refused by the server, over HTTP and TFTP, and
	// logged as an error with its path and sizes.
	kernel := filepath.Join(root, "images", "deb", "1.0.0", "vmlinuz")
	if err := os.WriteFile(kernel, kernel1[:40_000], 0o644); err != nil {
		t.Fatal(err)
	}
	code, err := run(t, 20*time.Second, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", url)
	if err != nil || code != "403" {
		t.Errorf("curl of a truncated file: status %q, err %v; want 403", code, err)
	}
	if res, err := run(t, 30*time.Second, "atftp", "-g", "-r", "images/deb/1.0.0/vmlinuz", "-l", tftpOut, Host(s.TFTPAddr), Port(s.TFTPAddr)); err == nil {
		t.Errorf("atftp fetched a truncated file:\n%s", res)
	}
	hpaOut := filepath.Join(t.TempDir(), "hpa")
	res, _ := run(t, 30*time.Second, "tftp", Host(s.TFTPAddr), Port(s.TFTPAddr), "-m", "binary", "-c", "get", "images/deb/1.0.0/vmlinuz", hpaOut)
	if !strings.Contains(strings.ToLower(res), "access violation") {
		t.Errorf("tftp-hpa of a truncated file: %q; want an access violation", res)
	}
	clWaitCount(t, s, "image: file size differs from its manifest, refused", 3)
	for _, line := range strings.Split(s.Log(), "\n") {
		if strings.Contains(line, "file size differs from its manifest") {
			for _, want := range []string{"level=ERROR", "path=images/deb/1.0.0/vmlinuz", "expected=70000", "actual=40000"} {
				if !strings.Contains(line, want) {
					t.Errorf("log line lacks %q: %s", want, line)
				}
			}
		}
	}
	// A file the manifest does not list is refused too.
	if err := os.WriteFile(filepath.Join(root, "images", "deb", "1.0.0", "planted.efi"), []byte("planted"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _ = run(t, 20*time.Second, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "http://"+s.HTTPAddr+"/images/deb/1.0.0/planted.efi")
	if code != "403" {
		t.Errorf("a file not in the manifest: status %q, want 403", code)
	}
	clWaitCount(t, s, "image: file not in its manifest, refused", 1)
	// Files outside built versions are untouched.
	if got := clGet(t, "http://"+s.HTTPAddr+"/undionly.kpxe"); len(got) != 1500 {
		t.Errorf("a loader outside images/: %d bytes", len(got))
	}

	// gc: the staged version and the active one stay; with a retired one
	// past --keep 0 it goes, dry run first.
	cli(true, "image", "promote", "deb@2.0.0")
	if out := cli(true, "image", "gc", "--keep", "0", "--dry-run"); !strings.Contains(out, "would remove deb@1.0.0") {
		t.Errorf("gc --dry-run: %s", out)
	}
	if _, err := os.Stat(kernel); err != nil {
		t.Errorf("dry run removed a file: %v", err)
	}
	before = reloads()
	if out := cli(true, "image", "gc", "--keep", "0"); !strings.Contains(out, "removed deb@1.0.0") {
		t.Errorf("gc: %s", out)
	}
	waitReload(before)
	wantStates(map[string]string{"deb@2.0.0": "active"})
}
